"""What the interoperability tests share: the provider, a recording transport."""

from __future__ import annotations

from typing import Any

import attrs
from dot_site import PREFIX, Site

from mfaflow import Request, RequestsTransport, Response

__all__ = ["Provider", "RecordingTransport"]


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
