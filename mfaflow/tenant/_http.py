"""Reading requests and writing answers: parameters, client authentication, JSON.

Bodies may be ``application/x-www-form-urlencoded`` (what Auth0's docs
show), ``multipart/form-data``, or ``application/json`` (what the OpenAPI
description and most SDKs send). In JSON, ``null`` and ``""`` count as
absent (auth0-python sends ``"scope": null``), and one-time codes may be
numbers (see :meth:`Params.code`). Anything else, a body that
is not JSON or not an object (or nests values too deeply to decode), or
a parameter given twice, answers 400 ``invalid_request``.

A client authenticates with ``client_secret`` in the body
(``client_secret_post``) or HTTP Basic (``client_secret_basic``), never
both; a public client sends only its ``client_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from ._config import ClientConfig
from ._errors import OAuthError
from ._secrets import same

if TYPE_CHECKING:
    from ._tenant import Tenant

__all__ = [
    "Params",
    "TenantRequest",
    "authenticate_client",
    "bearer_token",
    "error_response",
    "json_response",
    "loggable_path",
]

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Characters that end a log line or drive a terminal: C0, DEL, C1, and
#: Unicode's line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class TenantRequest(Request):
    """A request with size limits fit for an authorization server."""

    max_content_length = 64 * 1024
    max_form_memory_size = 64 * 1024


class Params:
    """The parameters of a request body, by name; each name may hold several values."""

    def __init__(self, values: Mapping[str, list[Any]]) -> None:
        self._values = dict(values)

    @classmethod
    def of(cls, request: Request) -> Params:
        """Read the body of ``request``.

        Raises:
            OAuthError: 400 ``invalid_request`` for an unsupported content
                type or a body that is not a JSON object.
        """
        mimetype = request.mimetype
        if mimetype in _FORM_TYPES:
            form = request.form
            return cls({key: form.getlist(key) for key in form})
        data = request.get_data()
        if mimetype == "application/json" or mimetype.endswith("+json"):
            return cls({key: [value] for key, value in _json_object(data).items()})
        if not mimetype and not data:
            return cls({})
        msg = (
            f"Unsupported Content-Type {mimetype or 'none'!r}; send "
            "application/x-www-form-urlencoded or application/json."
        )
        raise OAuthError("invalid_request", msg)

    def raw(self, name: str) -> Any:
        """Return the value of ``name`` as sent (a JSON number stays a number).

        Raises:
            OAuthError: ``invalid_request`` when it is given more than once.
        """
        values = [v for v in self._values.get(name, []) if v not in (None, "")]
        if len(values) > 1:
            msg = f"Parameter {name!r} was given more than once."
            raise OAuthError("invalid_request", msg)
        return values[0] if values else None

    def get(self, name: str) -> str | None:
        """Return the string value of ``name``, or ``None`` when absent or empty.

        Raises:
            OAuthError: ``invalid_request`` when the value is not a string or
                is given more than once.
        """
        value = self.raw(name)
        if value is not None and not isinstance(value, str):
            msg = f"Parameter {name!r} must be a string; got {type(value).__name__}."
            raise OAuthError("invalid_request", msg)
        return value

    def code(self, name: str) -> str | None:
        """Return the one-time code ``name`` as text; a JSON number is accepted too.

        Some clients send ``otp`` and ``binding_code`` as numbers, which lose
        their leading zeros: a number below a million is read back as six
        digits (``12345`` is ``"012345"``).

        Raises:
            OAuthError: ``invalid_request`` for any other kind of value.
        """
        value = self.raw(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return f"{value:06d}"
        return self.get(name)

    def flag(self, name: str) -> bool:
        """Return the boolean ``name``: JSON true or false, or those words in a form.

        Raises:
            OAuthError: ``invalid_request`` for any other value.
        """
        value = self.raw(name)
        if value is None or value is False or value == "false":
            return False
        if value is True or value == "true":
            return True
        msg = f"Parameter {name!r} must be true or false; got {value!r}."
        raise OAuthError("invalid_request", msg)

    def require(self, name: str) -> str:
        """Return the value of ``name``.

        Raises:
            OAuthError: ``invalid_request`` when it is missing.
        """
        value = self.get(name)
        if value is None:
            raise OAuthError("invalid_request", f"Missing required parameter: {name}.")
        return value

    def strings(self, name: str) -> list[str]:
        """Return the values of ``name``: a JSON array, or space-separated strings."""
        found: list[str] = []
        for value in self._values.get(name, []):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, str):
                    kind = type(item).__name__
                    msg = f"Parameter {name!r} must hold strings; got {kind}."
                    raise OAuthError("invalid_request", msg)
                found += item.split()
        return found

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None


def loggable_path(path: str) -> str:
    """Return ``path`` with control characters percent-encoded, for a log line.

    A decoded path may hold a newline (``/%0a...``) that would start a
    forged log line, or a terminal's escape sequence.
    """
    return _CONTROL.sub(
        lambda found: "".join(f"%{byte:02X}" for byte in found.group().encode()),
        path,
    )


def _json_object(data: bytes) -> dict[str, Any]:
    if not data.strip():
        return {}
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise OAuthError(
            "invalid_request", "The request body is not valid JSON."
        ) from exc
    except RecursionError:
        # The decoder recurses per level: 64 KiB of brackets exhaust it.
        msg = "The request body nests JSON values too deeply."
        raise OAuthError("invalid_request", msg) from None
    if not isinstance(parsed, dict):
        msg = f"The JSON body must be an object; got {type(parsed).__name__}."
        raise OAuthError("invalid_request", msg)
    return parsed


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Return ``body`` as JSON, not to be cached unless ``headers`` say otherwise."""
    extra = dict(headers or {})
    base = {} if "Cache-Control" in extra else _NO_STORE
    return Response(
        json.dumps(body),
        status=status,
        mimetype="application/json",
        headers={**base, **extra},
    )


