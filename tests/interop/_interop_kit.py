"""What the interoperability tests share: the provider, a recording transport,
and the checks of what a provider issued."""

from __future__ import annotations

from typing import Any

import attrs
import jwt
import requests
from _runs import Harvesting
from dot_site import PREFIX, Site

import mfaflow
from mfaflow import Request, RequestsTransport, Response

__all__ = [
    "Provider",
    "RecordingTransport",
    "userinfo",
    "verified_id_token",
    "watched_engine",
]


@attrs.frozen
class Provider:
    """django-oauth-toolkit, served on loopback, with its users and applications."""

    base_url: str
    site: Site
    discovery: dict[str, Any]

    @property
    def issuer(self) -> str:
        """The provider's issuer, which its discovery document also names."""
        return f"{self.base_url}/{PREFIX.rstrip('/')}"


class RecordingTransport:
    """Sends requests over real HTTP and keeps each one, to check what was sent."""

    def __init__(self) -> None:
        self.sent: list[Request] = []
        self._inner = RequestsTransport()

    def send(self, request: Request) -> Response:
        """Keep ``request`` and send it with ``requests``."""
        self.sent.append(request)
        return self._inner.send(request)


def watched_engine(
    client: mfaflow.Client, transport: mfaflow.Transport | None = None
) -> mfaflow.Engine:
    """An engine for ``client`` whose runs a test can check for leaks: it keeps
    them in memory and notes every secret that crosses the wire."""
    return mfaflow.Engine(
        client,
        transport=Harvesting(transport or RecordingTransport()),
        store=mfaflow.MemoryStore(),
    )


def userinfo(discovery: dict[str, Any], access_token: str) -> requests.Response:
    """The provider's answer at its discovered ``userinfo_endpoint`` to the token."""
    return requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )


def verified_id_token(
    discovery: dict[str, Any], id_token: str, audience: str
) -> dict[str, Any]:
    """The ID token's claims, checked against the key the provider publishes.

    The signature must verify with the key of the token's ``kid`` (or the
    only key) at the discovered ``jwks_uri``; the issuer and ``audience``
    must match.
    """
    keys = requests.get(discovery["jwks_uri"], timeout=5).json()["keys"]
    kid = jwt.get_unverified_header(id_token).get("kid")
    (key,) = [key for key in keys if kid is None or key.get("kid") == kid]
    claims: dict[str, Any] = jwt.decode(
        id_token,
        jwt.PyJWK(key),
        algorithms=["RS256"],
        audience=audience,
        issuer=discovery["issuer"],
    )
    return claims
