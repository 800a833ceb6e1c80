"""``POST /oauth/token`` (every grant), ``POST /oauth/revoke`` and ``/userinfo``.

Grants: ``password``, ``password-realm`` (``realm`` must be the tenant's
``connection``), ``authorization_code`` (with PKCE ``S256`` or ``plain``),
``refresh_token`` (rotation, reuse detection, step-up), ``client_credentials``
and the MFA grants ``mfa-otp``, ``mfa-oob`` and ``mfa-recovery-code``.

Answers chosen where Auth0's sources differ or say nothing (also in
``docs/tenant.md``):

- ``mfa_required`` is HTTP 403, as observed in SDK tests and the legacy
  tutorial (the OpenAPI description says 401).
- ``Wrong email or password.`` is ``invalid_grant`` with HTTP 403, as observed;
  blocked users, leaked passwords, brute-force blocks and the login rate
  limit answer as :mod:`._protection` says.
- An unknown client or a failed client authentication is 401
  ``invalid_client``; a grant the client may not use is 403
  ``unauthorized_client`` with ``Grant type `X` not allowed for the client.``;
  an unknown grant is 400 ``unsupported_grant_type``; a missing or malformed
  parameter is 400 ``invalid_request``.
- An unknown ``audience`` is 403 ``access_denied`` (``Service not found``).
- A ``realm`` other than the tenant's connection is 400 ``invalid_request``.
- A bad authorization code (unknown, expired, used, another client's), a
  ``redirect_uri`` that differs from the one the code was issued for, and a
  missing or wrong PKCE ``code_verifier`` are 400 ``invalid_grant``. Codes
  are single-use: presenting one again also revokes the refresh tokens it
  produced. A ``code_verifier`` sent for a code issued without a challenge
  is refused too.
- ``client_credentials`` needs an ``audience`` the client has
  ``api_access`` to (otherwise 403 ``access_denied``); without ``scope``
  it gets every scope of that access.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from werkzeug.wrappers import Request, Response

from . import _factors
from ._app import ROUTES
from ._config import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    GRANT_TYPES,
    MFA_OOB,
    MFA_OTP,
    MFA_RECOVERY_CODE,
    PASSWORD,
    PASSWORD_REALM,
    REFRESH_TOKEN,
    ClientConfig,
)
from ._errors import OAuthError
from ._http import Params, authenticate_client, bearer_token, json_response
from ._issuing import (
    audience_of,
    audiences,
    exchange_refresh_token,
    granted_scope,
    invalid_token,
    new_refresh_token,
    refresh_token_record,
    revoke_family,
    token_response,
    user_claims,
    verify_access_token,
)
from ._protection import sign_in
from ._secrets import b64url, digest, same
from ._state import AuthorizationCode, MfaTransaction, User

if TYPE_CHECKING:
    from ._tenant import Tenant

logger = logging.getLogger(__name__)

GrantHandler = Callable[["Tenant", ClientConfig, Params], dict[str, Any]]

_PASSWORD_AMR = ("pwd",)
_MFA_AMR = ("pwd", "mfa")
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


@ROUTES.route("/oauth/token", methods=("POST",))
def token(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Run the grant named by ``grant_type`` for an authenticated client."""
    params = Params.of(request)
    client = authenticate_client(tenant, request, params)
    grant_type = params.require("grant_type")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        msg = (
            f"Grant type {grant_type!r} is not supported; "
            f"supported: {', '.join(GRANT_TYPES)}."
        )
        raise OAuthError("unsupported_grant_type", msg)
    if not client.allows(grant_type):
        msg = f"Grant type `{grant_type}` not allowed for the client."
        raise OAuthError("unauthorized_client", msg, 403)
    return json_response(handler(tenant, client, params))


