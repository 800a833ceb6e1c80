"""The refresh flow: rotation, reuse detection, narrowing and step-up."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _flow_helpers import PASSWORD, Driver

from mfaflow.tenant import RefreshTokenPolicy


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
