"""The tenant's Python methods, as login pages and tests use them, and its exports."""

from __future__ import annotations

import attrs
import pyotp
import pytest

import mfaflow.tenant
from mfaflow.tenant import (
    DEMO_API,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    Clock,
    Limit,
    OAuthError,
    Tenant,
    TenantConfig,
)


@pytest.fixture
def local(config: TenantConfig, clock: Clock) -> Tenant:
    """A tenant used in process, without a server."""
    return Tenant(config, clock=clock)


def test_check_password(local: Tenant) -> None:
    """check_password returns the user for the right password and None otherwise."""
    user = local.check_password(DEMO_EMAIL, DEMO_PASSWORD)

    assert user is not None
    assert user.email == DEMO_EMAIL
    assert local.check_password(DEMO_EMAIL, "wrong") is None
    assert local.check_password("ghost@example.test", DEMO_PASSWORD) is None


def test_mfa_policy_and_requirements(local: Tenant) -> None:
    """needs_mfa follows the policy; the MFA audience skips it with nothing enrolled."""
    assert local.needs_mfa(DEMO_EMAIL)
    assert local.needs_mfa(DEMO_EMAIL, DEMO_API)
    assert not local.needs_mfa(DEMO_EMAIL, local.mfa_audience)
    assert local.mfa_requirements(DEMO_EMAIL) == {
        "enroll": [{"type": "otp"}, {"type": "phone"}, {"type": "push-notification"}]
    }


def test_enrol_and_confirm_otp_in_python(local: Tenant) -> None:
    """OTP enrolment is confirmed by verify_otp with its id, then answers challenges."""
    enrolment = local.enrol(DEMO_EMAIL, "otp")
    secret = enrolment.secret or ""
    code = pyotp.TOTP(secret).at(local.clock.now())

    confirmed = local.verify_otp(
        DEMO_EMAIL, code, authenticator_id=enrolment.authenticator.id
    )
    challenge = local.challenge(DEMO_EMAIL, confirmed.id)
    local.clock.advance(30)
    again = local.verify_otp(DEMO_EMAIL, local.current_totp(confirmed.id))

    assert not enrolment.authenticator.active
    assert confirmed.active
    assert local.authenticators(DEMO_EMAIL, active_only=True)[0].id == confirmed.id
    assert challenge.to_json() == {"challenge_type": "otp"}
    assert again.id == confirmed.id
    with pytest.raises(OAuthError) as raised:
        local.verify_otp(DEMO_EMAIL, local.current_totp(confirmed.id))
    assert (raised.value.error, raised.value.description) == (
        "invalid_grant",
        "Invalid otp_code.",
    )


def test_send_a_code_and_verify_it_in_python(local: Tenant) -> None:
    """An email challenge puts a code in the outbox; verify_oob with it succeeds."""
    enrolment = local.enrol(DEMO_EMAIL, "email")
    local.verify_oob(enrolment.oob_code or "", local.last_code(DEMO_EMAIL, "email"))

    challenge = local.challenge(DEMO_EMAIL, enrolment.authenticator.id)
    code = local.last_code(DEMO_EMAIL)
    verified = local.verify_oob(challenge.oob_code or "", code)

    assert challenge.binding_method == "prompt"
    assert verified.id == enrolment.authenticator.id
    assert [m.purpose for m in local.outbox.messages()] == ["enrolment", "challenge"]


def test_push_challenge_in_python(local: Tenant) -> None:
    """A push challenge is pending until approved, and slow_down past its 12 polls."""
    enrolment = local.enrol(DEMO_EMAIL, "push")
    local.approve_push(request_id=local.pending_pushes()[0].id)
    local.verify_oob(enrolment.oob_code or "")

    challenge = local.challenge(DEMO_EMAIL, enrolment.authenticator.id)
    errors = []
    for _ in range(13):
        with pytest.raises(OAuthError) as raised:
            local.verify_oob(challenge.oob_code or "")
        errors.append(raised.value.error)
    local.approve_push(DEMO_EMAIL)
    local.clock.advance(5)
    approved = local.verify_oob(challenge.oob_code or "")

    assert errors == ["authorization_pending"] * 12 + ["slow_down"]
    assert challenge.request_id is not None
    assert approved.channel == "auth0"