@ROUTES.route("/oauth/revoke", methods=("POST",))
def revoke(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Revoke a refresh token and its whole family (RFC 7009); 200 with no body.

    The client authenticates as at ``/oauth/token``. A token that is
    unknown, already revoked, not a refresh token, or another client's is
    answered 200 too and left as it is, so the answer tells nothing about
    tokens the client does not hold.
    """
    params = Params.of(request)
    client = authenticate_client(tenant, request, params)
    token = params.require("token")
    record = tenant.store.get_refresh_token(digest(token))
    if record is not None and record.client_id == client.client_id:
        revoke_family(tenant, record.family_id)
        logger.debug("Client %s revoked a refresh-token family", client.client_id)
    return Response(status=200, headers={"Cache-Control": "no-store"})


@ROUTES.route("/userinfo", methods=("GET", "POST"))
def userinfo(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Return the profile claims an access token's scope allows."""
    claims = verify_access_token(tenant, bearer_token(request))
    user = tenant.store.get_user(str(claims["sub"]))
    if tenant.userinfo_audience not in audiences(claims) or user is None:
        raise invalid_token("The access token is not valid for /userinfo.")
    return json_response({"sub": user.id, **user_claims(user, claims["scope"].split())})


# --- Password grants ------------------------------------------------------------------


def _password(tenant: Tenant, client: ClientConfig, params: Params) -> dict[str, Any]:
    username = params.require("username")
    password = params.require("password")
    audience = audience_of(tenant, params.get("audience") or params.get("resource"))
    user = sign_in(tenant, username, password)
    scope = granted_scope(tenant, client, audience, params.get("scope"))
    if _factors.needs_mfa(tenant, user, audience):
        raise _factors.mfa_required(tenant, user, client.client_id, audience, scope)
    refresh = _new_family(tenant, client, user, audience, scope, _PASSWORD_AMR)
    return _user_tokens(
        tenant,
        client,
        user,
        audience,
        scope,
        _PASSWORD_AMR,
        grant="password",
        refresh_token=refresh,
    )


def _password_realm(
    tenant: Tenant, client: ClientConfig, params: Params
) -> dict[str, Any]:
    realm = params.require("realm")
    if realm != tenant.config.connection:
        msg = (
            f"Unknown realm {realm!r}; this tenant's connection is "
            f"{tenant.config.connection!r}."
        )
        raise OAuthError("invalid_request", msg)
    return _password(tenant, client, params)


def _new_family(
    tenant: Tenant,
    client: ClientConfig,
    user: User,
    audience: str | None,
    scope: tuple[str, ...],
    amr: tuple[str, ...],
) -> str | None:
    if "offline_access" not in scope:
        return None
    return new_refresh_token(
        tenant,
        user_id=user.id,
        client_id=client.client_id,
        audience=audience,
        scope=scope,
        amr=amr,
    )


# --- Authorization code ---------------------------------------------------------------


def _authorization_code(
    tenant: Tenant, client: ClientConfig, params: Params
) -> dict[str, Any]:
    record = _code_record(tenant, client, params.require("code"))
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        msg = "Missing redirect_uri: the code was issued for one."
        raise OAuthError("invalid_grant", msg)
    if redirect_uri != record.redirect_uri:
        msg = (
            f"redirect_uri {redirect_uri!r} differs from the one "
            "the code was issued for."
        )
        raise OAuthError("invalid_grant", msg)
    _check_pkce(record, params.get("code_verifier"))
    user = tenant.store.get_user(record.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "Invalid authorization code.")
    refresh = _new_family(
        tenant, client, user, record.audience, record.scope, record.amr
    )
    family_id = None
    if refresh is not None:
        stored = tenant.store.get_refresh_token(digest(refresh))
        family_id = stored.family_id if stored else None
    tenant.transient.codes[record.code_hash] = attrs.evolve(
        record, used_at=tenant.clock.now(), family_id=family_id
    )
    return _user_tokens(
        tenant,
        client,
        user,
        record.audience,
        record.scope,
        record.amr,
        grant="authorization_code",
        refresh_token=refresh,
        nonce=record.nonce,
        auth_time=record.auth_time,
    )


def _code_record(tenant: Tenant, client: ClientConfig, code: str) -> AuthorizationCode:
    invalid = OAuthError("invalid_grant", "Invalid authorization code.")
    record = tenant.transient.codes.get(digest(code))
    if record is None or record.client_id != client.client_id:
        raise invalid
    if tenant.clock.now() >= record.expires_at:
        raise OAuthError("invalid_grant", "The authorization code has expired.")
    if record.used_at is not None:
        if record.family_id is not None:
            revoke_family(tenant, record.family_id)
        raise invalid
    return record


def _check_pkce(record: AuthorizationCode, verifier: str | None) -> None:
    if record.code_challenge is None:
        if verifier is not None:
            msg = (
                "code_verifier was sent, but the code was issued "
                "without a code_challenge."
            )
            raise OAuthError("invalid_grant", msg)
        return
    if verifier is None:
        msg = "Missing code_verifier: the code was issued with a code_challenge."
        raise OAuthError("invalid_grant", msg)
    if not _VERIFIER.fullmatch(verifier):
        msg = (
            "code_verifier must be 43 to 128 characters of "
            "A-Z, a-z, 0-9, '-', '.', '_' and '~'."
        )
        raise OAuthError("invalid_grant", msg)
    expected = verifier
    if record.code_challenge_method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode()).digest())
    if not same(expected, record.code_challenge):
        raise OAuthError(
            "invalid_grant", "code_verifier does not match the code_challenge."
        )


# --- Refresh token and client credentials ---------------------------------------------


def _refresh(tenant: Tenant, client: ClientConfig, params: Params) -> dict[str, Any]:
    record = refresh_token_record(
        tenant, client, digest(params.require("refresh_token"))
    )
    user = tenant.store.get_user(record.user_id)
    if user is None:
        msg = "The refresh_token was generated for a user who doesn't exist anymore."
        raise OAuthError("invalid_grant", msg, 403)
    scope = _narrowed(record.scope, params.get("scope"))
    if tenant.config.step_up_on_refresh == "always" and user.mfa == "always":
        raise _factors.mfa_required(
            tenant,
            user,
            client.client_id,
            record.audience,
            scope,
            refresh_token_hash=record.token_hash,
        )
    refresh = exchange_refresh_token(tenant, record)
    return _user_tokens(
        tenant,
        client,
        user,
        record.audience,
        scope,
        record.amr,
        grant="refresh_token",
        refresh_token=refresh,
    )


