"""Recovery codes reach the person once, as secrets, through every flow.

mfa-challenge gives back the replacement of a recovery code it signed in
with (``recovery_code``), and the recovery codes of a first enrolment
(``recovery_codes``). Every flow that calls it, directly or through
another flow, passes them on as outputs of its own marked ``reveal``, so a
caller (the CLI) shows them although they are secret, and then has the
stored run forget them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _flow_helpers import (
    PASSWORD,
    RECOVERY_CODE,
    Driver,
    edges,
    mfa_api_refresh_token,
)

from mfaflow import RunResult
from mfaflow.tenant import OAuthError

RECOVERY_USER = "recovery@example.test"
NEW_USER = "new@example.test"


def assert_revealed(driver: Driver, result: RunResult, name: str) -> None:
    """``result`` ended with the output ``name``, secret and marked reveal; once
    forgotten, the stored run no longer holds it."""
    value = result.outputs[name]
    assert value, result
    assert name in result.secret_outputs
    assert name in result.revealed_outputs
    assert result.visible_outputs()[name] == "***"
    forgotten = driver.engine.forget_revealed(result.run_id)
    assert forgotten.outputs.get(name) is None
    stored = driver.engine.store.load(result.run_id)
    for text in [value] if isinstance(value, str) else value:
        assert text not in repr([stored.document, stored.secrets])


def assert_kept_once(
    driver: Driver,
    logs: pytest.LogCaptureFixture,
    result: RunResult,
    name: str,
    user: str,
) -> None:
    """The run output ``name`` as a revealed secret, leaking nothing, and the
    code it gave is the one the user's recovery code is now (an old one spent)."""
    value = result.outputs[name]
    driver.assert_no_secret_leaked(logs)
    assert_revealed(driver, result, name)
    if name == "recovery_code":
        with pytest.raises(OAuthError, match=r"Invalid recovery_code"):
            driver.tenant.verify_recovery_code(user, RECOVERY_CODE)
        code = value
    else:
        (code,) = value
    assert driver.tenant.verify_recovery_code(user, code) != code


def recovered(driver: Driver, result: RunResult) -> RunResult:
    """Answer the recovery code prompt of a waiting run with the user's code."""
    assert result.waiting_for[0].name == "recovery_code", result
    return driver.resume(result, recovery_code=RECOVERY_CODE)


def app_login(driver: Driver, user: str, **inputs: str) -> RunResult:
    """Sign ``user`` in with their authenticator app; the ended run."""
    result = driver.start("password-grant", username=user, password=PASSWORD, **inputs)
    if result.waiting_for:
        result = driver.resume(result, otp=driver.totp())
    assert result.outcome == "success", result
    return result


def enrolled_login(driver: Driver, user: str = NEW_USER, **inputs: str) -> RunResult:
    """Sign the user without an authenticator in, enrolling email; the ended run."""
    result = driver.start(
        "password-grant", username=user, password=PASSWORD, factor="email", **inputs
    )
    result = driver.resume(result, binding_code=driver.last_code(user, "email"))
    assert result.outcome == "success", result
    return result


def enrol_email(driver: Driver, result: RunResult, user: str) -> RunResult:
    """Choose email for a waiting enrolment and confirm it with the code sent."""
    assert [request.name for request in result.waiting_for] == ["factor"], result
    result = driver.resume(result, factor="email")
    return driver.resume(result, binding_code=driver.last_code(user, "email"))


def reset_factors(driver: Driver, user: str) -> None:
    """Delete every authenticator of ``user``, as an administrator resetting MFA."""
    for authenticator in driver.tenant.authenticators(user, active_only=True):
        if authenticator.type != "recovery-code":
            driver.tenant.delete_authenticator(user, authenticator.id)


# -- the replacement of a recovery code -----------------------------------------------


