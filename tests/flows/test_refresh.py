"""The refresh flow: rotation, reuse detection, narrowing and step-up."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from _flow_helpers import (
    BROWSER_CLIENT,
    PASSWORD,
    PUBLIC_CLIENT,
    SCRIPTED_TOKENS,
    Driver,
    Scripted,
    assert_unreachable,
    edges,
    make_driver,
    mfa_api_refresh_token,
    scripted_driver,
    scripted_mfa,
)
from _servers import serve_wsgi

from mfaflow.tenant import LoopbackServer, RefreshTokenPolicy, Tenant


def refresh_token_of(driver: Driver, user: str = "plain") -> str:
    """Sign ``user`` in (without MFA) and return the refresh token."""
    result = driver.start(
        "password-grant", username=f"{user}@example.test", password=PASSWORD
    )
    assert result.outcome == "success", result
    token: str = result.outputs["refresh_token"]
    return token


def test_rotated_refresh_token_replaces_the_old(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A rotating tenant's new refresh token is the output, and it works next time."""
    first = refresh_token_of(driver)

    result = driver.start("refresh", refresh_token=first)

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert result.message == "The tokens were refreshed."
    second = result.outputs["refresh_token"]
    assert second
    assert second != first
    assert result.outputs["rotated"] is True
    assert result.outputs["access_token"]
    assert result.outputs["id_token"]

    third = driver.start("refresh", refresh_token=second)
    assert third.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_reused_refresh_token_fails_and_revokes_the_family(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Using a rotated-out refresh token fails, and so does its successor afterwards."""
    first = refresh_token_of(driver)
    second = driver.start("refresh", refresh_token=first).outputs["refresh_token"]

    reused = driver.start("refresh", refresh_token=first)

    assert (reused.outcome, reused.state) == ("failure", "revoked")
    assert reused.message == (
        "The refresh token was revoked, has expired or was already used; sign in again."
    )
    assert reused.outputs["error"] == "invalid_grant"
    successor = driver.start("refresh", refresh_token=second)
    assert successor.state == "revoked"
    driver.assert_no_secret_leaked(logs)


def revoke(served: LoopbackServer, token: str) -> None:
    """Revoke ``token`` at the tenant's /oauth/revoke, as the public client."""
    answer = requests.post(
        served.url + "oauth/revoke",
        data={"token": token, "client_id": PUBLIC_CLIENT},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def test_revoked_refresh_token_fails(
    driver: Driver, served: LoopbackServer, logs: pytest.LogCaptureFixture
):
    """A refresh token revoked at /oauth/revoke ends a refresh in revoked, with
    the tenant's error, and gives no tokens."""
    token = refresh_token_of(driver)
    revoke(served, token)

    result = driver.start("refresh", refresh_token=token)

    assert (result.outcome, result.state) == ("failure", "revoked")
    assert result.message == (
        "The refresh token was revoked, has expired or was already used; sign in again."
    )
    assert result.outputs == {
        "error": "invalid_grant",
        "error_description": "Unknown or invalid refresh token.",
    }
    assert [entry.state for entry in result.history] == ["request_token", "revoked"]
    driver.assert_no_secret_leaked(logs)


def test_revoking_a_refresh_token_revokes_its_family(
    driver: Driver, served: LoopbackServer, logs: pytest.LogCaptureFixture
):
    """Revoking the refresh token a sign-in gave also revokes the one its
    rotation gave, so a refresh with that one ends in revoked too."""
    first = refresh_token_of(driver)
    rotated = driver.start("refresh", refresh_token=first)
    revoke(served, first)

    result = driver.start("refresh", refresh_token=rotated.outputs["refresh_token"])

    assert rotated.outputs["rotated"] is True
    assert (result.outcome, result.state) == ("failure", "revoked")
    assert result.outputs["error"] == "invalid_grant"
    driver.assert_no_secret_leaked(logs)


def test_unknown_refresh_token_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A refresh token the tenant never issued ends as revoked."""
    result = driver.start("refresh", refresh_token="v1.not-a-refresh-token")

    assert (result.outcome, result.state) == ("failure", "revoked")
    driver.assert_no_secret_leaked(logs)


def test_tenant_without_rotation_keeps_the_old_token(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """Without rotation the old refresh token is output again and rotated is false."""
    driver = serve(refresh_tokens=RefreshTokenPolicy(rotation=False))
    first = refresh_token_of(driver)

    result = driver.start("refresh", refresh_token=first)

    assert result.outcome == "success"
    assert result.outputs["refresh_token"] == first
    assert result.outputs["rotated"] is False
    driver.assert_no_secret_leaked(logs)


def test_scope_can_only_narrow(driver: Driver, logs: pytest.LogCaptureFixture):
    """A narrower scope is granted; a wider one ends as a bad request."""
    token = refresh_token_of(driver)

    narrow = driver.start("refresh", refresh_token=token, scope="openid read:data")
    assert narrow.outputs["scope"] == "openid read:data"

    wide = driver.start(
        "refresh", refresh_token=narrow.outputs["refresh_token"], scope="admin"
    )
    assert (wide.outcome, wide.state) == ("failure", "bad_request")
    assert wide.outputs["error"] == "invalid_scope"
    driver.assert_no_secret_leaked(logs)


def test_step_up_on_refresh(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A refresh answered with mfa_required passes MFA, then gives rotated tokens."""
    driver = serve(step_up_on_refresh="always")
    login = driver.start(
        "password-grant", username="otp@example.test", password=PASSWORD
    )
    login = driver.resume(login, otp=driver.totp())
    first = login.outputs["refresh_token"]
    driver.advance(30)

    result = driver.start("refresh", refresh_token=first)

    assert result.state == "ask_otp"
    result = driver.resume(result, otp=driver.totp())

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert result.outputs["rotated"] is True
    assert result.outputs["refresh_token"] != first
    assert [entry.flow for entry in result.history].count("mfa-challenge") >= 3
    driver.assert_no_secret_leaked(logs)


def test_failed_step_up_fails_the_refresh(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A push rejected during a refresh's step-up ends the refresh as a failure."""
    driver = serve(step_up_on_refresh="always")
    login = driver.start(
        "password-grant",
        username="push@example.test",
        password=PASSWORD,
        authenticator_id="push",
    )
    driver.tenant.approve_push("push@example.test")
    login = driver.after_wait(login)

    result = driver.start(
        "refresh", refresh_token=login.outputs["refresh_token"], authenticator_id="push"
    )
    driver.tenant.reject_push("push@example.test")
    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("failure", "step_up_failed")
    assert result.message == "The push notification was rejected on the device."
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("client_id", "error"),
    [("no-such-client", "invalid_client"), (BROWSER_CLIENT, "unauthorized_client")],
)
def test_client_the_tenant_refuses_fails(
    driver: Driver,
    served: LoopbackServer,
    logs: pytest.LogCaptureFixture,
    client_id: str,
    error: str,
):
    """A refresh by an unknown client, or one without the grant, ends as
    client_rejected, and the refresh token stays usable."""
    token = refresh_token_of(driver)
    other = make_driver(served, client_id)

    result = other.start("refresh", refresh_token=token)

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs["error"] == error
    assert result.message == (
        f"The tenant did not accept the application ({error}); check the client id, "
        "the client secret and the grant types the application may use."
    )
    assert driver.start("refresh", refresh_token=token).state == "refreshed"
    other.secrets |= driver.secrets
    other.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("answer", "state", "error"),
    [
        (
            (429, {"error": "too_many_requests", "error_description": "Slow."}),
            "rate_limited",
            "too_many_requests",
        ),
        ((429, b"<html>Too many requests</html>"), "rate_limited", "http.429"),
        (
            (400, {"error": "unsupported_grant_type", "error_description": "No."}),
            "client_rejected",
            "unsupported_grant_type",
        ),
        (
            (403, {"error": "access_denied", "error_description": "Revoked."}),
            "revoked",
            "access_denied",
        ),
        (
            (400, {"error": "invalid_request", "error_description": "Missing."}),
            "bad_request",
            "invalid_request",
        ),
    ],
)
def test_refusals_of_other_servers_fail_clearly(
    logs: pytest.LogCaptureFixture,
    answer: tuple[int, object],
    state: str,
    error: str,
):
    """A rate limit or an unsupported grant ends the refresh in its own failure."""
    app = Scripted([answer])
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("refresh", refresh_token="rt-scripted-old-5e07")

    assert (result.outcome, result.state) == ("failure", state)
    assert result.outputs["error"] == error
    assert result.message
    assert app.received[0]["grant_type"] == "refresh_token"
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("headers", "retry_after", "retry_at", "when"),
    [
        (
            {"Retry-After": "12", "X-RateLimit-Reset": "1750000135"},
            "12",
            "1750000135",
            "in 12 s",
        ),
        ({"retry-after": "12"}, "12", None, "in 12 s"),
        ({}, None, None, "later"),
    ],
    ids=["capitalised", "lower-case", "none"],
)
def test_rate_limit_says_when_to_try_again(
    logs: pytest.LogCaptureFixture,
    headers: dict[str, str],
    retry_after: str | None,
    retry_at: str | None,
    when: str,
):
    """A refresh answered 429 ends in rate_limited with the Retry-After and
    X-RateLimit-Reset the server sent, in either spelling, and says when to
    try again."""
    limited = {"error": "too_many_requests", "error_description": "Slow down."}
    app = Scripted([(429, limited, headers)])
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("refresh", refresh_token="rt-scripted-old-5e07")

    assert (result.outcome, result.state) == ("failure", "rate_limited")
    assert result.message == f"The tenant's rate limit was reached; try again {when}."
    assert result.outputs == {
        **limited,
        "retry_after": retry_after,
        "retry_at": retry_at,
    }
    driver.assert_no_secret_leaked(logs)