def _narrowed(granted: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    if requested is None:
        return granted
    asked = requested.split()
    extra = [scope for scope in asked if scope not in granted]
    if extra:
        msg = (
            f"Scope {extra!r} was not granted to this refresh token; "
            f"it may only narrow {list(granted)!r}."
        )
        raise OAuthError("invalid_scope", msg)
    return tuple(scope for scope in granted if scope in asked)


def _client_credentials(
    tenant: Tenant, client: ClientConfig, params: Params
) -> dict[str, Any]:
    audience = params.require("audience")
    allowed = client.api_access.get(audience)
    if allowed is None:
        audience_of(tenant, audience)  # an unknown API: "Service not found"
        msg = f"Client {client.client_id!r} is not authorized to access {audience!r}."
        raise OAuthError("access_denied", msg, 403)
    asked = params.get("scope")
    scope = (
        allowed if asked is None else tuple(s for s in allowed if s in asked.split())
    )
    return token_response(
        tenant,
        client_id=client.client_id,
        user=None,
        subject=f"{client.client_id}@clients",
        audience=audience,
        scope=scope,
        grant="client-credentials",
    )


# --- MFA grants -----------------------------------------------------------------------


def _transaction(
    tenant: Tenant, client: ClientConfig, params: Params
) -> MfaTransaction:
    token = params.require("mfa_token")
    kinds = ("login", "enrolment")
    return _factors.client_transaction(tenant, client.client_id, token, kinds)


def _mfa_otp(tenant: Tenant, client: ClientConfig, params: Params) -> dict[str, Any]:
    transaction = _transaction(tenant, client, params)
    otp = params.code("otp")
    if otp is None:
        raise OAuthError("invalid_request", "Missing required parameter: otp.")
    candidates = _factors.otp_candidates(
        tenant, transaction.user_id, transaction.enrolments
    )
    _factors.verify_otp(tenant, transaction.user_id, otp, candidates)
    return _complete(tenant, transaction)


def _mfa_oob(tenant: Tenant, client: ClientConfig, params: Params) -> dict[str, Any]:
    transaction = _transaction(tenant, client, params)
    _factors.verify_oob(
        tenant,
        params.require("oob_code"),
        params.code("binding_code"),
        transaction_hash=transaction.token_hash,
    )
    return _complete(tenant, transaction)


def _mfa_recovery_code(
    tenant: Tenant, client: ClientConfig, params: Params
) -> dict[str, Any]:
    transaction = _transaction(tenant, client, params)
    code = params.require("recovery_code")
    replacement = _factors.verify_recovery_code(tenant, transaction.user_id, code)
    return {**_complete(tenant, transaction), "recovery_code": replacement}


def _complete(tenant: Tenant, transaction: MfaTransaction) -> dict[str, Any]:
    """Issue what the transaction waited for, now that MFA has passed."""
    user = tenant.store.get_user(transaction.user_id)
    client = tenant.config.client(transaction.client_id)
    if user is None or client is None:
        raise OAuthError("invalid_grant", "Malformed mfa_token", 401)
    refresh = None
    if transaction.kind == "login" and transaction.refresh_token_hash is not None:
        record = refresh_token_record(tenant, client, transaction.refresh_token_hash)
        refresh = exchange_refresh_token(tenant, record)
    elif transaction.kind == "login":
        refresh = _new_family(
            tenant, client, user, transaction.audience, transaction.scope, _MFA_AMR
        )
    return _user_tokens(
        tenant,
        client,
        user,
        transaction.audience,
        transaction.scope,
        _MFA_AMR,
        grant="mfa",
        refresh_token=refresh,
    )


def _user_tokens(
    tenant: Tenant,
    client: ClientConfig,
    user: User,
    audience: str | None,
    scope: tuple[str, ...],
    amr: tuple[str, ...],
    *,
    grant: str,
    refresh_token: str | None,
    nonce: str | None = None,
    auth_time: float | None = None,
) -> dict[str, Any]:
    """The answer of a grant that signed ``user`` in: tokens with them as subject.

    Every grant but ``client_credentials`` (which answers for no user)
    comes here, so that all of them make a user's tokens the same way.
    """
    return token_response(
        tenant,
        client_id=client.client_id,
        user=user,
        subject=user.id,
        audience=audience,
        scope=scope,
        amr=amr,
        grant=grant,
        nonce=nonce,
        auth_time=auth_time,
        refresh_token=refresh_token,
    )


_GRANTS: dict[str, GrantHandler] = {
    PASSWORD: _password,
    PASSWORD_REALM: _password_realm,
    AUTHORIZATION_CODE: _authorization_code,
    REFRESH_TOKEN: _refresh,
    CLIENT_CREDENTIALS: _client_credentials,
    MFA_OTP: _mfa_otp,
    MFA_OOB: _mfa_oob,
    MFA_RECOVERY_CODE: _mfa_recovery_code,
}
