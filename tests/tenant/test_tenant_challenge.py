"""Challenges and MFA grants over HTTP: OTP, sent codes, push, recovery codes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pyotp
import pytest
import requests
from _tenantkit import Api, Serve, error_of, wrong_code

from mfaflow.tenant import (
    DEMO_EMAIL,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    MFA_OOB,
    MFA_OTP,
    MFA_RECOVERY_CODE,
    Limit,
    TenantConfig,
)
from mfaflow.tenant._http import Params

PHONE = "+15550001234"


def _challenge(api: Api, mfa_token: str, **fields: str) -> requests.Response:
    return api.post(
        "mfa/challenge", {"client_id": "mfaflow-demo", "mfa_token": mfa_token, **fields}
    )


def _enrol_sms(api: Api) -> None:
    """Enrol and confirm SMS (with its voice twin) for the demo user."""
    mfa_token = api.mfa_token()
    enrolment = api.associate_sms(mfa_token, PHONE)
    answer = api.token(
        grant_type=MFA_OOB,
        mfa_token=mfa_token,
        oob_code=enrolment["oob_code"],
        binding_code=api.tenant.last_code(DEMO_EMAIL, "sms"),
    )
    assert answer.status_code == 200, answer.text


def _enrol_push(api: Api) -> None:
    """Enrol and confirm push (with its OTP twin) for the demo user."""
    mfa_token = api.mfa_token()
    enrolment = api.associate(
        mfa_token, authenticator_types=["oob"], oob_channels=["auth0"]
    )
    api.tenant.approve_push(DEMO_EMAIL)
    answer = api.token(
        grant_type=MFA_OOB, mfa_token=mfa_token, oob_code=enrolment["oob_code"]
    )
    assert answer.status_code == 200, answer.text


# --- OTP ------------------------------------------------------------------------------


def test_otp_challenge_then_otp_grant(api: Api) -> None:
    """Challenging an OTP user answers challenge_type otp; the current code logs in."""
    secret, _ = api.enrol_otp()
    mfa_token = api.mfa_token()

    challenge = _challenge(api, mfa_token, challenge_type="otp oob")
    answer = api.verify_otp(mfa_token, api.next_totp(secret))

    assert challenge.json() == {"challenge_type": "otp"}
    assert answer.status_code == 200
    assert "refresh_token" in answer.json()


def test_wrong_otp_is_invalid_grant(api: Api) -> None:
    """A wrong code answers 400 invalid_grant 'Invalid otp_code.'."""
    secret, _ = api.enrol_otp()

    answer = api.verify_otp(api.mfa_token(), wrong_code(secret, api.tenant.clock.now()))

    assert error_of(answer) == (400, "invalid_grant", "Invalid otp_code.")


def test_an_otp_code_is_accepted_once(api: Api) -> None:
    """A code that was accepted is refused when used again, even in its window."""
    secret, _ = api.enrol_otp()
    code = api.next_totp(secret)

    first = api.verify_otp(api.mfa_token(), code)
    second = api.verify_otp(api.mfa_token(), code)

    assert first.status_code == 200
    assert error_of(second) == (400, "invalid_grant", "Invalid otp_code.")


def test_the_previous_window_is_accepted_and_older_ones_are_not(api: Api) -> None:
    """A code from the previous 30 s step works; one from two steps back does not."""
    secret, _ = api.enrol_otp()
    api.tenant.clock.advance(90)
    clock_now = api.tenant.clock.now()
    previous = pyotp.TOTP(secret).at(clock_now - 30)
    older = pyotp.TOTP(secret).at(clock_now - 60)

    old_answer = api.verify_otp(api.mfa_token(), older)
    previous_answer = api.verify_otp(api.mfa_token(), previous)

    assert error_of(old_answer)[:2] == (400, "invalid_grant")
    assert previous_answer.status_code == 200


def test_too_many_failed_codes_lock_verification(api: Api) -> None:
    """After ten failures even a right code gets 429 for 6 minutes."""
    secret, _ = api.enrol_otp()
    mfa_token = api.mfa_token()
    api.tenant.clock.advance(30)
    bad = wrong_code(secret, api.tenant.clock.now())

    failures = [api.verify_otp(mfa_token, bad).status_code for _ in range(10)]
    locked = api.verify_otp(mfa_token, api.totp(secret))
    locked_at = api.tenant.clock.now()
    api.tenant.clock.advance(329)
    still_locked = api.verify_otp(mfa_token, api.next_totp(secret))  # 359 s later
    api.tenant.clock.advance(1)
    unlocked = api.verify_otp(mfa_token, api.totp(secret))

    assert failures == [400] * 10
    status, error, description = error_of(locked)
    assert (status, error) == (429, "too_many_attempts")
    assert description == "Too many failed codes; wait 360 seconds before trying again."
    assert locked.headers["Retry-After"] == "360"
    assert locked.headers["X-RateLimit-Limit"] == "10"
    assert locked.headers["X-RateLimit-Remaining"] == "0"
    assert locked.headers["X-RateLimit-Reset"] == str(math.ceil(locked_at) + 360)
    assert error_of(still_locked)[:2] == (429, "too_many_attempts")
    assert unlocked.status_code == 200


# --- mfa_token problems ---------------------------------------------------------------


def test_malformed_mfa_token_at_challenge_and_grant(api: Api) -> None:
    """An unknown mfa_token answers 401 invalid_grant 'Malformed mfa_token'."""
    expected = (401, "invalid_grant", "Malformed mfa_token")

    assert error_of(_challenge(api, "Fe26.2**not-a-token")) == expected
    assert error_of(api.verify_otp("garbage", "123456")) == expected


def test_expired_mfa_token_at_challenge_and_grant(api: Api) -> None:
    """After 600 s the mfa_token answers 401 expired_token 'mfa_token is expired'."""
    secret, _ = api.enrol_otp()
    mfa_token = api.mfa_token()

    api.tenant.clock.advance(600)

    expected = (401, "expired_token", "mfa_token is expired")
    assert error_of(_challenge(api, mfa_token)) == expected
    assert error_of(api.verify_otp(mfa_token, api.totp(secret))) == expected


def test_mfa_token_belongs_to_its_client(api: Api) -> None:
    """Another client can neither challenge with a client's mfa_token nor redeem it."""
    secret, _ = api.enrol_otp()
    mfa_token = api.mfa_token()
    other = {
        "client_id": DEMO_SERVER_CLIENT_ID,
        "client_secret": DEMO_SERVER_CLIENT_SECRET,
    }

    answer = api.post("mfa/challenge", {**other, "mfa_token": mfa_token})
    redeemed = api.verify_otp(mfa_token, api.totp(secret), **other)

    expected = (401, "invalid_grant", "The mfa_token was issued to another client.")
    assert error_of(answer) == expected
    assert error_of(redeemed) == expected


