"""node oidc-provider as an OpenID provider on loopback, and a person using it.

:func:`running` installs the pinned npm project in ``oidc_provider/`` (see
:mod:`_node`) and runs its ``server.mjs``, which registers three clients: a
public one (no secret; its refresh tokens rotate), a confidential one
that sends its secret in the form (``client_secret_post``, the engine's
default; its refresh tokens do not rotate), and one with the same secret
that must send it in an ``Authorization: Basic`` header
(``client_secret_basic``).

:class:`Person` does in a browser what the provider's own development
pages ask: sign in (they take any login and password), then consent or
cancel, and gives back the URL the browser is sent to.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import attrs
import requests
from _node import installed, serving
from _pagekit import Browser, page_of

__all__ = ["REDIRECT_URI", "OidcProvider", "Person", "running"]

PROJECT = Path(__file__).resolve().parent / "oidc_provider"
#: Never visited: the tests read the code and state from the redirect itself.
REDIRECT_URI = "http://127.0.0.1:8765/callback"


@attrs.frozen(repr=False)
class OidcProvider:
    """The running provider: its issuer, discovery document and client secrets."""

    issuer: str
    discovery: dict[str, Any]
    confidential_secret: str


@contextmanager
def running() -> Iterator[OidcProvider]:
    """Run oidc-provider on a free loopback port until the ``with`` block ends.

    The client secret and the cookie signing key are fresh each time.
    """
    confidential = secrets.token_urlsafe(24)
    env = {
        "OP_REDIRECT_URI": REDIRECT_URI,
        "OP_CONFIDENTIAL_SECRET": confidential,
        "OP_COOKIE_KEY": secrets.token_urlsafe(24),
    }
    with serving(installed(PROJECT), "server.mjs", env=env) as started:
        issuer = started["issuer"]
        answer = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5)
        answer.raise_for_status()
        yield OidcProvider(issuer, answer.json(), confidential)


class Person:
    """Someone at a browser, signing in on the provider's own pages."""

    def __init__(self, provider: OidcProvider, login: str = "ann@example.test") -> None:
        self.login = login
        self._browser = Browser(provider.issuer + "/")

    def consent(self, authorize_url: str) -> str:
        """Sign in and consent; return the URL the browser is sent back to."""
        answer = self._browser.get(authorize_url)
        while answer.status_code == 200:
            (form,) = page_of(answer).forms
            if "login" in form.fields:
                answer = self._browser.submit(
                    form, login=self.login, password="any password"
                )
            else:
                answer = self._browser.submit(form)
        return _callback(answer)

    def cancel(self, authorize_url: str) -> str:
        """Open the sign-in page and cancel it; return where the browser is sent."""
        page = page_of(self._browser.get(authorize_url))
        (abort,) = [
            found["href"]
            for tag, found in page.attributes
            if tag == "a" and "/abort" in found.get("href", "")
        ]
        return _callback(self._browser.get(urljoin(self._browser.base, abort)))


def _callback(answer: requests.Response) -> str:
    """The callback URL a redirect of the provider names."""
    assert answer.is_redirect, (answer.status_code, answer.text[:500])
    location = str(answer.headers["Location"])
    assert location.startswith(REDIRECT_URI + "?"), location
    return location
