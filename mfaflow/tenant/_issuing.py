"""Issuing tokens: audiences, scopes, access and ID tokens, refresh-token families.

Choices (also in ``docs/tenant.md``):

- Without an ``audience`` the access token is a JWT for ``/userinfo`` only
  (Auth0 issues an opaque one there).
- The MFA audience is ``https://{issuer host}/mfa/``; it is accepted with or
  without the trailing slash, and with the issuer's own scheme (``http``
  on loopback). Its tokens last 600 s, always.
- With no API scope requested, every scope of the API is granted (as Auth0
  does for the password grant); unknown scopes are dropped. ``offline_access``
  is granted only when the API allows offline access and the client may use
  the ``refresh_token`` grant. The answer always carries ``scope``.
- Refresh tokens rotate when ``refresh_tokens.rotation`` is on: each use
  gives a new token and retires the old one. Presenting a retired token
  revokes its whole family (every token from the same original grant),
  except the immediately previous token within the ``leeway`` seconds after
  it was retired. An invalid, expired, revoked or foreign refresh token
  answers 403 ``invalid_grant`` ``Unknown or invalid refresh token.``.
  A refresh may narrow the scope of the new access token; the refresh token
  keeps its original scope.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._config import REFRESH_TOKEN, ClientConfig
from ._errors import OAuthError
from ._secrets import digest, new_token
from ._state import RefreshToken, User

if TYPE_CHECKING:
    from ._tenant import Tenant

logger = logging.getLogger(__name__)

#: The scopes of the MFA API.
MFA_SCOPES = ("enroll", "read:authenticators", "remove:authenticators")
#: MFA-audience access tokens always last this long (seconds).
MFA_TOKEN_LIFETIME = 600
_OIDC_SCOPES = ("openid", "profile", "email")
_OFFLINE = "offline_access"


def audience_of(tenant: Tenant, audience: str | None) -> str | None:
    """Return the canonical audience for the ``audience`` parameter.

    Raises:
        OAuthError: 403 ``access_denied`` for an unknown API.
    """
    if not audience:
        return None
    if audience in tenant.mfa_audiences:
        return tenant.mfa_audience
    if tenant.config.api(audience) is not None:
        return audience
    raise OAuthError("access_denied", f"Service not found: {audience!r}.", 403)


def granted_scope(
    tenant: Tenant, client: ClientConfig, audience: str | None, requested: str | None
) -> tuple[str, ...]:
    """Return the scopes granted for a user's token (see the module docstring)."""
    asked = (requested or "").split()
    api_scopes, offline = _audience_scopes(tenant, audience)
    granted = [scope for scope in _OIDC_SCOPES if scope in asked]
    chosen = [scope for scope in api_scopes if scope in asked]
    granted += chosen or list(api_scopes)
    if _OFFLINE in asked and offline and client.allows(REFRESH_TOKEN):
        granted.append(_OFFLINE)
    return tuple(granted)


def _audience_scopes(
    tenant: Tenant, audience: str | None
) -> tuple[Sequence[str], bool]:
    if audience is None:
        return (), True
    if audience == tenant.mfa_audience:
        return MFA_SCOPES, True
    api = tenant.config.api(audience)
    assert api is not None  # audience_of() let only known APIs through
    return api.scopes, api.allow_offline_access


def token_response(
    tenant: Tenant,
    *,
    client_id: str,
    user: User | None,
    subject: str,
    audience: str | None,
    scope: Sequence[str],
    amr: Sequence[str] = (),
    grant: str,
    nonce: str | None = None,
    auth_time: float | None = None,
    refresh_token: str | None = None,
) -> dict[str, Any]:
    """Return the body of a successful ``/oauth/token`` answer.

    The access token is for ``audience`` (and ``/userinfo`` when ``openid``
    is granted); an ID token comes with ``openid``; ``refresh_token`` is
    added as given.
    """
    now = tenant.clock.now()
    lifetime = _access_lifetime(tenant, audience)
    audiences = [audience] if audience else []
    if audience is None or "openid" in scope:
        audiences.append(tenant.userinfo_audience)
    claims: dict[str, Any] = {
        "iss": tenant.issuer,
        "sub": subject,
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "iat": int(now),
        "exp": int(now) + lifetime,
        "scope": " ".join(scope),
        "azp": client_id,
        "gty": grant,
        "jti": new_token(nbytes=12),
    }
    body: dict[str, Any] = {
        "access_token": tenant.signing_key.sign(claims),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scope),
    }
    if user is not None and "openid" in scope:
        body["id_token"] = id_token(
            tenant, user, client_id, scope, nonce, amr, auth_time
        )
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    logger.debug(
        "Issued tokens to client %s for %s (grant %s)", client_id, subject, grant
    )
    return body


def _access_lifetime(tenant: Tenant, audience: str | None) -> int:
    if audience == tenant.mfa_audience:
        return MFA_TOKEN_LIFETIME
    api = tenant.config.api(audience) if audience else None
    if api is not None and api.token_lifetime is not None:
        return api.token_lifetime
    return tenant.config.lifetimes.access_token