def test_challenge_authenticates_confidential_clients(api: Api) -> None:
    """/mfa/challenge refuses a confidential client that does not send its secret."""
    answer = api.post(
        "mfa/challenge", {"client_id": DEMO_SERVER_CLIENT_ID, "mfa_token": "x"}
    )

    assert error_of(answer)[:2] == (401, "invalid_client")


# --- Challenge choices ----------------------------------------------------------------


def test_challenge_without_enrolment_is_association_required(api: Api) -> None:
    """A user with nothing enrolled gets 400 association_required."""
    answer = _challenge(api, api.mfa_token())

    assert error_of(answer)[:2] == (400, "association_required")


@pytest.mark.parametrize("challenge_type", ["oob", "sms"], ids=["no-oob", "unknown"])
def test_unsupported_challenge_types(api: Api, challenge_type: str) -> None:
    """An unknown type, or one the user has no authenticator for, is unsupported."""
    api.enrol_otp()

    answer = _challenge(api, api.mfa_token(), challenge_type=challenge_type)

    assert error_of(answer)[:2] == (400, "unsupported_challenge_type")


def test_challenge_picks_the_named_authenticator(api: Api) -> None:
    """authenticator_id selects the authenticator; an unknown id is invalid_request."""
    _enrol_sms(api)
    voice = next(
        a for a in api.tenant.authenticators(DEMO_EMAIL) if a.channel == "voice"
    )
    mfa_token = api.mfa_token()

    answer = _challenge(api, mfa_token, authenticator_id=voice.id)
    unknown = _challenge(api, mfa_token, authenticator_id="sms|dev_nothing")

    assert answer.json()["binding_method"] == "prompt"
    assert api.tenant.outbox.last(user_id=voice.user_id).channel == "voice"  # type: ignore[union-attr]
    assert error_of(unknown)[:2] == (400, "invalid_request")


