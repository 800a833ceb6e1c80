"""mfa_required answered through mfa-challenge: every factor, wrong codes, expiry."""

from __future__ import annotations

from collections.abc import Callable

import jwt
import pytest
from _flow_helpers import (
    PASSWORD,
    RECOVERY_CODE,
    SCRIPTED_TOKENS,
    Driver,
    Scripted,
    edges,
    mfa_token_of,
    scripted_driver,
    scripted_mfa,
)
from _servers import serve_wsgi

from mfaflow import InputError, RunResult
from mfaflow.tenant import Lifetimes, Limit, Limits


def sign_in(driver: Driver, user: str, **inputs: str) -> RunResult:
    """Start password-grant for ``user`` of the test tenant."""
    return driver.start(
        "password-grant", username=f"{user}@example.test", password=PASSWORD, **inputs
    )


def amr(result: RunResult) -> list[str]:
    """How the ID token says the user signed in."""
    claims = jwt.decode(result.outputs["id_token"], options={"verify_signature": False})
    return list(claims["amr"])


def states(result: RunResult) -> list[str]:
    """The states a run went through, as ``flow:state``."""
    return [f"{entry.flow}:{entry.state}" for entry in result.history]


def test_otp_code_signs_in(driver: Driver, logs: pytest.LogCaptureFixture):
    """A user with an authenticator app is asked for its code and signed in with it."""
    result = sign_in(driver, "otp")

    assert result.state == "ask_otp"
    (request,) = result.waiting_for
    assert (request.name, request.secret) == ("otp", True)
    assert request.prompt == "Enter the 6-digit code from your authenticator app."

    result = driver.resume(result, otp=driver.totp())

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert amr(result) == ["pwd", "mfa"]
    assert result.outputs["refresh_token"]
    assert "mfa-challenge:verify_otp" in states(result)
    driver.assert_no_secret_leaked(logs)


def test_confidential_client_passes_mfa(
    server_driver: Driver, logs: pytest.LogCaptureFixture
):
    """A client with a secret authenticates at every MFA step and is signed in."""
    result = sign_in(server_driver, "otp")
    result = server_driver.resume(result, otp=server_driver.totp())

    assert result.outcome == "success"
    server_driver.assert_no_secret_leaked(logs)


def test_wrong_otp_is_asked_again(driver: Driver, logs: pytest.LogCaptureFixture):
    """A wrong code is refused and asked for again; the right one then signs in."""
    result = sign_in(driver, "otp")
    result = driver.resume(result, otp=driver.wrong_totp())

    assert result.state == "ask_otp"
    assert result.waiting_for[0].prompt == (
        "That code was not accepted. "
        "Enter the 6-digit code from your authenticator app."
    )

    result = driver.resume(result, otp=driver.totp())

    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_too_many_wrong_otps_fail(driver: Driver, logs: pytest.LogCaptureFixture):
    """After max_attempts wrong codes the run fails instead of asking again."""
    result = sign_in(driver, "otp")
    for _ in range(3):
        assert result.state == "ask_otp"
        result = driver.resume(result, otp=driver.wrong_totp())

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert (
        result.message == "The code was not accepted 3 times; sign in again to retry."
    )
    assert result.outputs["error"] == "invalid_grant"
    driver.assert_no_secret_leaked(logs)