def error_response(error: OAuthError) -> Response:
    """Return the HTTP answer for ``error``."""
    return json_response(error.body(), error.status, error.headers)


def authenticate_client(
    tenant: Tenant, request: Request, params: Params
) -> ClientConfig:
    """Return the client the request authenticates as.

    Raises:
        OAuthError: 400 ``invalid_request`` (no ``client_id``, two methods,
            ids that differ); 401 ``invalid_client`` (unknown client, wrong
            or missing secret of a confidential client).
    """
    basic = _basic_credentials(request)
    body_id, body_secret = params.get("client_id"), params.get("client_secret")
    client_id: str | None
    secret: str | None
    if basic is not None:
        if body_secret is not None:
            msg = "Authenticate the client one way, HTTP Basic or client_secret."
            raise OAuthError("invalid_request", msg)
        if body_id is not None and body_id != basic[0]:
            msg = "The client_id in the body differs from the one in HTTP Basic."
            raise OAuthError("invalid_request", msg)
        client_id, secret = basic
    else:
        client_id, secret = body_id, body_secret
    if client_id is None:
        raise OAuthError("invalid_request", "Missing required parameter: client_id.")
    client = tenant.config.client(client_id)
    if client is None:
        raise _invalid_client(f"Unknown client {client_id!r}.", basic is not None)
    if client.client_secret is None:
        return client
    if secret is None:
        msg = (
            "A confidential client must authenticate: send client_secret or HTTP Basic."
        )
        raise _invalid_client(msg, basic is not None)
    if not same(secret, client.client_secret):
        raise _invalid_client("Client authentication failed.", basic is not None)
    return client


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid_client(
            "The HTTP Basic credentials are malformed.", True
        ) from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client("The HTTP Basic credentials are malformed.", True)
    # RFC 6749 2.3.1: both parts are form-urlencoded before encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def _invalid_client(description: str, basic: bool) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if basic else None
    return OAuthError("invalid_client", description, 401, headers=headers)


def bearer_token(request: Request) -> str:
    """Return the token of an ``Authorization: Bearer`` header.

    Raises:
        OAuthError: 401 ``invalid_token`` when there is none.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OAuthError(
            "invalid_token",
            "Missing Authorization: Bearer header.",
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()