# --- Codes sent by SMS, voice, email --------------------------------------------------


def _sms_challenge(api: Api) -> tuple[str, dict[str, Any]]:
    _enrol_sms(api)
    mfa_token = api.mfa_token()
    answer = _challenge(api, mfa_token, challenge_type="oob")
    assert answer.status_code == 200, answer.text
    return mfa_token, answer.json()


def test_sms_challenge_is_verified_with_the_binding_code(api: Api) -> None:
    """An SMS challenge sends a code; the mfa-oob grant with it issues tokens."""
    mfa_token, challenge = _sms_challenge(api)

    answer = api.token(
        grant_type=MFA_OOB,
        mfa_token=mfa_token,
        oob_code=challenge["oob_code"],
        binding_code=api.tenant.last_code(DEMO_EMAIL, "sms"),
    )

    assert challenge["challenge_type"] == "oob"
    assert challenge["binding_method"] == "prompt"
    assert answer.status_code == 200
    assert api.tenant.outbox.last(channel="sms").purpose == "challenge"  # type: ignore[union-attr]


def test_wrong_or_missing_binding_code(api: Api) -> None:
    """A wrong binding code is 400 invalid_grant; none at all is 400 invalid_request."""
    mfa_token, challenge = _sms_challenge(api)
    sent = api.tenant.last_code(DEMO_EMAIL, "sms")
    fields = {
        "grant_type": MFA_OOB,
        "mfa_token": mfa_token,
        "oob_code": challenge["oob_code"],
    }

    wrong = api.token(**fields, binding_code="999999" if sent != "999999" else "000000")
    missing = api.token(**fields)

    assert error_of(wrong) == (400, "invalid_grant", "Invalid binding_code.")
    assert error_of(missing)[:2] == (400, "invalid_request")


def test_oob_code_expires_after_five_minutes(api: Api) -> None:
    """A code used after 300 s answers 401 invalid_grant 'oob_code is expired'."""
    mfa_token, challenge = _sms_challenge(api)
    code = api.tenant.last_code(DEMO_EMAIL, "sms")

    api.tenant.clock.advance(300)
    answer = api.token(
        grant_type=MFA_OOB,
        mfa_token=mfa_token,
        oob_code=challenge["oob_code"],
        binding_code=code,
    )

    assert error_of(answer) == (401, "invalid_grant", "oob_code is expired")


def test_oob_code_is_single_use(api: Api) -> None:
    """An oob_code that succeeded cannot be used again."""
    mfa_token, challenge = _sms_challenge(api)
    fields = {
        "grant_type": MFA_OOB,
        "mfa_token": mfa_token,
        "oob_code": challenge["oob_code"],
        "binding_code": api.tenant.last_code(DEMO_EMAIL, "sms"),
    }

    first = api.token(**fields)
    second = api.token(**fields)

    assert first.status_code == 200
    assert error_of(second)[:2] == (401, "invalid_grant")


