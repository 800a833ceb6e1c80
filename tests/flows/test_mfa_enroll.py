"""Enrolment through mfa-enroll: each factor, from a login and on its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from _flow_helpers import (
    PASSWORD,
    PHONE,
    SCRIPTED_TOKENS,
    Driver,
    Scripted,
    base_config,
    edges,
    mfa_token_of,
    scripted_driver,
)
from _servers import serve_wsgi

from mfaflow import RunResult
from mfaflow.tenant import Lifetimes, Limit, Limits


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
    """Enrolling with an MFA API token, which comes with no mfa_requirements, a
    factor the tenant does not offer ends with the tenant's refusal."""
    users = tuple(user for user in base_config().users if not user.authenticators)
    driver = serve(factors=("otp", "email"), users=users)
    token = driver.start(
        "mfa-api-token", username="new@example.test", password=PASSWORD
    )
    assert token.outputs["token_kind"] == "access_token"

    result = driver.start("mfa-enroll", mfa_token=token.outputs["token"], factor="sms")
    result = driver.resume(result, phone_number=PHONE)

    assert (result.outcome, result.state) == ("failure", "refused")
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


# -- codes that do not confirm ---------------------------------------------------------


def wrong(code: str) -> str:
    """A six-digit code that is not ``code``."""
    return "000000" if code != "000000" else "111111"


