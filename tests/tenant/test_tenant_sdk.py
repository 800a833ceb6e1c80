"""The official auth0-python SDK against the tenant on loopback."""

from __future__ import annotations

import base64
import hashlib

import pytest
from _tenantkit import Api
from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error

from mfaflow.tenant import (
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
)

REDIRECT = "http://127.0.0.1:8080/callback"


def _sdk(
    api: Api, client_id: str = DEMO_CLIENT_ID, secret: str | None = None
) -> GetToken:
    domain = api.url.removeprefix("http://").rstrip("/")
    return GetToken(
        domain, client_id, client_secret=secret, protocol="http", timeout=10
    )


def test_password_realm_login_raises_mfa_required_with_the_token(api: Api) -> None:
    """The SDK's login gets mfa_required, its error carrying the mfa_token."""
    with pytest.raises(Auth0Error) as raised:
        _sdk(api).login(
            DEMO_EMAIL,
            DEMO_PASSWORD,
            realm="Username-Password-Authentication",
            scope="openid offline_access",
            audience=DEMO_API,
        )

    error = raised.value
    assert error.content is not None
    assert error.status_code == 403
    assert error.error_code == "mfa_required"
    assert error.content["mfa_token"].startswith("Fe26.2*")
    assert error.content["mfa_requirements"]["enroll"][0] == {"type": "otp"}


def test_login_after_mfa_then_refresh_with_the_sdk(api: Api) -> None:
    """Tokens obtained after MFA refresh through the SDK, rotating the refresh token."""
    _, tokens = api.enrol_otp()

    refreshed = _sdk(api).refresh_token(tokens["refresh_token"])

    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["token_type"] == "Bearer"


def test_wrong_password_through_the_sdk(api: Api) -> None:
    """The SDK reports the tenant's invalid_grant for a wrong password."""
    with pytest.raises(Auth0Error) as raised:
        _sdk(api).login(DEMO_EMAIL, "wrong", realm="Username-Password-Authentication")

    assert (raised.value.status_code, raised.value.error_code) == (403, "invalid_grant")
    assert raised.value.message == "Wrong email or password."


def test_client_credentials_with_the_sdk(api: Api) -> None:
    """A confidential client gets an API token through the SDK (secret in the body)."""
    sdk = _sdk(api, DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET)

    tokens = sdk.client_credentials(DEMO_API)

    assert tokens["scope"] == "read:data"
    assert tokens["expires_in"] == 86400


def test_code_exchange_with_pkce_through_the_sdk(api: Api) -> None:
    """The SDK's authorization_code_pkce redeems a code issued for the user."""
    verifier = base64.urlsafe_b64encode(b"v" * 40).decode().rstrip("=")
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        .decode()
        .rstrip("=")
    )
    user = api.tenant.find_user(DEMO_EMAIL)
    assert user is not None
    code = api.tenant.issue_authorization_code(
        DEMO_CLIENT_ID,
        user.id,
        REDIRECT,
        scope="openid profile",
        code_challenge=challenge,
        code_challenge_method="S256",
    )

    tokens = _sdk(api).authorization_code_pkce(verifier, code, REDIRECT)

    assert {"access_token", "id_token"} <= tokens.keys()


def test_code_exchange_with_a_secret_through_the_sdk(api: Api) -> None:
    """The SDK's authorization_code redeems a confidential client's code."""
    user = api.tenant.find_user(DEMO_EMAIL)
    assert user is not None
    code = api.tenant.issue_authorization_code(DEMO_SERVER_CLIENT_ID, user.id, REDIRECT)
    sdk = _sdk(api, DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET)

    tokens = sdk.authorization_code(code, REDIRECT)

    assert tokens["scope"] == "openid"