def test_recovery_code_in_python(local: Tenant) -> None:
    """verify_recovery_code returns a replacement and refuses the used code."""
    enrolment = local.enrol(DEMO_EMAIL, "otp")
    secret = enrolment.secret or ""
    local.verify_otp(
        DEMO_EMAIL,
        pyotp.TOTP(secret).at(local.clock.now()),
        authenticator_id=enrolment.authenticator.id,
    )
    [code] = enrolment.recovery_codes

    replacement = local.verify_recovery_code(DEMO_EMAIL, code.lower())

    assert replacement != code
    with pytest.raises(OAuthError):
        local.verify_recovery_code(DEMO_EMAIL, code)


def test_sessions_start_grow_expire_and_end(local: Tenant) -> None:
    """A login session records methods, expires with its lifetime, and can be ended."""
    session_id = local.start_session(DEMO_EMAIL)
    grown = local.add_session_amr(session_id, "mfa")
    other = local.start_session(DEMO_EMAIL)
    local.end_session(other)

    assert grown.amr == ("pwd", "mfa")
    assert local.get_session(session_id) == grown
    assert local.get_session(other) is None
    local.clock.advance(local.config.lifetimes.login_session)
    assert local.get_session(session_id) is None


def test_delete_authenticator_in_python(local: Tenant) -> None:
    """Deleting an SMS authenticator also deletes its voice twin."""
    enrolment = local.enrol(DEMO_EMAIL, "sms", phone_number="+15550002222")

    local.delete_authenticator(DEMO_EMAIL, enrolment.authenticator.id)

    assert [a.channel for a in local.authenticators(DEMO_EMAIL)] == ["recovery-code"]
    with pytest.raises(OAuthError) as raised:
        local.delete_authenticator(DEMO_EMAIL, enrolment.authenticator.id)
    assert raised.value.status == 404


def test_with_issuer_shares_state(local: Tenant) -> None:
    """A view with another issuer sees the same users and names its own audiences."""
    view = local.with_issuer("http://127.0.0.1:9999")
    added = view.add_user("viewer@example.test", "viewer-password-1")

    assert view.issuer == "http://127.0.0.1:9999/"
    assert view.mfa_audience == "https://127.0.0.1:9999/mfa/"
    assert "http://127.0.0.1:9999/mfa" in view.mfa_audiences
    assert local.find_user(added.id) == added
    assert local.issuer == "http://127.0.0.1/"


def test_clock_only_moves_forward() -> None:
    """A fixed clock stands still, advances on demand, and refuses to go back."""
    clock = Clock.fixed(1000.0)

    clock.advance(2.5)

    assert clock.now() == 1002.5
    assert clock.is_fixed
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match=r"at most 315360000 seconds \(ten years\)"):
        clock.advance(float("inf"))
    assert clock.now() == 1002.5
    assert not Clock().is_fixed
    assert Clock(10.0, offset=5.0).now() == 15.0


def test_public_names_are_exported() -> None:
    """__all__ lists every public name of mfaflow.tenant, and each exists."""
    public = {
        name
        for name, value in vars(mfaflow.tenant).items()
        if not name.startswith("_") and not isinstance(value, type(mfaflow.tenant))
    }

    assert set(mfaflow.tenant.__all__) == public


def test_verify_otp_refuses_an_authenticator_that_is_not_otp(local: Tenant) -> None:
    """Naming a non-OTP authenticator when verifying an OTP is just a wrong code."""
    enrolment = local.enrol(DEMO_EMAIL, "sms", phone_number="+15550003333")
    recovery = local.authenticators(DEMO_EMAIL)[-1]

    for authenticator_id in (enrolment.authenticator.id, recovery.id):
        with pytest.raises(OAuthError) as raised:
            local.verify_otp(DEMO_EMAIL, "123456", authenticator_id=authenticator_id)
        assert raised.value.error == "invalid_grant"


def test_enrolment_over_the_send_limit_stores_nothing(
    config: TenantConfig, clock: Clock
) -> None:
    """An enrolment refused by the send limit leaves no authenticator behind."""
    limits = attrs.evolve(config.limits, push_sends=Limit(1, 60))
    local = Tenant(attrs.evolve(config, limits=limits), clock=clock)
    local.enrol(DEMO_EMAIL, "push")
    before = local.authenticators(DEMO_EMAIL)

    with pytest.raises(OAuthError) as raised:
        local.enrol(DEMO_EMAIL, "push")

    assert raised.value.status == 429
    assert local.authenticators(DEMO_EMAIL) == before
