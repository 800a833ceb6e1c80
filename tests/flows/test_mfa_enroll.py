"""Enrolment through mfa-enroll: each factor, from a login and on its own."""

from __future__ import annotations

import json
from collections.abc import Callable

import pyotp
import pytest
from _flow_helpers import PASSWORD, PHONE, Driver, base_config

from mfaflow import RunResult


def sign_in(driver: Driver, user: str, **inputs: str) -> RunResult:
    """Start password-grant for ``user`` of the test tenant."""
    return driver.start(
        "password-grant", username=f"{user}@example.test", password=PASSWORD, **inputs
    )


def active(driver: Driver, user: str) -> list[str]:
    """The ids of the user's active authenticators, as the tenant has them."""
    return [a.id for a in driver.tenant.authenticators(user, active_only=True)]


def test_factor_is_asked_and_otp_enrolled(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A user without an authenticator chooses a factor, scans the app's URI and
    confirms with its first code; the recovery codes are output once."""
    result = sign_in(driver, "new")

    (request,) = result.waiting_for
    assert request.name == "factor"
    assert request.choices == ("otp", "sms", "voice", "email", "push")
    result = driver.resume(result, factor="otp")

    assert result.state == "ask_first_code"
    uri = driver.barcode_uri(result)
    assert pyotp.parse_uri(uri).issuer == "flows"

    result = driver.resume(result, otp=driver.totp(driver.barcode_secret(result)))

    assert (result.outcome, result.state) == ("success", "signed_in")
    (code,) = result.outputs["recovery_codes"]
    assert len(code) == 24
    assert result.visible_outputs()["recovery_codes"] == "***"
    assert any(a.startswith("totp|") for a in active(driver, "new@example.test"))
    driver.assert_no_secret_leaked(logs)


def test_otpauth_link_is_given_whole_and_stored_masked(driver: Driver):
    """The caller gets the otpauth:// link; the stored run has *** and no secret."""
    result = sign_in(driver, "new", factor="otp")

    (request,) = result.waiting_for
    assert request.prompt == (
        "Add the account to your authenticator app (scan the QR code), then type "
        "the 6-digit code it shows."
    )
    secret = driver.barcode_secret(result)
    assert request.link == driver.barcode_uri(result)
    assert request.link_is_secret is True
    assert request.link not in repr(request)
    assert driver.engine.get(result.run_id).waiting_for[0].link == request.link
    document = driver.engine.store.load(result.run_id).document
    (waiting,) = document["wait"]["inputs"]
    assert (waiting["link"], waiting["link_is_secret"]) == ("***", True)
    assert secret not in json.dumps(document)


def test_enrolled_app_is_asked_for_next_time(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """After enrolling an app, the next login asks for its code instead of enrolling."""
    result = sign_in(driver, "new", factor="otp")
    secret = driver.barcode_secret(result)
    driver.resume(result, otp=driver.totp(secret))
    driver.advance(30)

    again = sign_in(driver, "new")
    assert again.state == "ask_otp"
    again = driver.resume(again, otp=driver.totp(secret))

    assert again.outcome == "success"
    assert again.outputs["recovery_codes"] is None
    driver.assert_no_secret_leaked(logs)


def test_wrong_first_code_is_asked_again(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A wrong first code leaves the app unconfirmed and asks again, same link."""
    result = sign_in(driver, "new", factor="otp")
    uri, secret = driver.barcode_uri(result), driver.barcode_secret(result)
    result = driver.resume(result, otp=driver.wrong_totp(secret))

    assert result.state == "ask_first_code"
    assert result.waiting_for[0].prompt.startswith("That code was not accepted. ")
    assert result.waiting_for[0].link == uri
    assert active(driver, "new@example.test") == []

    result = driver.resume(result, otp=driver.totp(secret))

    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("factor", ["sms", "voice"])
def test_phone_is_asked_and_confirmed(
    driver: Driver, logs: pytest.LogCaptureFixture, factor: str
):
    """Enrolling sms or voice asks for the phone number, then the code sent to it."""
    result = sign_in(driver, "new", factor=factor)

    assert result.state == "ask_phone_number"
    assert result.waiting_for[0].pattern == r"\+[1-9][0-9]{6,14}"
    result = driver.resume(result, phone_number=PHONE)

    assert result.state == "ask_binding_code"
    code = driver.last_code("new@example.test", factor)
    result = driver.resume(result, binding_code=code)

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert result.outputs["recovery_codes"]
    channels = {
        a.oob_channel
        for a in driver.tenant.authenticators("new@example.test")
        if a.active
    }
    assert factor in channels
    driver.assert_no_secret_leaked(logs)


def test_email_is_enrolled(driver: Driver, logs: pytest.LogCaptureFixture):
    """Enrolling email sends a code to the user's address; it confirms the enrolment."""
    result = sign_in(driver, "new", factor="email")

    message = driver.tenant.outbox.last(channel="email")
    assert message is not None
    assert message.recipient == "new@example.test"
    result = driver.resume(
        result, binding_code=driver.last_code("new@example.test", "email")
    )

    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_push_is_enrolled_once_approved(driver: Driver, logs: pytest.LogCaptureFixture):
    """Enrolling push shows the URI to scan, then polls until the device approves."""
    result = sign_in(driver, "new", factor="push")

    assert result.state == "scan_push"
    assert "enrollment_tx_id=" in driver.barcode_uri(result)
    result = driver.resume(result)
    assert (result.state, result.resume_at) == (
        "poll_push",
        driver.tenant.clock.now() + 5,
    )

    driver.tenant.approve_push("new@example.test")
    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("success", "signed_in")
    kinds = {
        a.channel for a in driver.tenant.authenticators("new@example.test") if a.active
    }
    assert {"auth0", "otp"} <= kinds
    driver.assert_no_secret_leaked(logs)


def test_disabled_factor_is_refused(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A factor the tenant does not offer ends the login with the tenant's refusal."""
    users = tuple(user for user in base_config().users if not user.authenticators)
    driver = serve(factors=("otp", "email"), users=users)
    result = sign_in(driver, "new", factor="sms")
    result = driver.resume(result, phone_number=PHONE)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert (
        result.message
        == "The tenant refused to enrol the sms factor (invalid_request)."
    )
    assert "not enabled" in result.outputs["error_description"]
    driver.assert_no_secret_leaked(logs)


def test_second_factor_with_an_mfa_api_token(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """An MFA API access token with enroll adds an email factor to an enrolled user."""
    token = driver.start(
        "mfa-api-token", username="otp@example.test", password=PASSWORD
    )
    token = driver.resume(token, otp=driver.totp())
    assert token.outputs["token_kind"] == "access_token"

    result = driver.start(
        "mfa-enroll", mfa_token=token.outputs["token"], factor="email"
    )
    result = driver.resume(
        result, binding_code=driver.last_code("otp@example.test", "email")
    )

    assert (result.outcome, result.state) == ("success", "enrolled")
    assert result.message == "The email authenticator is enrolled and active."
    assert result.outputs["oob_channel"] == "email"
    assert result.outputs["access_token"]
    channels = {
        a.channel for a in driver.tenant.authenticators("otp@example.test") if a.active
    }
    assert channels == {"otp", "email"}
    driver.assert_no_secret_leaked(logs)


def test_mfa_token_cannot_enrol_a_second_factor(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """An mfa_token of an enrolled user cannot enrol more; the failure says what can."""
    token = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username="otp@example.test",
        password=PASSWORD,
    )

    result = driver.start("mfa-enroll", mfa_token=token.outputs["token"], factor="otp")

    assert (result.outcome, result.state) == ("failure", "already_enrolled")
    assert result.message == (
        "The user already has an active authenticator, so an mfa_token cannot enrol "
        "another; use an access token for the MFA API with the enroll scope."
    )
    driver.assert_no_secret_leaked(logs)
