"""The factors a flow offers or picks are those mfa_requirements allows.

The tenant's mfa_required answer lists, under ``challenge``, the types of
authenticator it accepts for this login, and under ``enroll``, the types a
user without one may enrol. A flow never offers, nor picks on its own, a
factor outside those lists: not when the person chooses, and not when the
factor or authenticator is given as an input.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _flow_helpers import (
    PASSWORD,
    SCRIPTED_MFA_TOKEN,
    SCRIPTED_TOKENS,
    Driver,
    Scripted,
    base_config,
    edges,
    scripted_driver,
)
from _servers import serve_wsgi

from mfaflow import RunResult

NEW_USER = "new@example.test"


def otp_and_email_only(serve: Callable[..., Driver]) -> Driver:
    """A tenant that enables only otp and email, with the users that have no
    authenticator (the others would hold disabled factors)."""
    users = tuple(user for user in base_config().users if not user.authenticators)
    return serve(factors=("otp", "email"), users=users)


def new_user_login(driver: Driver, **inputs: str) -> RunResult:
    """Start password-grant for the user without an authenticator."""
    return driver.start(
        "password-grant", username=NEW_USER, password=PASSWORD, **inputs
    )


# -- enrolment: mfa_requirements.enroll ---------------------------------------------


def test_only_the_enroll_types_are_offered(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """With otp and email enabled, the person chooses between those two."""
    driver = otp_and_email_only(serve)

    result = new_user_login(driver)

    (request,) = result.waiting_for
    assert (request.name, request.choices) == ("factor", ("otp", "email"))
    assert request.prompt == "Which factor do you want to enrol?"
    driver.assert_no_secret_leaked(logs)


def test_an_allowed_factor_given_is_enrolled_without_asking(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A factor given as input that the requirements allow is enrolled at once."""
    driver = otp_and_email_only(serve)

    result = new_user_login(driver, factor="otp")

    assert [request.name for request in result.waiting_for] == ["otp"]
    assert "mfa-enroll:check_factor --ok--> route_factor" in edges(result)
    secret = driver.barcode_secret(result)
    result = driver.resume(result, otp=driver.totp(secret))
    assert (result.outcome, result.state) == ("success", "signed_in")
    driver.assert_no_secret_leaked(logs)


def test_a_factor_given_that_is_not_allowed_is_asked_again(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A factor given as input outside the enroll types is not enrolled (nothing
    is sent to /mfa/associate); the person is told and chooses an allowed one."""
    driver = otp_and_email_only(serve)

    result = new_user_login(driver, factor="sms")

    (request,) = result.waiting_for
    assert (request.name, request.choices) == ("factor", ("otp", "email"))
    assert request.prompt == (
        "The tenant does not let this user enrol sms. "
        "Which factor do you want to enrol?"
    )
    assert driver.tenant.authenticators(NEW_USER) == []
    result = driver.resume(result, factor="email")
    (request,) = result.waiting_for
    assert (
        request.prompt
        == "Enter the 6-digit code sent by email to confirm the enrolment."
    )
    result = driver.resume(result, binding_code=driver.last_code(NEW_USER, "email"))
    assert (result.outcome, result.state) == ("success", "signed_in")
    enrolled = driver.tenant.authenticators(NEW_USER, active_only=True)
    assert [found.type for found in enrolled] == ["email", "recovery-code"]
    driver.assert_no_secret_leaked(logs)


def test_mfa_enroll_alone_follows_the_requirements_given(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """mfa-enroll run on its own with mfa_requirements allowing only push does
    not enrol the otp given."""
    stopped = new_user_login(driver, step_up="false")

    result = driver.start(
        "mfa-enroll",
        mfa_token=stopped.outputs["mfa_token"],
        mfa_requirements={"enroll": [{"type": "push-notification"}]},
        factor="otp",
    )

    (request,) = result.waiting_for
    assert (request.name, request.choices) == ("factor", ("email", "push"))
    assert driver.tenant.authenticators(NEW_USER) == []
    driver.assert_no_secret_leaked(logs)


# -- challenge: mfa_requirements.challenge --------------------------------------------

#: A user with an app and a phone, both active.
APP = {"id": "totp|dev_app", "authenticator_type": "otp", "active": True}
PHONE = {
    "id": "sms|dev_phone",
    "authenticator_type": "oob",
    "oob_channel": "sms",
    "name": "XXXXXXXX4567",
    "active": True,
}
#: An mfa_required answer that accepts only the app.
OTP_ONLY = {
    "error": "mfa_required",
    "error_description": "Multifactor authentication required",
    "mfa_token": SCRIPTED_MFA_TOKEN,
    "mfa_requirements": {"challenge": [{"type": "otp"}]},
}
LOGINS = [
    ("password-grant", {"username": "a@example.test", "password": PASSWORD}),
    ("refresh", {"refresh_token": "rt-scripted-old-9d41"}),
]


def otp_only_server() -> Scripted:
    """A server whose user has an app and a phone, but that accepts only the app."""
    return Scripted(
        {
            "POST /oauth/token password": [(403, OTP_ONLY)],
            "POST /oauth/token refresh_token": [(403, OTP_ONLY)],
            "GET /mfa/authenticators": [(200, [PHONE, APP])],
            "POST /mfa/challenge": [(200, {"challenge_type": "otp"})],
            "POST /oauth/token mfa-otp": [(200, SCRIPTED_TOKENS)],
        }
    )


@pytest.mark.parametrize(("flow", "inputs"), LOGINS)
def test_only_the_challenge_types_are_offered(
    logs: pytest.LogCaptureFixture, flow: str, inputs: dict[str, str]
):
    """A login or a refresh whose requirements accept only otp challenges the
    app without asking, though the user also has a phone."""
    app = otp_only_server()
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(flow, **inputs)
        assert [request.name for request in result.waiting_for] == ["otp"]
        result = driver.resume(result, otp="246810")

    assert result.outcome == "success", result
    (challenge,) = [
        fields
        for route, fields in zip(app.requests, app.received, strict=True)
        if route == "POST /mfa/challenge"
    ]
    assert (challenge["challenge_type"], challenge["authenticator_id"]) == (
        "otp",
        APP["id"],
    )
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(("flow", "inputs"), LOGINS)
def test_an_authenticator_given_that_is_not_allowed_is_not_challenged(
    logs: pytest.LogCaptureFixture, flow: str, inputs: dict[str, str]
):
    """authenticator_id naming the phone, which the requirements do not accept,
    ends the run before any challenge is sent."""
    app = otp_only_server()
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(flow, authenticator_id="sms", **inputs)

    assert result.outcome == "failure"
    assert "mfa-challenge:choose --not_found--> no_such_authenticator" in edges(result)
    assert "POST /mfa/challenge" not in app.requests
    driver.assert_no_secret_leaked(logs)
