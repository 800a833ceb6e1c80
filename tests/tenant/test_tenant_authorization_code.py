"""Authorization codes: issued in Python for a logged-in user, redeemed over HTTP."""

from __future__ import annotations

import base64
import hashlib

import jwt
import pytest
import requests
from _tenantkit import Api, error_of

from mfaflow.tenant import (
    AUTHORIZATION_CODE,
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    REFRESH_TOKEN,
    OAuthError,
)

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier"
REDIRECT = "http://127.0.0.1:53117/callback"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _issue(api: Api, **options: object) -> str:
    user = api.tenant.find_user(DEMO_EMAIL)
    assert user is not None
    fields: dict[str, object] = {
        "scope": "openid email offline_access",
        "audience": DEMO_API,
        "code_challenge": _s256(VERIFIER),
        "code_challenge_method": "S256",
        "nonce": "n-0S6_WzA2Mj",
        "amr": ("pwd", "mfa"),
    }
    fields.update(options)
    return api.tenant.issue_authorization_code(
        DEMO_CLIENT_ID,
        user.id,
        REDIRECT,
        **fields,  # type: ignore[arg-type]
    )


def _redeem(api: Api, code: str, **fields: str) -> requests.Response:
    defaults = {"redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    return api.token(grant_type=AUTHORIZATION_CODE, code=code, **{**defaults, **fields})


def test_code_with_s256_pkce_is_redeemed_for_tokens(api: Api) -> None:
    """A code and its S256 verifier give tokens; the ID token carries nonce and amr."""
    answer = _redeem(api, _issue(api))

    body = answer.json()
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert answer.status_code == 200
    assert body["scope"] == "openid email read:data offline_access"
    assert "refresh_token" in body
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["amr"] == ["pwd", "mfa"]
    assert claims["email"] == DEMO_EMAIL


def test_code_with_plain_pkce_is_redeemed(api: Api) -> None:
    """The plain method compares the verifier with the challenge as is."""
    code = _issue(api, code_challenge=VERIFIER, code_challenge_method="plain")

    assert _redeem(api, code).status_code == 200


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"code_verifier": ""}, "Missing code_verifier"),
        ({"code_verifier": VERIFIER[::-1]}, "does not match"),
        ({"code_verifier": "short"}, "43 to 128"),
        ({"redirect_uri": "http://127.0.0.1:53117/other"}, "differs"),
        ({"redirect_uri": ""}, "Missing redirect_uri"),
    ],
    ids=[
        "no-verifier",
        "wrong-verifier",
        "bad-verifier",
        "wrong-redirect",
        "no-redirect",
    ],
)
def test_pkce_and_redirect_mismatches_are_invalid_grant(
    api: Api, fields: dict[str, str], fragment: str
) -> None:
    """Missing or wrong verifiers and redirect URIs answer 400 invalid_grant."""
    answer = _redeem(api, _issue(api), **fields)

    status, error, description = error_of(answer)
    assert (status, error) == (400, "invalid_grant")
    assert fragment in description


def test_verifier_for_a_code_without_challenge_is_refused(api: Api) -> None:
    """A verifier sent for a code issued without a challenge is invalid_grant."""
    code = _issue(api, code_challenge=None, code_challenge_method=None)

    assert error_of(_redeem(api, code))[:2] == (400, "invalid_grant")


def test_codes_are_single_use_and_reuse_revokes_their_tokens(api: Api) -> None:
    """A second redemption fails and revokes the refresh token the first one gave."""
    code = _issue(api)
    first = _redeem(api, code)

    second = _redeem(api, code)
    refreshed = api.token(
        grant_type=REFRESH_TOKEN, refresh_token=first.json()["refresh_token"]
    )

    assert error_of(second)[:2] == (400, "invalid_grant")
    assert error_of(refreshed)[:2] == (403, "invalid_grant")


def test_codes_expire(api: Api) -> None:
    """A code older than its lifetime (600 s) is refused."""
    code = _issue(api)

    api.tenant.clock.advance(600)

    assert error_of(_redeem(api, code)) == (
        400,
        "invalid_grant",
        "The authorization code has expired.",
    )


def test_codes_belong_to_their_client(api: Api) -> None:
    """Another client cannot redeem a client's code."""
    answer = _redeem(
        api,
        _issue(api),
        client_id=DEMO_SERVER_CLIENT_ID,
        client_secret=DEMO_SERVER_CLIENT_SECRET,
    )

    assert error_of(answer) == (400, "invalid_grant", "Invalid authorization code.")


def test_confidential_client_redeems_without_pkce(api: Api) -> None:
    """A confidential client authenticates with its secret instead of PKCE."""
    user = api.tenant.find_user(DEMO_EMAIL)
    assert user is not None
    code = api.tenant.issue_authorization_code(DEMO_SERVER_CLIENT_ID, user.id, REDIRECT)

    answer = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": AUTHORIZATION_CODE, "code": code, "redirect_uri": REDIRECT},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )

    assert answer.status_code == 200
    assert answer.json()["scope"] == "openid"


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("http://127.0.0.1/callback", True),
        ("http://127.0.0.1:9/callback", True),
        ("http://localhost:8000/callback", False),
        ("http://127.0.0.1:9/elsewhere", False),
        ("https://127.0.0.1:9/callback", False),
        ("http://evil.test/callback", False),
    ],
)
def test_loopback_callbacks_match_any_port(api: Api, uri: str, allowed: bool) -> None:
    """Registered loopback callbacks match on any port (RFC 8252), nothing else does."""
    assert api.tenant.redirect_uri_allowed(DEMO_CLIENT_ID, uri) is allowed


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uri": "http://evil.test/cb"}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"audience": "https://nope.test/"}, "access_denied"),
        ({"client_id": "nobody"}, "invalid_client"),
        ({"user_id": "auth0|nobody"}, "not_found"),
    ],
    ids=["redirect", "method", "audience", "client", "user"],
)
def test_issuing_refuses_bad_requests(
    api: Api, change: dict[str, str], error: str
) -> None:
    """Issuing a code checks the client, redirect URI, PKCE method, API and user."""
    user = api.tenant.find_user(DEMO_EMAIL)
    assert user is not None
    arguments = {
        "client_id": DEMO_CLIENT_ID,
        "user_id": user.id,
        "redirect_uri": REDIRECT,
        "code_challenge": _s256(VERIFIER),
        **change,
    }

    with pytest.raises(OAuthError) as raised:
        api.tenant.issue_authorization_code(**arguments)  # type: ignore[arg-type]

    assert raised.value.error == error
    assert raised.value.description.endswith(".")