def test_tenant_lockout_ends_as_locked(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """When the tenant refuses more codes (too_many_attempts), the run fails."""
    driver = serve(limits=Limits(otp_failures=Limit(2, 360)))
    result = sign_in(driver, "otp")
    result = driver.resume(result, otp=driver.wrong_totp())
    result = driver.resume(result, otp=driver.wrong_totp())
    result = driver.resume(result, otp=driver.totp())

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.outputs["error"] == "too_many_attempts"
    assert result.message == (
        "Too many wrong codes; the tenant refuses more attempts for this user "
        "for a while."
    )
    driver.assert_no_secret_leaked(logs)


def test_sms_code_after_choosing(driver: Driver, logs: pytest.LogCaptureFixture):
    """With text message and voice enrolled, the person chooses; SMS signs in."""
    result = sign_in(driver, "sms")

    (request,) = result.waiting_for
    assert request.name == "authenticator"
    assert request.choices == (
        "Text message to XXXXXXXX4567",
        "Voice call to XXXXXXXX4567",
    )

    result = driver.resume(result, authenticator="Text message to XXXXXXXX4567")

    assert result.state == "ask_binding_code"
    assert result.waiting_for[0].prompt == (
        "Enter the 6-digit code you received by text message."
    )
    result = driver.resume(
        result, binding_code=driver.last_code("sms@example.test", "sms")
    )

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert amr(result) == ["pwd", "mfa"]
    driver.assert_no_secret_leaked(logs)


def test_choice_outside_the_list_is_refused(driver: Driver):
    """A choice the list does not offer is refused, and the run waits on."""
    result = sign_in(driver, "sms")

    with pytest.raises(InputError, match="is not one of the choices"):
        driver.resume(result, authenticator="Carrier pigeon")

    assert driver.engine.get(result.run_id).state == "ask_authenticator"


def test_voice_code_by_preselected_kind(driver: Driver, logs: pytest.LogCaptureFixture):
    """authenticator_id=voice skips the choice; the code read out by voice signs in."""
    result = sign_in(driver, "sms", authenticator_id="voice")

    assert result.state == "ask_binding_code"
    assert "voice call" in result.waiting_for[0].prompt
    result = driver.resume(
        result, binding_code=driver.last_code("sms@example.test", "voice")
    )

    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_email_code_and_a_wrong_one(driver: Driver, logs: pytest.LogCaptureFixture):
    """An email code is asked for again after a wrong one, then signs in."""
    result = sign_in(driver, "email")

    assert result.state == "ask_binding_code"
    code = driver.last_code("email@example.test", "email")
    wrong = "000000" if code != "000000" else "111111"
    result = driver.resume(result, binding_code=wrong)
    assert result.waiting_for[0].prompt.startswith("That code was not accepted. ")

    result = driver.resume(result, binding_code=code)

    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_expired_code_is_sent_again(driver: Driver, logs: pytest.LogCaptureFixture):
    """A code entered after it expired makes the tenant send a new one to enter."""
    result = sign_in(driver, "email")
    old = driver.last_code("email@example.test", "email")
    driver.advance(301)

    result = driver.resume(result, binding_code=old)

    assert result.state == "ask_binding_code"
    assert result.waiting_for[0].prompt == (
        "The code expired, so a new one was sent. "
        "Enter the 6-digit code you received by email."
    )
    assert len(driver.tenant.outbox.messages(channel="email")) == 2
    result = driver.resume(
        result, binding_code=driver.last_code("email@example.test", "email")
    )

    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_approved_push_signs_in(driver: Driver, logs: pytest.LogCaptureFixture):
    """A push notification is polled until the device approves it."""
    result = sign_in(driver, "push", authenticator_id="push")

    assert result.state == "poll_push"
    assert result.resume_at == driver.tenant.clock.now() + 5
    result = driver.after_wait(result)
    assert (result.state, result.resume_at) == (
        "poll_push",
        driver.tenant.clock.now() + 5,
    )

    driver.tenant.approve_push("push@example.test")
    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert amr(result) == ["pwd", "mfa"]
    driver.assert_no_secret_leaked(logs)


def test_rejected_push_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A push notification rejected on the device ends the run as a failure."""
    result = sign_in(driver, "push", authenticator_id="push")
    driver.tenant.reject_push("push@example.test")
    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == "The push notification was rejected on the device."
    assert result.outputs["error"] == "access_denied"
    driver.assert_no_secret_leaked(logs)


def test_slow_down_makes_polling_wait_longer(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """slow_down adds 5 seconds to the polling interval, and polling goes on."""
    driver = serve(limits=Limits(push_poll_interval=8.0))
    result = sign_in(driver, "push", authenticator_id="push")
    waits = []
    for _ in range(3):
        assert result.resume_at is not None
        waits.append(result.resume_at - driver.tenant.clock.now())
        result = driver.after_wait(result)
    driver.tenant.approve_push("push@example.test")
    assert result.resume_at is not None
    waits.append(result.resume_at - driver.tenant.clock.now())
    result = driver.after_wait(result)

    # first poll after 5 s: pending; 5 s later: too soon for the tenant, slow_down;
    # then every 10 s: pending, approved.
    assert waits == [5.0, 5.0, 10.0, 10.0]
    assert "mfa-challenge:slow_down" in states(result)
    assert result.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_recovery_code_gives_its_replacement(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A recovery code signs in, and its replacement is output once, as a secret."""
    result = sign_in(driver, "recovery", authenticator_id="recovery-code")

    assert result.state == "ask_recovery_code"
    result = driver.resume(result, recovery_code=RECOVERY_CODE)

    assert result.outcome == "success"
    replacement = result.outputs["recovery_code"]
    assert len(replacement) == 24
    assert replacement != RECOVERY_CODE
    assert "recovery_code" in result.secret_outputs
    assert result.visible_outputs()["recovery_code"] == "***"

    again = sign_in(driver, "recovery", authenticator_id="recovery-code")
    again = driver.resume(again, recovery_code=RECOVERY_CODE)
    assert again.state == "ask_recovery_code"
    assert again.waiting_for[0].prompt == (
        "That recovery code was not accepted. Enter one of your recovery codes."
    )
    again = driver.resume(again, recovery_code=replacement)
    assert again.outcome == "success"
    driver.assert_no_secret_leaked(logs)


def test_recovery_code_is_offered_among_choices(driver: Driver):
    """Among several factors the choices list a recovery code too."""
    result = sign_in(driver, "many")

    assert result.waiting_for[0].choices == (
        "Push notification to Push device",
        "One-time code from an authenticator app",
        "Recovery code",
    )
    result = driver.resume(result, authenticator="Recovery code")
    assert result.state == "ask_recovery_code"


def test_recovery_code_alone_is_not_chosen(driver: Driver):
    """A user with one app and a recovery code is asked for the app's code at once."""
    result = sign_in(driver, "recovery")

    assert result.state == "ask_otp"


def test_unknown_authenticator_id_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """authenticator_id naming nothing the user has ends with a clear message."""
    result = sign_in(driver, "otp", authenticator_id="sms|dev_nothing")

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert (
        result.message
        == "The user has no usable authenticator matching sms|dev_nothing."
    )
    driver.assert_no_secret_leaked(logs)


def test_run_expires_with_the_mfa_token(driver: Driver, logs: pytest.LogCaptureFixture):
    """A push pending for 10 minutes ends the run as expired, without a request."""
    result = sign_in(driver, "push", authenticator_id="push")
    driver.advance(601)
    requests_before = len(logs.records)
    result = driver.engine.resume(result.run_id)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The mfa_token expired before the second factor was verified; sign in again."
    )
    assert not any(
        "oauth/token" in record.getMessage()
        for record in logs.records[requests_before:]
    )
    driver.assert_no_secret_leaked(logs)