def test_wrong_binding_code_is_asked_again(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A wrong email code leaves the address unconfirmed and asks again."""
    result = sign_in(driver, "new", factor="email")
    code = driver.last_code("new@example.test", "email")

    result = driver.resume(result, binding_code=wrong(code))

    assert result.state == "ask_binding_code"
    assert result.waiting_for[0].prompt == (
        "That code was not accepted. "
        "Enter the 6-digit code sent by email to confirm the enrolment."
    )
    assert active(driver, "new@example.test") == []
    result = driver.resume(result, binding_code=code)
    assert (result.outcome, result.state) == ("success", "signed_in")
    driver.assert_no_secret_leaked(logs)


def test_expired_code_enrols_again_with_a_new_one(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A code entered after it expired makes the run enrol again, sending a new one."""
    result = sign_in(driver, "new", factor="email")
    old = driver.last_code("new@example.test", "email")
    driver.advance(301)

    result = driver.resume(result, binding_code=old)

    assert result.state == "ask_binding_code"
    assert result.waiting_for[0].prompt.startswith(
        "The code expired, so a new one was sent. "
    )
    assert "mfa-enroll:count_expired_code --ok--> associate" in edges(result)
    assert len(driver.tenant.outbox.messages(channel="email")) == 2
    result = driver.resume(
        result, binding_code=driver.last_code("new@example.test", "email")
    )
    assert (result.outcome, result.state) == ("success", "signed_in")
    driver.assert_no_secret_leaked(logs)


def test_too_many_wrong_binding_codes_fail(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Three wrong codes end the enrolment, and the login with it."""
    result = sign_in(driver, "new", factor="email")
    code = driver.last_code("new@example.test", "email")
    for _ in range(3):
        result = driver.resume(result, binding_code=wrong(code))

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == (
        "The code was not accepted 3 times; start the enrolment again."
    )
    assert result.outputs["error"] == "invalid_grant"
    assert "mfa-enroll:too_many_wrong_codes" in [
        f"{entry.flow}:{entry.state}" for entry in result.history
    ]
    assert active(driver, "new@example.test") == []
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("factor", ["otp", "email"])
def test_tenant_lockout_ends_the_enrolment_as_locked(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture, factor: str
):
    """When the tenant refuses more codes, confirming the first code fails as locked."""
    driver = serve(limits=Limits(otp_failures=Limit(2, 360)))
    result = sign_in(driver, "new", factor=factor)
    if factor == "otp":
        secret = driver.barcode_secret(result)
        answers = [{"otp": driver.wrong_totp(secret)}] * 2
        answers.append({"otp": driver.totp(secret)})
    else:
        code = driver.last_code("new@example.test", "email")
        answers = [{"binding_code": wrong(code)}] * 2 + [{"binding_code": code}]
    for answer in answers:
        result = driver.resume(result, **answer)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == (
        "Too many wrong codes; the tenant refuses more attempts for this user "
        "for a while."
    )
    assert result.outputs["error"] == "too_many_attempts"
    assert active(driver, "new@example.test") == []
    driver.assert_no_secret_leaked(logs)


# -- push enrolments that are not approved ---------------------------------------------


def test_rejected_push_enrolment_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A push enrolment rejected on the device ends the login as a failure."""
    result = sign_in(driver, "new", factor="push")
    result = driver.resume(result)
    driver.tenant.reject_push("new@example.test")

    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == "The push enrolment was rejected on the device."
    assert result.outputs["error"] == "access_denied"
    assert "mfa-enroll:poll_push --access_denied--> rejected" in edges(result)
    assert active(driver, "new@example.test") == []
    driver.assert_no_secret_leaked(logs)


def test_unanswered_push_enrolment_expires(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A push enrolment left unanswered past its 300 s ends the login as expired,
    saying so."""
    result = sign_in(driver, "new", factor="push")
    result = driver.resume(result)
    driver.advance(400)

    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The push enrolment expired before it was approved; start again."
    )
    assert result.outputs == {"error": "invalid_grant"}
    assert "mfa-enroll:poll_push --invalid_grant--> push_expired" in edges(result)
    assert "mfa-challenge:enrol --expired--> enrolment_expired" in edges(result)
    driver.assert_no_secret_leaked(logs)


def test_slow_down_makes_push_enrolment_polling_wait_longer(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """slow_down while polling a push enrolment adds 5 seconds to the interval."""
    driver = serve(limits=Limits(push_poll_interval=8.0))
    result = sign_in(driver, "new", factor="push")
    result = driver.resume(result)
    waits = []
    for _ in range(3):
        assert result.resume_at is not None
        waits.append(result.resume_at - driver.tenant.clock.now())
        result = driver.after_wait(result)
    driver.tenant.approve_push("new@example.test")
    result = driver.after_wait(result)

    # polled once the person has scanned: pending; 5 s later: too soon for the
    # tenant, slow_down; then every 10 s.
    assert waits == [5.0, 10.0, 10.0]
    assert "mfa-enroll:poll_push --slow_down--> slow_down" in edges(result)
    assert (result.outcome, result.state) == ("success", "signed_in")
    driver.assert_no_secret_leaked(logs)


# -- tokens and requests the tenant refuses --------------------------------------------


def test_access_token_without_enroll_scope_is_refused(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """An MFA API access token without the enroll scope cannot enrol."""
    token = driver.start(
        "mfa-api-token",
        username="new@example.test",
        password=PASSWORD,
        scope="read:authenticators",
    )
    assert token.state == "got_access_token"

    result = driver.start("mfa-enroll", mfa_token=token.outputs["token"], factor="otp")

    assert (result.outcome, result.state) == ("failure", "missing_scope")
    assert result.message == "The access token lacks the enroll scope of the MFA API."
    assert result.outputs == {"error": "insufficient_scope"}
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("token", "event"),
    [
        ("Fe26.2**forged-mfa-token-41d", "invalid_grant"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.forged", "invalid_token"),
    ],
    ids=["mfa_token", "access_token"],
)
def test_forged_token_cannot_enrol(
    driver: Driver, logs: pytest.LogCaptureFixture, token: str, event: str
):
    """A token the tenant never issued, of either kind, is refused for enrolment."""
    result = driver.start("mfa-enroll", mfa_token=token, factor="otp")

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    assert result.message == (
        "The tenant did not accept the token for enrolment; sign in again to get a "
        "new one."
    )
    assert result.outputs == {"error": "invalid_grant"}
    assert edges(result)[-1] == f"mfa-enroll:associate --{event}--> token_rejected"
    driver.assert_no_secret_leaked(logs)


def test_expired_mfa_token_cannot_enrol(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """An mfa_token that expired before the enrolment ends it as expired."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    token = mfa_token_of(driver, "new")
    driver.advance(61)

    result = driver.start("mfa-enroll", mfa_token=token, factor="otp")

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The token expired before the enrolment was confirmed; sign in again."
    )
    assert result.outputs == {"error": "expired_token"}
    assert edges(result)[-1] == "mfa-enroll:associate --expired_token--> expired"
    driver.assert_no_secret_leaked(logs)


def test_enrolment_not_confirmed_in_time_expires(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """A first code entered after the mfa_token expired ends the enrolment, expired."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    token = mfa_token_of(driver, "new")
    result = driver.start("mfa-enroll", mfa_token=token, factor="otp")
    secret = driver.barcode_secret(result)
    driver.advance(61)

    result = driver.resume(result, otp=driver.totp(secret))

    assert (result.outcome, result.state) == ("expired", "expired")
    assert edges(result)[-1] == "mfa-enroll:confirm_otp --expired_token--> expired"
    assert active(driver, "new@example.test") == []
    driver.assert_no_secret_leaked(logs)


def test_send_limit_ends_the_enrolment_as_rate_limited(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """Once the tenant has sent as many text messages as it allows, enrolling a
    phone fails as rate limited."""
    driver = serve(limits=Limits(phone_sends=Limit(1, 3600)))
    first = driver.start(
        "mfa-enroll",
        mfa_token=mfa_token_of(driver, "new"),
        factor="sms",
        phone_number=PHONE,
    )
    assert first.state == "ask_binding_code"

    result = sign_in(driver, "new", factor="sms")
    result = driver.resume(result, phone_number=PHONE)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == (
        "The tenant sent too many codes to this user recently; try again later."
    )
    assert result.outputs["error"] == "too_many_requests"
    assert "mfa-enroll:associate --too_many_requests--> rate_limited" in edges(result)
    driver.assert_no_secret_leaked(logs)


def test_unknown_factor_fails_without_a_request(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A factor that is not one of the five ends the run before anything is enrolled."""
    token = mfa_token_of(driver, "new")

    result = driver.start("mfa-enroll", mfa_token=token, factor="fax")

    assert (result.outcome, result.state) == ("failure", "unknown_factor")
    assert result.message == (
        "The factor fax is not one of: otp, sms, voice, email, push."
    )
    assert result.outputs == {"error": "invalid_request"}
    assert [entry.state for entry in result.history] == [
        "offer_factors",
        "check_factor",
        "unknown_factor",
    ]
    assert driver.tenant.authenticators("new@example.test") == []
    driver.assert_no_secret_leaked(logs)


def test_phone_number_given_as_input_is_not_asked(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """With phone_number among the inputs, the code is sent to it at once."""
    token = mfa_token_of(driver, "new")

    result = driver.start(
        "mfa-enroll", mfa_token=token, factor="voice", phone_number=PHONE
    )

    assert result.state == "ask_binding_code"
    assert "mfa-enroll:need_phone --ok--> associate" in edges(result)
    message = driver.tenant.outbox.last(channel="voice")
    assert message is not None
    assert message.recipient == PHONE
    result = driver.resume(
        result, binding_code=driver.last_code("new@example.test", "voice")
    )
    assert (result.outcome, result.state) == ("success", "enrolled")
    assert result.outputs["factor"] == "voice"
    assert result.outputs["oob_channel"] == "voice"
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("field", ["oob_channel", "oob_channels"])
def test_oob_channel_is_read_in_either_form(logs: pytest.LogCaptureFixture, field: str):
    """The output oob_channel is the channel /mfa/associate answered, whether it
    says oob_channel (real answers) or oob_channels (the reference pages)."""
    channel: str | list[str] = "sms" if field == "oob_channel" else ["sms"]
    enrolment = {
        "authenticator_type": "oob",
        field: channel,
        "oob_code": "oob-scripted-enrol-1d93",
        "binding_method": "prompt",
        "recovery_codes": ["SCRIPTEDRECOVERYCODE0001"],
    }
    app = Scripted(
        {
            "POST /mfa/associate": [(200, enrolment)],
            "POST /oauth/token mfa-oob": [(200, SCRIPTED_TOKENS)],
        }
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "mfa-enroll",
            mfa_token="Fe26.2**scripted-mfa-2",
            factor="sms",
            phone_number=PHONE,
        )
        result = driver.resume(result, binding_code="864209")

    assert (result.outcome, result.state) == ("success", "enrolled")
    assert result.outputs["oob_channel"] == "sms"
    assert result.outputs["recovery_codes"] == ["SCRIPTEDRECOVERYCODE0001"]
    assert app.received[0]["oob_channels"] == ["sms"]
    assert app.received[-1]["binding_code"] == "864209"
    driver.assert_no_secret_leaked(logs)


def test_unknown_oob_code_ends_the_enrolment(logs: pytest.LogCaptureFixture):
    """An oob_code the tenant no longer knows (not one that expired) ends the
    enrolment instead of enrolling again."""
    enrolment = {
        "authenticator_type": "oob",
        "oob_channel": "email",
        "oob_code": "oob-scripted-enrol-5c10",
        "binding_method": "prompt",
    }
    refused = {"error": "invalid_grant", "error_description": "Invalid oob_code."}
    app = Scripted(
        {
            "POST /mfa/associate": [(200, enrolment)],
            "POST /oauth/token mfa-oob": [(401, refused)],
        }
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "mfa-enroll", mfa_token="Fe26.2**scripted-mfa-4", factor="email"
        )
        result = driver.resume(result, binding_code="975310")

    assert (result.outcome, result.state) == ("failure", "enrolment_rejected")
    assert result.message == (
        "The tenant no longer accepts the enrolment's oob_code; start the "
        "enrolment again."
    )
    assert result.outputs == refused
    assert app.requests.count("POST /mfa/associate") == 1
    driver.assert_no_secret_leaked(logs)


PUSH_ENROLMENT = {
    "authenticator_type": "oob",
    "oob_channel": "auth0",
    "oob_code": "oob-scripted-push-7a20",
    "barcode_uri": "otpauth://totp/scripted:new?secret=JBSWY3DPEHPK3PXP&enrollment_tx_id=tx",
}


@pytest.mark.parametrize(
    ("routes", "event", "state"),
    [
        (
            {"POST /mfa/associate": [(401, b"<html>Unauthorized</html>")]},
            "associate --http.401",
            "token_rejected",
        ),
        (
            {"POST /mfa/associate": [(429, b"<html>Too many</html>")]},
            "associate --http.429",
            "rate_limited",
        ),
        (
            {
                "POST /mfa/associate": [(200, PUSH_ENROLMENT)],
                "POST /oauth/token mfa-oob": [
                    (
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "The enrolment was rejected.",
                        },
                    )
                ],
            },
            "poll_push --invalid_grant",
            "rejected",
        ),
        (
            {
                "POST /mfa/associate": [(200, PUSH_ENROLMENT)],
                "POST /oauth/token mfa-oob": [
                    (
                        401,
                        {
                            "error": "invalid_grant",
                            "error_description": "Malformed mfa_token",
                        },
                    )
                ],
            },
            "poll_push --invalid_grant",
            "token_rejected",
        ),
    ],
    ids=["associate-401", "associate-429", "push-rejected", "mfa-token-refused"],
)
def test_refusals_of_other_servers_end_the_enrolment(
    logs: pytest.LogCaptureFixture,
    routes: dict[str, list[Any]],
    event: str,
    state: str,
):
    """A bare 401 or 429 at /mfa/associate, and a push enrolment answered
    invalid_grant saying it was rejected or naming the mfa_token, each end the
    enrolment in their own failure."""
    app = Scripted(routes)
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "mfa-enroll", mfa_token="Fe26.2**scripted-mfa-3", factor="push"
        )
        if result.waiting_for:
            driver.barcode_uri(result)
            result = driver.until_input(driver.resume(result))

    assert (result.outcome, result.state) == ("failure", state)
    assert f"mfa-enroll:{event}--> {state}" in edges(result)
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("factor", "enrolment", "grant", "answer"),
    [
        (
            "otp",
            {
                "authenticator_type": "otp",
                "secret": "JBSWY3DPEHPK3PXP",
                "barcode_uri": "otpauth://totp/scripted:new?secret=JBSWY3DPEHPK3PXP",
            },
            "mfa-otp",
            {"otp": "246810"},
        ),
        (
            "email",
            {
                "authenticator_type": "oob",
                "oob_channel": "email",
                "oob_code": "oob-scripted-email-5b3c",
                "binding_method": "prompt",
            },
            "mfa-oob",
            {"binding_code": "135790"},
        ),
    ],
)
def test_mfa_token_refused_at_the_confirmation_ends_as_token_rejected(
    logs: pytest.LogCaptureFixture,
    factor: str,
    enrolment: dict[str, str],
    grant: str,
    answer: dict[str, str],
):
    """A confirmation refused with invalid_grant naming the mfa_token ends the
    enrolment as token_rejected, without asking for the code again."""
    malformed = {"error": "invalid_grant", "error_description": "Malformed mfa_token"}
    app = Scripted(
        {
            "POST /mfa/associate": [(200, enrolment)],
            f"POST /oauth/token {grant}": [(401, malformed)],
        }
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "mfa-enroll", mfa_token="Fe26.2**scripted-mfa-4", factor=factor
        )
        if factor == "otp":
            driver.barcode_uri(result)
        result = driver.resume(result, **answer)

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    step = "confirm_otp" if factor == "otp" else "confirm_oob"
    assert f"mfa-enroll:{step} --invalid_grant--> token_rejected" in edges(result)
    driver.assert_no_secret_leaked(logs)