def id_token(
    tenant: Tenant,
    user: User,
    client_id: str,
    scope: Sequence[str],
    nonce: str | None,
    amr: Sequence[str],
    auth_time: float | None,
) -> str:
    """Return an RS256 ID token for ``user``, with claims as ``scope`` allows."""
    now = tenant.clock.now()
    claims: dict[str, Any] = {
        "iss": tenant.issuer,
        "sub": user.id,
        "aud": client_id,
        "iat": int(now),
        "exp": int(now) + tenant.config.lifetimes.id_token,
        "auth_time": int(auth_time if auth_time is not None else now),
        **user_claims(user, scope),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if amr:
        claims["amr"] = list(amr)
    return tenant.signing_key.sign(claims)


def user_claims(user: User, scope: Sequence[str]) -> dict[str, Any]:
    """Return the profile claims ``scope`` allows (``profile``, ``email``)."""
    claims: dict[str, Any] = {}
    if "profile" in scope:
        claims["name"] = user.name or user.email
        claims["nickname"] = user.email.partition("@")[0]
    if "email" in scope:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


def verify_access_token(tenant: Tenant, token: str) -> dict[str, Any]:
    """Return the claims of one of this tenant's live access tokens.

    Raises:
        OAuthError: 401 ``invalid_token`` when the signature, issuer or
            expiry is wrong.
    """
    claims = tenant.signing_key.verify(token)
    if (
        claims is None
        or claims.get("iss") != tenant.issuer
        or "scope" not in claims
        or not isinstance(claims.get("exp"), int)
    ):
        raise invalid_token("The access token is not valid for this tenant.")
    if tenant.clock.now() >= claims["exp"]:
        raise invalid_token("The access token has expired.")
    return claims


def invalid_token(description: str) -> OAuthError:
    """Return a 401 ``invalid_token`` answer with its ``WWW-Authenticate`` header."""
    return OAuthError(
        "invalid_token",
        description,
        401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def audiences(claims: dict[str, Any]) -> list[str]:
    """Return the ``aud`` claim as a list."""
    aud = claims.get("aud", [])
    return [aud] if isinstance(aud, str) else list(aud)


# --- Refresh tokens -------------------------------------------------------------------


def new_refresh_token(
    tenant: Tenant,
    *,
    user_id: str,
    client_id: str,
    audience: str | None,
    scope: Sequence[str],
    amr: Sequence[str],
    parent: RefreshToken | None = None,
) -> str:
    """Store and return a new refresh token: a new family, or ``parent``'s."""
    now = tenant.clock.now()
    token = new_token()
    tenant.store.put_refresh_token(
        RefreshToken(
            token_hash=digest(token),
            family_id=parent.family_id if parent else new_token(nbytes=12),
            user_id=user_id,
            client_id=client_id,
            audience=audience,
            scope=scope,
            amr=amr,
            issued_at=now,
            family_issued_at=parent.family_issued_at if parent else now,
            last_used_at=now,
        )
    )
    return token


def refresh_token_record(
    tenant: Tenant, client: ClientConfig, token_hash: str
) -> RefreshToken:
    """Return the usable refresh token stored under ``token_hash``.

    Presenting a retired token outside the leeway revokes its family.

    Raises:
        OAuthError: 403 ``invalid_grant`` ``Unknown or invalid refresh token.``.
    """
    invalid = OAuthError("invalid_grant", "Unknown or invalid refresh token.", 403)
    record = tenant.store.get_refresh_token(token_hash)
    if record is None or record.client_id != client.client_id or record.revoked:
        raise invalid
    now = tenant.clock.now()
    lifetimes = tenant.config.lifetimes
    if (
        now >= record.family_issued_at + lifetimes.refresh_token_absolute
        or now >= record.last_used_at + lifetimes.refresh_token_idle
    ):
        raise invalid
    if record.rotated_at is not None and not _reuse_allowed(tenant, record, now):
        revoke_family(tenant, record.family_id)
        logger.info("A retired refresh token was reused; its family is revoked")
        raise invalid
    return record


def _reuse_allowed(tenant: Tenant, record: RefreshToken, now: float) -> bool:
    leeway = tenant.config.refresh_tokens.leeway
    if record.rotated_at is None or leeway <= 0 or now - record.rotated_at > leeway:
        return False
    family = tenant.store.refresh_family(record.family_id)
    is_previous = len(family) >= 2 and family[-2].token_hash == record.token_hash
    return is_previous and family[-1].rotated_at is None


def revoke_family(tenant: Tenant, family_id: str) -> None:
    """Revoke every refresh token of a family."""
    for token in tenant.store.refresh_family(family_id):
        tenant.store.put_refresh_token(attrs.evolve(token, revoked=True))


def exchange_refresh_token(tenant: Tenant, record: RefreshToken) -> str | None:
    """Mark ``record`` used; with rotation, retire it and return its successor."""
    now = tenant.clock.now()
    if not tenant.config.refresh_tokens.rotation:
        tenant.store.put_refresh_token(attrs.evolve(record, last_used_at=now))
        return None
    tenant.store.put_refresh_token(
        attrs.evolve(record, last_used_at=now, rotated_at=record.rotated_at or now)
    )
    return new_refresh_token(
        tenant,
        user_id=record.user_id,
        client_id=record.client_id,
        audience=record.audience,
        scope=record.scope,
        amr=record.amr,
        parent=record,
    )