def test_expired_token_from_the_tenant_ends_as_expired(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """expired_token from the tenant ends the run as expired."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    result = sign_in(driver, "otp")
    driver.advance(61)
    result = driver.resume(result, otp=driver.totp())

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.outputs["error"] == "expired_token"
    driver.assert_no_secret_leaked(logs)


def test_mfa_requirements_limit_the_choice(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Run alone with mfa_requirements allowing only otp, mfa-challenge skips push."""
    token = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username="push@example.test",
        password=PASSWORD,
    )
    assert token.outputs["token_kind"] == "mfa_token"

    result = driver.start(
        "mfa-challenge",
        mfa_token=token.outputs["token"],
        mfa_requirements='{"challenge": [{"type": "otp"}]}',
    )

    assert result.state == "ask_otp"
    assert (
        driver.engine.get(result.run_id).expires_at == driver.tenant.clock.now() + 600
    )
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize(
    ("flow", "inputs", "final"),
    [
        (
            "password-grant",
            {"username": "a@example.test", "password": PASSWORD},
            "signed_in",
        ),
        ("refresh", {"refresh_token": "rt-scripted-old-9d41"}, "refreshed"),
    ],
)
def test_mfa_required_with_either_status_steps_up(
    logs: pytest.LogCaptureFixture,
    status: int,
    flow: str,
    inputs: dict[str, str],
    final: str,
):
    """mfa_required, answered 401 or 403, leads a login or a refresh into
    mfa-challenge, whose verified code gives the tokens."""
    app = Scripted(scripted_mfa(status))
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(flow, **inputs)
        assert result.state == "ask_otp"
        result = driver.resume(result, otp="246810")

    assert (result.outcome, result.state) == ("success", final)
    assert result.outputs["access_token"] == SCRIPTED_TOKENS["access_token"]
    assert result.outputs["refresh_token"] == SCRIPTED_TOKENS["refresh_token"]
    assert app.received[-1]["otp"] == "246810"
    assert "mfa-challenge:verify_otp" in states(result)
    driver.assert_no_secret_leaked(logs)