def test_password_grant_gives_the_replacement(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """password-grant signed in with a recovery code outputs its replacement."""
    result = driver.start(
        "password-grant",
        username=RECOVERY_USER,
        password=PASSWORD,
        authenticator_id="recovery-code",
    )
    result = recovered(driver, result)

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert_kept_once(driver, logs, result, "recovery_code", RECOVERY_USER)


def test_refresh_step_up_gives_the_replacement(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A refresh whose step-up used a recovery code outputs its replacement."""
    driver = serve(step_up_on_refresh="always")
    login = app_login(driver, RECOVERY_USER, authenticator_id="otp")

    result = driver.start(
        "refresh",
        refresh_token=login.outputs["refresh_token"],
        authenticator_id="recovery-code",
    )
    result = recovered(driver, result)

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert "refresh:step_up --success--> refreshed" in edges(result)
    assert_kept_once(driver, logs, result, "recovery_code", RECOVERY_USER)


@pytest.mark.parametrize("flow", ["mfa-api-token", "manage-authenticators"])
def test_mfa_api_flows_give_the_replacement(
    driver: Driver, logs: pytest.LogCaptureFixture, flow: str
):
    """Getting an MFA API token with a recovery code for MFA outputs its
    replacement, from mfa-api-token and from manage-authenticators."""
    result = driver.start(
        flow,
        username=RECOVERY_USER,
        password=PASSWORD,
        authenticator_id="recovery-code",
    )
    result = recovered(driver, result)

    assert result.outcome == "success", result
    assert (
        result.state
        == {
            "mfa-api-token": "got_access_token",
            "manage-authenticators": "listed",
        }[flow]
    )
    assert_kept_once(driver, logs, result, "recovery_code", RECOVERY_USER)


def test_manage_authenticators_gives_the_replacement_when_it_fails_later(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A deletion that fails after MFA spent a recovery code still outputs the
    replacement: the old code no longer works, so the new one must not be lost."""
    result = driver.start(
        "manage-authenticators",
        username=RECOVERY_USER,
        password=PASSWORD,
        authenticator_id="recovery-code",
        delete="totp|dev_no_such_one",
    )
    result = recovered(driver, result)

    assert (result.outcome, result.state) == ("failure", "not_found")
    assert_kept_once(driver, logs, result, "recovery_code", RECOVERY_USER)


# -- the recovery codes of a first enrolment ------------------------------------------


def test_password_grant_gives_the_codes_of_a_first_enrolment(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """password-grant that enrolled a first authenticator outputs its recovery code."""
    result = enrolled_login(driver)

    assert "mfa-challenge:choose --enrol--> enrol" in edges(result)
    assert_kept_once(driver, logs, result, "recovery_codes", NEW_USER)


def test_refresh_step_up_gives_the_codes_of_a_first_enrolment(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A refresh whose step-up finds no authenticator (they were reset) enrols
    one, and outputs the new recovery code."""
    driver = serve(step_up_on_refresh="always")
    login = app_login(driver, "otp@example.test")
    reset_factors(driver, "otp@example.test")

    result = driver.start("refresh", refresh_token=login.outputs["refresh_token"])
    result = enrol_email(driver, result, "otp@example.test")

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert "mfa-challenge:choose --enrol--> enrol" in edges(result)
    assert_kept_once(driver, logs, result, "recovery_codes", "otp@example.test")


@pytest.mark.parametrize("flow", ["mfa-api-token", "manage-authenticators"])
def test_mfa_api_flows_give_the_codes_of_a_first_enrolment(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture, flow: str
):
    """An MFA API token got by refresh, whose step-up enrols a first
    authenticator, comes with the new recovery code."""
    driver = serve(step_up_on_refresh="always")
    token = mfa_api_refresh_token(driver, "otp")
    reset_factors(driver, "otp@example.test")

    result = driver.start(flow, method="refresh", refresh_token=token)
    result = enrol_email(driver, result, "otp@example.test")

    assert result.outcome == "success", result
    assert "mfa-challenge:choose --enrol--> enrol" in edges(result)
    assert_kept_once(driver, logs, result, "recovery_codes", "otp@example.test")
