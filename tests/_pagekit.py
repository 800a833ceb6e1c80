"""Login pages for tests: PKCE, HTML forms, a browser made of requests.

The tenant's page tests and the interoperability tests (whose providers
have login and consent pages of their own) read pages with
:mod:`html.parser` only: the forms (action, fields, radio choices), the
text of elements by id, and every tag name.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import attrs
import requests

from mfaflow.tenant import DEMO_CLIENT_ID

CALLBACK_PATH = "/callback"


@attrs.frozen
class Pkce:
    """A PKCE pair (S256)."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """Make a fresh verifier and its S256 challenge."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


def authorize_url(base: str, pkce: Pkce | None = None, **params: str | None) -> str:
    """Return an ``/authorize`` URL of ``base``; ``params`` override the defaults."""
    defaults: dict[str, str | None] = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:45123/callback",
        "scope": "openid profile email offline_access",
        "state": "state-" + secrets.token_hex(4),
        "nonce": "nonce-" + secrets.token_hex(4),
    }
    if pkce is not None:
        defaults.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    merged = {k: v for k, v in {**defaults, **params}.items() if v is not None}
    return base + "authorize?" + urlencode(merged)


def redeem_code(
    base: str,
    code: str,
    pkce: Pkce,
    redirect_uri: str,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Redeem a demo client's authorization ``code`` at ``base``; the tokens.

    The answer must be 200; ``session`` sends the request (else a new one).
    """
    post = requests.post if session is None else session.post
    answer = post(
        base + "oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEMO_CLIENT_ID,
            "code": code,
            "code_verifier": pkce.verifier,
            "redirect_uri": redirect_uri,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


@attrs.define
class Form:
    """A form of a page: where it posts and the values it would send."""

    action: str
    method: str
    fields: dict[str, str] = attrs.Factory(dict)
    radios: dict[str, list[str]] = attrs.Factory(dict)
    buttons: list[str] = attrs.Factory(list)
    inputs: list[dict[str, str]] = attrs.Factory(list)


class Page(HTMLParser):
    """A parsed page: its forms, the text of elements with an id, its tags."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self.class_texts: dict[str, list[str]] = {}
        self.all_text: list[str] = []
        self._open: list[tuple[str, list[tuple[str, int]]]] = []
        self._form: Form | None = None
        self._button: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.tags.append(tag)
        self.attributes.append((tag, found))
        if tag not in ("input", "meta", "br", "img", "link"):
            self._open.append((tag, self._collectors(found)))
        if tag == "form":
            self._form = Form(found.get("action", ""), found.get("method", "get"))
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._input(self._form, found)
        elif tag == "button":
            self._button = []

    def _collectors(self, found: dict[str, str]) -> list[tuple[str, int]]:
        """Where the element's text goes: its id's entry and its classes' entries."""
        collectors: list[tuple[str, int]] = []
        if found.get("id"):
            self.texts[found["id"]] = ""
            collectors.append((found["id"], -1))
        for css_class in found.get("class", "").split():
            entries = self.class_texts.setdefault(css_class, [])
            entries.append("")
            collectors.append((css_class, len(entries) - 1))
        return collectors

    def _input(self, form: Form, found: dict[str, str]) -> None:
        form.inputs.append(found)
        name = found.get("name")
        if not name:
            return
        if found.get("type") == "radio":
            form.radios.setdefault(name, []).append(found.get("value", ""))
            if "checked" in found:
                form.fields[name] = found.get("value", "")
        else:
            form.fields[name] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self._form is not None:
            self._form.buttons.append("".join(self._button).strip())
            self._button = None
        if tag == "form":
            self._form = None
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.all_text.append(data)
        for _, collectors in self._open:
            for key, index in collectors:
                if index < 0:
                    self.texts[key] += data
                else:
                    self.class_texts[key][index] += data
        if self._button is not None:
            self._button.append(data)

    def form(self, action: str) -> Form:
        """Return the form posting to ``action`` (its first, for repeated actions)."""
        return next(f for f in self.forms if f.action == action)

    def form_with_button(self, button: str) -> Form:
        """Return the form whose button reads ``button``."""
        return next(f for f in self.forms if button in f.buttons)

    def text(self, element_id: str) -> str:
        """Return the text of the element with ``element_id``, spaces collapsed."""
        return " ".join(self.texts[element_id].split())

    def text_of_class(self, css_class: str) -> list[str]:
        """Return the texts of the elements with ``css_class``, stripped."""
        return [text.strip() for text in self.class_texts.get(css_class, [])]

    @property
    def visible_text(self) -> str:
        """All the text of the page, spaces collapsed."""
        return " ".join("".join(self.all_text).split())


class Browser:
    """A cookie-keeping client that follows the tenant's own redirects only.

    A redirect anywhere else (to the client's callback) is returned as it
    is, so a test can read the ``code`` and ``state`` it carries.
    """

    def __init__(self, base: str, session: requests.Session | None = None) -> None:
        self.base = base
        self.session = session or requests.Session()
        self.last: requests.Response | None = None

    def get(self, url: str) -> requests.Response:
        """GET ``url`` and follow the tenant's redirects."""
        return self._follow(self.session.get(url, allow_redirects=False, timeout=10))

    def submit(self, form: Form, **values: str) -> requests.Response:
        """Post ``form`` with its fields and ``values``; follow the redirects."""
        answer = self.session.post(
            urljoin(self.base, form.action),
            data={**form.fields, **values},
            allow_redirects=False,
            timeout=10,
        )
        return self._follow(answer)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        """Post ``data`` to ``path`` of the tenant as it is."""
        answer = self.session.post(
            urljoin(self.base, path), data=data, allow_redirects=False, timeout=10
        )
        return self._follow(answer)

    def _follow(self, answer: requests.Response) -> requests.Response:
        for _ in range(10):
            location = answer.headers.get("Location")
            if not answer.is_redirect or location is None:
                break
            target = urljoin(answer.url, location)
            if not target.startswith(self.base):
                break
            answer = self.session.get(target, allow_redirects=False, timeout=10)
        self.last = answer
        return answer

    def close(self) -> None:
        """Close the session."""
        self.session.close()


def page_of(answer: requests.Response) -> Page:
    """Parse the HTML of ``answer``."""
    assert answer.headers["Content-Type"].startswith("text/html"), answer.text
    return Page(answer.text)


def redirect_params(answer: requests.Response) -> dict[str, str]:
    """Return the query of a redirect to the client, one value per name."""
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    return {name: values[0] for name, values in query.items()}


class CallbackServer:
    """A client's redirect endpoint on loopback that records each query it gets.

    Only requests for :data:`CALLBACK_PATH` are recorded; anything else (a
    browser's favicon request) is answered 404.
    """

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self._arrived = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                recorder.record({k: v[0] for k, v in parse_qs(parts.query).items()})
                body = b"<!doctype html><title>Signed in</title><p>Done.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output free of access lines."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    def record(self, query: dict[str, str]) -> None:
        """Keep ``query`` and wake whoever waits for it."""
        with self._arrived:
            self.queries.append(query)
            self._arrived.notify_all()

    @contextmanager
    def running(self) -> Iterator[CallbackServer]:
        """Serve from a thread while the block runs."""
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()

    def wait(self, state: str, timeout: float = 10) -> dict[str, str]:
        """Return the query carrying ``state``, waiting up to ``timeout`` seconds."""

        def found() -> dict[str, str] | None:
            return next((q for q in self.queries if q.get("state") == state), None)

        with self._arrived:
            query = self._arrived.wait_for(found, timeout)
        assert query is not None, f"the browser never reached the callback ({state})"
        return query