# -- the mfa_token refused or expired ------------------------------------------------


def test_forged_mfa_token_is_rejected(driver: Driver, logs: pytest.LogCaptureFixture):
    """An mfa_token the tenant never issued is refused at the listing: sign in again."""
    result = driver.start("mfa-challenge", mfa_token="Fe26.2**forged-mfa-token-3c9")

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    assert result.message == (
        "The tenant did not accept the mfa_token; sign in again to get a new one."
    )
    assert result.outputs == {"error": "invalid_grant"}
    assert edges(result) == [
        "mfa-challenge:list_authenticators --invalid_grant--> token_rejected"
    ]
    driver.assert_no_secret_leaked(logs)


def test_mfa_token_of_another_client_is_rejected_at_the_challenge(
    driver: Driver, server_driver: Driver, logs: pytest.LogCaptureFixture
):
    """An mfa_token issued to another application lists, but cannot challenge."""
    token = mfa_token_of(server_driver, "otp")

    result = driver.start("mfa-challenge", mfa_token=token)

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    assert "mfa-challenge:challenge --invalid_grant--> token_rejected" in edges(result)
    driver.secrets |= server_driver.secrets
    driver.assert_no_secret_leaked(logs)


def test_expired_mfa_token_ends_the_listing_as_expired(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """An mfa_token that expired before mfa-challenge starts ends it as expired."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    token = mfa_token_of(driver, "otp")
    driver.advance(61)

    result = driver.start("mfa-challenge", mfa_token=token)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.outputs == {"error": "expired_token"}
    assert edges(result) == [
        "mfa-challenge:list_authenticators --expired_token--> expired"
    ]
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("user", "preselect", "step"),
    [
        ("sms", None, "challenge"),
        ("email", None, "verify_binding_code"),
        ("recovery", "recovery-code", "verify_recovery_code"),
    ],
)
def test_mfa_token_expiring_while_a_person_answers_ends_as_expired(
    serve: Callable[..., Driver],
    logs: pytest.LogCaptureFixture,
    user: str,
    preselect: str | None,
    step: str,
):
    """expired_token at the challenge, a binding code or a recovery code ends the
    login as expired with the mfa-challenge message."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    inputs = {"authenticator_id": preselect} if preselect else {}
    result = sign_in(driver, user, **inputs)
    if step == "challenge":
        answer = {"authenticator": "Text message to XXXXXXXX4567"}
    elif step == "verify_binding_code":
        answer = {"binding_code": driver.last_code("email@example.test", "email")}
    else:
        answer = {"recovery_code": RECOVERY_CODE}
    driver.advance(61)

    result = driver.resume(result, **answer)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The mfa_token expired before the second factor was verified; sign in again."
    )
    assert result.outputs == {"error": "expired_token"}
    assert f"mfa-challenge:{step} --expired_token--> expired" in edges(result)
    driver.assert_no_secret_leaked(logs)


# -- pushes that do not end in approval ------------------------------------------------


def test_unanswered_push_expires(driver: Driver, logs: pytest.LogCaptureFixture):
    """A push left unanswered past its oob_code's 300 s ends the login as expired."""
    result = sign_in(driver, "push", authenticator_id="push")
    driver.advance(400)

    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The push notification expired before it was approved; sign in again."
    )
    assert result.outputs == {"error": "invalid_grant"}
    assert "mfa-challenge:poll_push --invalid_grant--> push_expired" in edges(result)
    driver.assert_no_secret_leaked(logs)


PUSH_AUTHENTICATOR = {
    "id": "push|dev_scripted",
    "authenticator_type": "oob",
    "oob_channel": "auth0",
    "name": "Pixel",
    "active": True,
}
PUSH_CHALLENGE = {"challenge_type": "oob", "oob_code": "oob-scripted-8e1f02c7"}