@pytest.mark.parametrize(
    ("limit", "enrol", "sent"),
    [
        ("phone_sends", _enrol_sms, "text messages"),
        ("push_sends", _enrol_push, "push notifications"),
    ],
    ids=["sms", "push"],
)
def test_an_exhausted_send_limit_is_429_and_says_when_to_retry(
    base_config: TenantConfig,
    serve: Serve,
    limit: str,
    enrol: Callable[[Api], None],
    sent: str,
) -> None:
    """A send limit's 429 names what was sent and carries rate-limit headers."""
    limits = attrs.evolve(base_config.limits, **{limit: Limit(2, 30)})
    with serve(attrs.evolve(base_config, limits=limits)) as api:
        enrol(api)
        mfa_token = api.mfa_token()
        first = _challenge(api, mfa_token, challenge_type="oob")
        refused = _challenge(api, mfa_token, challenge_type="oob")
        now = api.tenant.clock.now()

    assert first.status_code == 200, first.text
    assert error_of(refused) == (
        429,
        "too_many_requests",
        f"Too many {sent} were sent to this user; wait before asking again.",
    )
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 30
    assert int(refused.headers["X-RateLimit-Reset"]) == math.ceil(now) + wait


# --- Push -----------------------------------------------------------------------------


def _push_challenge(api: Api) -> dict[str, str]:
    _enrol_push(api)
    mfa_token = api.mfa_token()
    answer = _challenge(api, mfa_token, challenge_type="oob")
    assert answer.status_code == 200, answer.text
    assert "binding_method" not in answer.json()
    return {
        "grant_type": MFA_OOB,
        "mfa_token": mfa_token,
        "oob_code": answer.json()["oob_code"],
    }


def test_push_is_pending_until_approved(api: Api) -> None:
    """Polling answers authorization_pending (400) until the push is approved."""
    poll = _push_challenge(api)

    pending = api.token(**poll)
    api.tenant.approve_push(DEMO_EMAIL)
    api.tenant.clock.advance(5)
    approved = api.token(**poll)

    assert error_of(pending)[:2] == (400, "authorization_pending")
    assert approved.status_code == 200


def test_polls_beyond_the_burst_are_slow_down_and_cost_nothing(api: Api) -> None:
    """Twelve quick polls are answered, the next is slow_down; five seconds free one."""
    poll = _push_challenge(api)

    burst = [api.token(**poll) for _ in range(12)]
    fast = [api.token(**poll) for _ in range(3)]
    api.tenant.clock.advance(5)
    patient = api.token(**poll)
    again = api.token(**poll)

    assert {error_of(answer)[:2] for answer in burst} == {
        (400, "authorization_pending")
    }
    assert [error_of(answer)[1] for answer in fast] == ["slow_down"] * 3
    wait = "Polling too fast; wait 5 seconds before polling again."
    assert error_of(fast[0])[2] == wait
    assert error_of(patient)[:2] == (400, "authorization_pending")
    assert error_of(again)[:2] == (400, "slow_down")


def test_a_polite_poller_gets_the_approved_push(api: Api) -> None:
    """Polling every four seconds, a push approved after the first poll completes."""
    poll = _push_challenge(api)

    first = api.token(**poll)
    api.tenant.clock.advance(4)
    api.tenant.approve_push(DEMO_EMAIL)
    second = api.token(**poll)

    assert error_of(first)[:2] == (400, "authorization_pending")
    assert second.status_code == 200, second.text
    assert "access_token" in second.json()


def test_each_mfa_token_has_its_own_poll_bucket(api: Api) -> None:
    """Exhausting the polls of one login leaves another login's push polls alone."""
    spent = _push_challenge(api)
    for _ in range(13):
        api.token(**spent)
    mfa_token = api.mfa_token()
    oob_code = _challenge(api, mfa_token, challenge_type="oob").json()["oob_code"]
    fresh = {"grant_type": MFA_OOB, "mfa_token": mfa_token, "oob_code": oob_code}

    assert error_of(api.token(**spent))[1] == "slow_down"
    assert error_of(api.token(**fresh))[:2] == (400, "authorization_pending")