def test_step_up_not_finished_in_time_expires(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A step-up left unanswered for 10 minutes ends the refresh as expired."""
    driver = serve(step_up_on_refresh="always")
    login = driver.start(
        "password-grant", username="otp@example.test", password=PASSWORD
    )
    login = driver.resume(login, otp=driver.totp())
    result = driver.start("refresh", refresh_token=login.outputs["refresh_token"])
    assert result.state == "ask_otp"
    driver.advance(601)

    result = driver.engine.resume(result.run_id)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The mfa_token expired before the second factor was verified; sign in again."
    )
    assert result.outputs == {"error": "expired_token"}
    assert "refresh:step_up --expired--> expired" in edges(result)
    driver.assert_no_secret_leaked(logs)


def test_unreachable_tenant_fails_after_retries(
    tenant: Tenant, logs: pytest.LogCaptureFixture
):
    """A refresh while the tenant is down is retried twice, then ends as unreachable."""
    with LoopbackServer(tenant) as server:
        driver = make_driver(server)
        token = refresh_token_of(driver)

    result = driver.start("refresh", refresh_token=token)
    result = driver.after_wait(driver.after_wait(result))

    assert_unreachable(result, server.url)
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("step_up", [False, True], ids=["refresh", "step-up"])
def test_same_refresh_token_again_is_not_a_rotation(
    logs: pytest.LogCaptureFixture, step_up: bool
):
    """A server that answers with the refresh token it was given has not rotated
    it: rotated is false, and that token is the one to keep."""
    old = "rt-scripted-kept-2b7e"
    tokens = {**SCRIPTED_TOKENS, "refresh_token": old}
    if step_up:
        routes = scripted_mfa(mfa_otp=[(200, tokens)])
    else:
        routes = {"POST /oauth/token refresh_token": [(200, tokens)]}
    app = Scripted(routes)
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("refresh", refresh_token=old)
        if step_up:
            result = driver.resume(result, otp="135790")

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert result.outputs["rotated"] is False
    assert result.outputs["refresh_token"] == old
    assert result.outputs["access_token"] == SCRIPTED_TOKENS["access_token"]
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("flow", "inputs"),
    [
        ("refresh", {}),
        ("mfa-api-token", {"method": "refresh"}),
        ("manage-authenticators", {"method": "refresh"}),
    ],
)
def test_step_up_enrols_the_factor_given(
    serve: Callable[..., Driver],
    logs: pytest.LogCaptureFixture,
    flow: str,
    inputs: dict[str, str],
):
    """A refresh's step-up takes the factor to enrol as password-grant does: a
    user whose authenticators were reset is sent an email code without being
    asked which factor."""
    driver = serve(step_up_on_refresh="always")
    user = "otp@example.test"
    token = mfa_api_refresh_token(driver, "otp")
    for authenticator in driver.tenant.authenticators(user, active_only=True):
        if authenticator.type != "recovery-code":
            driver.tenant.delete_authenticator(user, authenticator.id)

    result = driver.start(flow, refresh_token=token, factor="email", **inputs)

    assert [request.name for request in result.waiting_for] == ["binding_code"]
    assert "mfa-enroll:check_factor --ok--> route_factor" in edges(result)
    result = driver.resume(result, binding_code=driver.last_code(user, "email"))
    assert result.outcome == "success", result
    (enrolled,) = driver.tenant.authenticators(user, active_only=True)[:1]
    assert enrolled.channel == "email"
    driver.assert_no_secret_leaked(logs)


def test_legacy_mfa_required_code_steps_up(logs: pytest.LogCaptureFixture):
    """A refresh answered with Auth0's legacy a0.mfa_required steps up too."""
    legacy = {
        "error": "a0.mfa_required",
        "error_description": "Multifactor authentication required",
        "mfa_token": "Fe26.2**scripted-mfa-token-77a3e0",
    }
    app = Scripted(scripted_mfa(refresh_token=[(403, legacy)]))
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("refresh", refresh_token="rt-scripted-old-5e07")
        result = driver.resume(result, otp="246810")

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert "refresh:request_token --a0.mfa_required--> step_up" in edges(result)
    assert result.outputs["refresh_token"] == SCRIPTED_TOKENS["refresh_token"]
    driver.assert_no_secret_leaked(logs)