@pytest.mark.parametrize(
    ("answer", "state", "message", "error"),
    [
        (
            {
                "error": "invalid_grant",
                "error_description": "MFA Authorization rejected.",
            },
            "rejected",
            "The push notification was rejected on the device.",
            "access_denied",
        ),
        (
            {
                "error": "access_denied",
                "error_description": "MFA Authorization rejected.",
            },
            "rejected",
            "The push notification was rejected on the device.",
            "access_denied",
        ),
        (
            {"error": "too_many_attempts", "error_description": "Too many."},
            "locked",
            "Too many wrong codes; the tenant refuses more attempts for this user "
            "for a while.",
            "too_many_attempts",
        ),
    ],
)
def test_push_refused_in_either_form_fails(
    logs: pytest.LogCaptureFixture,
    answer: dict[str, str],
    state: str,
    message: str,
    error: str,
):
    """A push rejected as invalid_grant (the docs) or access_denied (observed), or
    polled once the tenant locks the user, ends the login with its own message."""
    app = Scripted(
        scripted_mfa(
            list=[(200, [PUSH_AUTHENTICATOR])],
            challenge=[(200, PUSH_CHALLENGE)],
            mfa_oob=[(400, {"error": "authorization_pending"}), (400, answer)],
        )
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = sign_in(driver, "someone")
        result = driver.after_wait(result)
        assert result.state == "poll_push"
        result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == message
    assert result.outputs["error"] == error
    assert f"mfa-challenge:poll_push --{answer['error']}--> {state}" in edges(result)
    assert app.received[-1]["oob_code"] == PUSH_CHALLENGE["oob_code"]
    driver.assert_no_secret_leaked(logs)


# -- challenges the tenant refuses -----------------------------------------------------


def test_send_limit_ends_as_rate_limited(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """Once the tenant has sent as many text messages as it allows, the next
    login fails as rate limited instead of waiting for a code that never comes."""
    driver = serve(limits=Limits(phone_sends=Limit(1, 3600)))
    first = sign_in(driver, "sms", authenticator_id="sms")
    assert first.state == "ask_binding_code"

    result = sign_in(driver, "sms", authenticator_id="sms")

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == (
        "The tenant sent too many codes to this user recently; try again later."
    )
    assert result.outputs["error"] == "too_many_requests"
    assert "mfa-challenge:challenge --too_many_requests--> rate_limited" in edges(
        result
    )
    assert len(driver.tenant.outbox.messages(channel="sms")) == 1
    driver.assert_no_secret_leaked(logs)


def test_requirements_no_authenticator_meets_end_as_unsupported(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """When mfa_requirements accepts only push and the user has an app, the run
    fails as unsupported without challenging anything."""
    token = mfa_token_of(driver, "otp")

    result = driver.start(
        "mfa-challenge",
        mfa_token=token,
        mfa_requirements={"challenge": [{"type": "push-notification"}]},
    )

    assert (result.outcome, result.state) == ("failure", "unsupported")
    assert result.message == (
        "None of the user's authenticators can be challenged for this login."
    )
    assert result.outputs == {
        "error": "unsupported_challenge_type",
        "error_description": None,
    }
    assert "mfa-challenge:challenge" not in states(result)
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("answer", "state", "outputs"),
    [
        (
            (400, {"error": "unsupported_challenge_type", "error_description": "No."}),
            "unsupported",
            {"error": "unsupported_challenge_type", "error_description": "No."},
        ),
        (
            (429, b"<html>Slow down</html>"),
            "rate_limited",
            {"error": "too_many_requests"},
        ),
    ],
)
def test_challenge_refusals_of_other_servers_fail_clearly(
    logs: pytest.LogCaptureFixture,
    answer: tuple[int, object],
    state: str,
    outputs: dict[str, str],
):
    """unsupported_challenge_type and a bare 429 at /mfa/challenge end in their
    own failures, with outputs that say why."""
    app = Scripted(scripted_mfa(challenge=[answer]))
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("mfa-challenge", mfa_token="Fe26.2**scripted-mfa-1")

    assert (result.outcome, result.state) == ("failure", state)
    assert result.outputs == outputs
    driver.assert_no_secret_leaked(logs)


def test_authenticators_removed_meanwhile_lead_to_enrolment(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """When the user's authenticators are deleted while the person chooses, the
    challenge answers association_required and the login enrols one instead."""
    result = sign_in(driver, "sms")
    assert result.state == "ask_authenticator"
    for authenticator in driver.tenant.authenticators("sms@example.test"):
        if authenticator.channel == "sms":
            driver.tenant.delete_authenticator("sms@example.test", authenticator.id)
    assert driver.tenant.authenticators("sms@example.test") == []

    result = driver.resume(result, authenticator="Text message to XXXXXXXX4567")

    assert "mfa-challenge:challenge --association_required--> enrol" in edges(result)
    assert result.waiting_for[0].name == "factor"
    result = driver.resume(result, factor="email")
    result = driver.resume(
        result, binding_code=driver.last_code("sms@example.test", "email")
    )
    assert (result.outcome, result.state) == ("success", "signed_in")
    (code,) = result.outputs["recovery_codes"]
    assert len(code) == 24
    driver.assert_no_secret_leaked(logs)


# -- wrong codes, again and again ------------------------------------------------------


def wrong(code: str) -> str:
    """A six-digit code that is not ``code``."""
    return "000000" if code != "000000" else "111111"


@pytest.mark.parametrize("factor", ["email", "recovery-code"])
def test_too_many_wrong_codes_of_other_factors_fail(
    driver: Driver, logs: pytest.LogCaptureFixture, factor: str
):
    """Three wrong email codes, or three wrong recovery codes, end the login."""
    if factor == "email":
        result = sign_in(driver, "email")
        code = driver.last_code("email@example.test", "email")
        answer = {"binding_code": wrong(code)}
    else:
        result = sign_in(driver, "recovery", authenticator_id="recovery-code")
        answer = {"recovery_code": "WRONGWRONGWRONGWRONG0000"}
    for _ in range(3):
        assert result.waiting_for, result
        result = driver.resume(result, **answer)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.message == (
        "The code was not accepted 3 times; sign in again to retry."
    )
    assert result.outputs["error"] == "invalid_grant"
    assert states(result)[-2] == "mfa-challenge:too_many_wrong_codes"
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("factor", ["email", "recovery-code"])
def test_tenant_lockout_of_other_factors_ends_as_locked(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture, factor: str
):
    """When the tenant refuses more codes, a binding or recovery code ends as locked."""
    driver = serve(limits=Limits(otp_failures=Limit(2, 360)))
    if factor == "email":
        result = sign_in(driver, "email")
        code = driver.last_code("email@example.test", "email")
        answers = [{"binding_code": wrong(code)}] * 2 + [{"binding_code": code}]
    else:
        result = sign_in(driver, "recovery", authenticator_id="recovery-code")
        answers = [{"recovery_code": "WRONGWRONGWRONGWRONG0000"}] * 2 + [
            {"recovery_code": RECOVERY_CODE}
        ]
    for answer in answers:
        result = driver.resume(result, **answer)

    assert (result.outcome, result.state) == ("failure", "mfa_failed")
    assert result.outputs["error"] == "too_many_attempts"
    assert states(result)[-2] == "mfa-challenge:locked"
    driver.assert_no_secret_leaked(logs)


def test_unknown_oob_code_ends_without_sending_a_new_code(
    logs: pytest.LogCaptureFixture,
):
    """An oob_code the tenant no longer knows (not one that expired) ends the run
    instead of challenging again."""
    email = {
        "id": "email|dev_scripted",
        "authenticator_type": "oob",
        "oob_channel": "email",
        "name": "a***@example.test",
        "active": True,
    }
    challenge = {**PUSH_CHALLENGE, "binding_method": "prompt"}
    refused = {"error": "invalid_grant", "error_description": "Invalid oob_code."}
    app = Scripted(
        scripted_mfa(
            list=[(200, [email])],
            challenge=[(200, challenge)],
            mfa_oob=[(401, refused)],
        )
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("mfa-challenge", mfa_token="Fe26.2**scripted-mfa-3")
        assert result.state == "ask_binding_code"
        result = driver.resume(result, binding_code="975310")

    assert (result.outcome, result.state) == ("failure", "challenge_rejected")
    assert result.message == (
        "The tenant no longer accepts the challenge's oob_code; sign in again."
    )
    assert result.outputs == refused
    assert app.requests.count("POST /mfa/challenge") == 1
    driver.assert_no_secret_leaked(logs)