def test_rejected_push_is_access_denied(api: Api) -> None:
    """A rejected push answers 400 access_denied 'MFA Authorization rejected.'."""
    poll = _push_challenge(api)

    api.tenant.reject_push(DEMO_EMAIL)
    answer = api.token(**poll)

    assert error_of(answer) == (400, "access_denied", "MFA Authorization rejected.")


def test_push_otp_twin_answers_otp_challenges(api: Api) -> None:
    """A push user can answer an otp challenge with the twin's code."""
    _enrol_push(api)
    twin = next(a for a in api.tenant.authenticators(DEMO_EMAIL) if a.channel == "otp")
    mfa_token = api.mfa_token()

    challenge = _challenge(api, mfa_token, challenge_type="otp")
    api.tenant.clock.advance(30)
    answer = api.verify_otp(mfa_token, api.tenant.current_totp(twin.id))

    assert challenge.json() == {"challenge_type": "otp"}
    assert answer.status_code == 200


# --- Recovery codes -------------------------------------------------------------------


def test_recovery_code_logs_in_and_is_replaced(api: Api) -> None:
    """A recovery code gives tokens and a replacement; the old code stops working."""
    mfa_token = api.mfa_token()
    enrolment = api.associate(mfa_token, authenticator_types=["otp"])
    api.verify_otp(mfa_token, api.totp(enrolment["secret"]))
    [first_code] = enrolment["recovery_codes"]

    used = api.token(
        grant_type=MFA_RECOVERY_CODE,
        mfa_token=api.mfa_token(),
        recovery_code=first_code,
    )
    replacement = used.json()["recovery_code"]
    reused = api.token(
        grant_type=MFA_RECOVERY_CODE,
        mfa_token=api.mfa_token(),
        recovery_code=first_code,
    )
    again = api.token(
        grant_type=MFA_RECOVERY_CODE,
        mfa_token=api.mfa_token(),
        recovery_code=replacement,
    )

    assert used.status_code == 200
    assert {"access_token", "refresh_token"} <= used.json().keys()
    assert replacement != first_code
    assert len(replacement) == 24
    assert error_of(reused) == (401, "invalid_grant", "Invalid recovery_code.")
    assert again.status_code == 200


def test_codes_may_be_json_numbers(api: Api) -> None:
    """An otp sent as a JSON number verifies; a boolean is refused."""
    secret, _ = api.enrol_otp()
    by_otp = api.token_json(
        grant_type=MFA_OTP, mfa_token=api.mfa_token(), otp=int(api.next_totp(secret))
    )
    as_bool = api.token_json(grant_type=MFA_OTP, mfa_token=api.mfa_token(), otp=True)

    assert by_otp.status_code == 200, by_otp.text
    assert error_of(as_bool) == (
        400,
        "invalid_request",
        "Parameter 'otp' must be a string; got bool.",
    )


def test_a_binding_code_may_be_a_json_number(api: Api) -> None:
    """A binding_code sent as a JSON number verifies."""
    _enrol_sms(api)
    mfa_token = api.mfa_token()
    oob_code = _challenge(api, mfa_token, challenge_type="oob").json()["oob_code"]
    sent = int(api.tenant.last_code(DEMO_EMAIL, "sms"))

    answer = api.token_json(
        grant_type=MFA_OOB, mfa_token=mfa_token, oob_code=oob_code, binding_code=sent
    )

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("sent", "read"), [(123456, "123456"), (12345, "012345"), (7, "000007")]
)
def test_a_numeric_code_gets_back_its_leading_zeros(sent: int, read: str) -> None:
    """A code number below a million is read as six digits."""
    assert Params({"otp": [sent]}).code("otp") == read
