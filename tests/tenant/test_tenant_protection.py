"""Attack protection of password logins, and revoking refresh tokens (RFC 7009)."""

from __future__ import annotations

import math

import attrs
import pytest
import requests
from _pagekit import Browser, authorize_url, page_of
from _tenantkit import Api, Serve, error_of

from mfaflow.tenant import (
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    PASSWORD,
    REFRESH_TOKEN,
    Limit,
    TenantConfig,
    UserConfig,
)

EMAIL = "pat@example.test"
SECRET_WORD = "pat-password-1"
LOCKED_OUT = "Your account has been blocked after multiple consecutive login attempts."
LEAKED = (
    "This login attempt has been blocked because the password you're using was "
    "previously disclosed through a data breach (not in this application)."
)


@pytest.fixture
def pat(api: Api) -> str:
    """A user without MFA, whose logins give tokens at once."""
    api.tenant.add_user(EMAIL, SECRET_WORD)
    return EMAIL


def _login(api: Api, password: str = SECRET_WORD, **fields: str) -> requests.Response:
    return api.token(
        grant_type=PASSWORD,
        username=EMAIL,
        password=password,
        scope="openid offline_access",
        audience=DEMO_API,
        **fields,
    )


def _config_with(base_config: TenantConfig, **user_fields: bool) -> TenantConfig:
    user = UserConfig.with_password(EMAIL, SECRET_WORD, work_factor=10, **user_fields)
    return attrs.evolve(base_config, users=(*base_config.users, user))


# --- Brute-force protection -----------------------------------------------------------


def test_ten_wrong_passwords_block_even_the_right_one(api: Api, pat: str) -> None:
    """After ten wrong passwords in a row the right one gets 429 too_many_attempts."""
    wrong = [_login(api, "wrong").status_code for _ in range(10)]
    locked = _login(api)

    assert wrong == [403] * 10
    assert error_of(locked) == (429, "too_many_attempts", LOCKED_OUT)
    assert int(locked.headers["Retry-After"]) == 30 * 24 * 3600
    assert not [name for name in locked.headers if name.startswith("X-RateLimit")]


def test_the_blocks_retry_after_is_rounded_up(api: Api, pat: str) -> None:
    """Retry-After never names a time before the block ends."""
    for _ in range(10):
        _login(api, "wrong")
    api.tenant.clock.advance(0.7)

    locked = _login(api)

    assert locked.headers["Retry-After"] == str(30 * 24 * 3600)


def test_a_right_password_resets_the_count(api: Api, pat: str) -> None:
    """Nine wrong passwords, a right one, nine more: the user is not blocked."""
    for _ in range(9):
        _login(api, "wrong")
    _login(api)
    for _ in range(9):
        _login(api, "wrong")

    assert _login(api).status_code == 200


def test_the_block_ends_with_time_or_when_lifted(api: Api, pat: str) -> None:
    """A brute-force block ends after login_lockout seconds, or at once when lifted."""
    for _ in range(10):
        _login(api, "wrong")
    api.tenant.clock.advance(api.tenant.config.limits.login_lockout - 1)
    still = _login(api)
    api.tenant.clock.advance(1)
    after_time = _login(api)
    for _ in range(10):
        _login(api, "wrong")
    lifted = api.post("__control/users/unblock", {"user": EMAIL})
    after_unblock = _login(api)

    assert error_of(still)[:2] == (429, "too_many_attempts")
    assert after_time.status_code == 200
    assert lifted.json()["blocked"] is False
    assert after_unblock.status_code == 200


def test_the_login_pages_share_the_block(api: Api, pat: str) -> None:
    """Wrong passwords on the pages count too, and the form then shows the block."""
    browser = Browser(api.url)
    page = page_of(browser.get(authorize_url(api.url)))
    for _ in range(10):
        answer = browser.submit(page.form("/u/login"), email=EMAIL, password="wrong")
        page = page_of(answer)
    blocked = browser.submit(page.form("/u/login"), email=EMAIL, password=SECRET_WORD)
    browser.close()

    assert blocked.status_code == 429
    assert page_of(blocked).text("error") == LOCKED_OUT
    assert error_of(_login(api))[:2] == (429, "too_many_attempts")


# --- Blocked users and leaked passwords -----------------------------------------------


def test_a_blocked_user_is_refused_once_the_password_is_right(
    base_config: TenantConfig, serve: Serve
) -> None:
    """A user blocked in the configuration gets 401 for the right password."""
    with serve(_config_with(base_config, blocked=True)) as api:
        right = _login(api)
        wrong = _login(api, "wrong")

    assert error_of(right) == (401, "unauthorized", "user is blocked")
    assert error_of(wrong) == (403, "invalid_grant", "Wrong email or password.")


