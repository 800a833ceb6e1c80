"""Refresh tokens over HTTP: rotation, reuse detection, leeway, expiry, step-up."""

from __future__ import annotations

import attrs
import requests
from _tenantkit import Api, Serve, error_of

from mfaflow.tenant import (
    DEMO_API,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    PASSWORD,
    REFRESH_TOKEN,
    RefreshTokenPolicy,
    TenantConfig,
)

EMAIL = "refresher@example.test"
PASSWORD_VALUE = "refresher-password-3"
INVALID = (403, "invalid_grant", "Unknown or invalid refresh token.")


def _sign_in(api: Api, scope: str) -> requests.Response:
    """The password grant for the test's user (added if need be), for ``scope``."""
    if api.tenant.find_user(EMAIL) is None:
        api.tenant.add_user(EMAIL, PASSWORD_VALUE)
    return api.token(
        grant_type=PASSWORD,
        username=EMAIL,
        password=PASSWORD_VALUE,
        audience=DEMO_API,
        scope=scope,
    )


def _first_refresh_token(api: Api) -> str:
    answer = _sign_in(api, "openid offline_access")
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["refresh_token"]
    return token


def _refresh(api: Api, token: str, **fields: str) -> requests.Response:
    return api.token(grant_type=REFRESH_TOKEN, refresh_token=token, **fields)


def test_rotation_issues_a_new_refresh_token_each_time(api: Api) -> None:
    """Each refresh returns new access, ID and refresh tokens."""
    first = _first_refresh_token(api)

    answer = _refresh(api, first)

    body = answer.json()
    assert answer.status_code == 200
    assert body["refresh_token"] != first
    assert body["scope"] == "openid read:data offline_access"
    assert "id_token" in body


def test_reusing_a_rotated_token_revokes_the_family(api: Api) -> None:
    """A retired token fails and also kills the newest token of its family."""
    first = _first_refresh_token(api)
    second = _refresh(api, first).json()["refresh_token"]
    unrelated = _first_refresh_token(api)

    reused = _refresh(api, first)
    newest = _refresh(api, second)

    assert error_of(reused) == INVALID
    assert error_of(newest) == INVALID
    assert _refresh(api, unrelated).status_code == 200


def test_leeway_allows_the_previous_token_briefly(
    base_config: TenantConfig, serve: Serve
) -> None:
    """Within the leeway the previous token still works; after it, reuse revokes."""
    policy = RefreshTokenPolicy(rotation=True, leeway=30)
    with serve(attrs.evolve(base_config, refresh_tokens=policy)) as api:
        first = _first_refresh_token(api)
        second = _refresh(api, first).json()["refresh_token"]
        api.tenant.clock.advance(10)
        within = _refresh(api, first)
        api.tenant.clock.advance(30)
        after = _refresh(api, first)
        family = _refresh(api, second)

    assert within.status_code == 200
    assert error_of(after) == INVALID
    assert error_of(family) == INVALID


def test_without_rotation_the_token_is_reused(
    base_config: TenantConfig, serve: Serve
) -> None:
    """With rotation off the same refresh token keeps working and none is returned."""
    policy = RefreshTokenPolicy(rotation=False)
    with serve(attrs.evolve(base_config, refresh_tokens=policy)) as api:
        token = _first_refresh_token(api)
        answers = [_refresh(api, token) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("refresh_token" not in a.json() for a in answers)


def _refreshed_again(
    base_config: TenantConfig, serve: Serve, waits: tuple[int, int], **lifetimes: int
) -> requests.Response:
    """Refresh once after ``waits[0]`` seconds, then with the new token after
    ``waits[1]`` more, at a tenant with ``lifetimes``; the second answer."""
    config = attrs.evolve(
        base_config, lifetimes=attrs.evolve(base_config.lifetimes, **lifetimes)
    )
    with serve(config) as api:
        token = _first_refresh_token(api)
        api.tenant.clock.advance(waits[0])
        token = _refresh(api, token).json()["refresh_token"]
        api.tenant.clock.advance(waits[1])
        return _refresh(api, token)


def test_refresh_token_expires_when_idle(
    base_config: TenantConfig, serve: Serve
) -> None:
    """A refresh token unused for its idle lifetime stops working."""
    answer = _refreshed_again(base_config, serve, (99, 100), refresh_token_idle=100)

    assert error_of(answer) == INVALID


def test_rotation_does_not_extend_the_absolute_lifetime(
    base_config: TenantConfig, serve: Serve
) -> None:
    """A family ends at its absolute lifetime, however recently it was used."""
    answer = _refreshed_again(
        base_config,
        serve,
        (500, 500),
        refresh_token_absolute=1000,
        refresh_token_idle=600,
    )

    assert error_of(answer) == INVALID


def test_scope_can_narrow_but_not_widen(api: Api) -> None:
    """A refresh may ask for fewer scopes; asking for more is invalid_scope."""
    token = _first_refresh_token(api)

    narrowed = _refresh(api, token, scope="read:data")
    widened = _refresh(api, narrowed.json()["refresh_token"], scope="read:data email")

    assert narrowed.json()["scope"] == "read:data"
    assert "id_token" not in narrowed.json()
    assert error_of(widened)[:2] == (400, "invalid_scope")


def test_refresh_tokens_belong_to_their_client(api: Api) -> None:
    """Another client cannot use a client's refresh token."""
    token = _first_refresh_token(api)

    answer = api.token(
        grant_type=REFRESH_TOKEN,
        refresh_token=token,
        client_id=DEMO_SERVER_CLIENT_ID,
        client_secret=DEMO_SERVER_CLIENT_SECRET,
    )

    assert error_of(answer) == INVALID
    assert error_of(_refresh(api, "made-up")) == INVALID


def test_offline_access_needs_an_api_that_allows_it(
    base_config: TenantConfig, serve: Serve
) -> None:
    """No refresh token is issued for an API without offline access."""
    api_config = attrs.evolve(base_config.apis[0], allow_offline_access=False)
    with serve(attrs.evolve(base_config, apis=(api_config,))) as api:
        answer = _sign_in(api, "offline_access")

    assert answer.json()["scope"] == "read:data"
    assert "refresh_token" not in answer.json()


def test_step_up_on_refresh_asks_for_mfa_then_rotates(
    base_config: TenantConfig, serve: Serve
) -> None:
    """With step-up on, refresh answers mfa_required; passing MFA rotates the token."""
    with serve(attrs.evolve(base_config, step_up_on_refresh="always")) as api:
        secret, tokens = api.enrol_otp()
        original = tokens["refresh_token"]

        stepped = _refresh(api, original)
        mfa_token = stepped.json()["mfa_token"]
        passed = api.verify_otp(mfa_token, api.next_totp(secret))
        reused = _refresh(api, original)

    assert error_of(stepped)[:2] == (403, "mfa_required")
    assert stepped.json()["mfa_requirements"] == {
        "challenge": [{"type": "otp"}, {"type": "recovery-code"}]
    }
    assert passed.status_code == 200
    assert passed.json()["refresh_token"] != original
    assert error_of(reused) == INVALID


def test_non_mfa_users_refresh_without_step_up(
    base_config: TenantConfig, serve: Serve
) -> None:
    """Step-up applies only to users whose policy asks for MFA."""
    with serve(attrs.evolve(base_config, step_up_on_refresh="always")) as api:
        answer = _refresh(api, _first_refresh_token(api))

    assert answer.status_code == 200