def test_the_control_surface_blocks_and_unblocks(api: Api, pat: str) -> None:
    """POST /__control/users/block refuses logins until /unblock."""
    blocked = api.post("__control/users/block", {"user": EMAIL})
    refused = _login(api)
    api.post("__control/users/unblock", {"user": EMAIL})

    assert blocked.json()["blocked"] is True
    assert error_of(refused)[:2] == (401, "unauthorized")
    assert _login(api).status_code == 200


def test_a_leaked_password_is_refused(base_config: TenantConfig, serve: Serve) -> None:
    """A user whose password leaked gets 401 password_leaked with Auth0's text."""
    with serve(_config_with(base_config, password_leaked=True)) as api:
        right = _login(api)
        wrong = _login(api, "wrong")

    assert error_of(right) == (401, "password_leaked", LEAKED)
    assert error_of(wrong)[:2] == (403, "invalid_grant")


def test_control_users_may_start_blocked_or_leaked(api: Api) -> None:
    """POST /__control/users takes blocked and password_leaked as JSON booleans."""
    added = api.post(
        "__control/users",
        {"email": EMAIL, "password": SECRET_WORD, "password_leaked": True},
    )
    bad = api.post(
        "__control/users",
        {"email": "x@example.test", "password": "p", "blocked": "maybe"},
    )

    assert added.status_code == 201
    assert added.json()["password_leaked"] is True
    assert error_of(_login(api))[:2] == (401, "password_leaked")
    assert error_of(bad) == (
        400,
        "invalid_request",
        "Parameter 'blocked' must be true or false; got 'maybe'.",
    )


# --- Login rate limit -----------------------------------------------------------------


def test_the_login_rate_limit_is_429_with_its_headers(
    base_config: TenantConfig, serve: Serve
) -> None:
    """Past limits.logins, a password login answers 429 too_many_requests."""
    limits = attrs.evolve(base_config.limits, logins=Limit(2, 60))
    with serve(attrs.evolve(_config_with(base_config), limits=limits)) as api:
        allowed = [_login(api).status_code, _login(api, "wrong").status_code]
        refused = _login(api)
        now = api.tenant.clock.now()
        api.tenant.clock.advance(60)
        later = _login(api)

    assert allowed == [200, 403]
    assert error_of(refused) == (
        429,
        "too_many_requests",
        "Too many logins for this user; wait before trying again.",
    )
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == str(math.ceil(now) + 60)
    assert later.status_code == 200


# --- /oauth/revoke --------------------------------------------------------------------


def _refresh(api: Api, token: str, **fields: str) -> requests.Response:
    return api.token(grant_type=REFRESH_TOKEN, refresh_token=token, **fields)


def test_revoking_a_refresh_token_revokes_its_family(api: Api, pat: str) -> None:
    """After /oauth/revoke neither the token nor the one it rotated into works."""
    first = _login(api).json()["refresh_token"]
    second = _refresh(api, first).json()["refresh_token"]

    answer = api.session.post(
        api.url + "oauth/revoke", data={"client_id": DEMO_CLIENT_ID, "token": first}
    )

    assert (answer.status_code, answer.content) == (200, b"")
    assert error_of(_refresh(api, second))[:2] == (403, "invalid_grant")
    assert "revocation_endpoint" in api.get(".well-known/openid-configuration").json()


def test_a_confidential_client_authenticates_to_revoke(api: Api, pat: str) -> None:
    """A confidential client must authenticate; with Basic it revokes its token."""
    server = {"client_id": DEMO_SERVER_CLIENT_ID}
    token = _login(api, **server, client_secret=DEMO_SERVER_CLIENT_SECRET).json()
    refresh = token["refresh_token"]
    url = api.url + "oauth/revoke"

    anonymous = api.session.post(url, data={**server, "token": refresh})
    still = _refresh(api, refresh, **server, client_secret=DEMO_SERVER_CLIENT_SECRET)
    revoked = api.session.post(
        url,
        data={"token": still.json()["refresh_token"]},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )

    assert error_of(anonymous)[:2] == (401, "invalid_client")
    assert still.status_code == 200
    assert revoked.status_code == 200
    after = _refresh(
        api,
        still.json()["refresh_token"],
        **server,
        client_secret=DEMO_SERVER_CLIENT_SECRET,
    )
    assert error_of(after)[:2] == (403, "invalid_grant")


def test_revoke_leaves_unknown_and_foreign_tokens_alone(api: Api, pat: str) -> None:
    """Unknown tokens and other clients' tokens answer 200 and nothing changes."""
    mine = _login(api).json()["refresh_token"]
    url = api.url + "oauth/revoke"

    unknown = api.session.post(url, data={"client_id": DEMO_CLIENT_ID, "token": "x"})
    foreign = api.session.post(
        url,
        data={"token": mine},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )
    missing = api.session.post(url, data={"client_id": DEMO_CLIENT_ID})

    assert (unknown.status_code, foreign.status_code) == (200, 200)
    assert _refresh(api, mine).status_code == 200
    assert error_of(missing) == (
        400,
        "invalid_request",
        "Missing required parameter: token.",
    )
