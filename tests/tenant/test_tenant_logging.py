"""The tenant's logs never hold a password, secret, token or code."""

from __future__ import annotations

import logging

import pytest
from _tenantkit import Api

from mfaflow.tenant import (
    DEMO_PASSWORD,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    MFA_OOB,
    MFA_RECOVERY_CODE,
    PASSWORD,
    REFRESH_TOKEN,
)


def _run_everything(api: Api) -> list[str]:
    """Log in, enrol, challenge, refresh and recover; return every secret seen."""
    secrets: list[str] = [DEMO_PASSWORD, DEMO_SERVER_CLIENT_SECRET]
    mfa_token = api.mfa_token()
    enrolment = api.associate(mfa_token, authenticator_types=["otp"])
    otp = api.totp(enrolment["secret"])
    tokens = api.verify_otp(mfa_token, otp).json()
    secrets += [mfa_token, enrolment["secret"], otp, *enrolment["recovery_codes"]]
    secrets += [tokens["access_token"], tokens["id_token"], tokens["refresh_token"]]

    api.verify_otp(api.mfa_token(), otp)  # a reused code, refused
    refreshed = api.token(
        grant_type=REFRESH_TOKEN, refresh_token=tokens["refresh_token"]
    )
    secrets.append(refreshed.json()["refresh_token"])

    access = api.mfa_api_token(enrolment["secret"])["access_token"]
    sms = api.associate(
        access,
        authenticator_types=["oob"],
        oob_channels=["sms"],
        phone_number="+15550007777",
    )
    code = api.tenant.last_code(api.tenant.outbox.messages()[-1].user_id, "sms")
    api.token(
        grant_type=MFA_OOB,
        mfa_token=access,
        oob_code=sms["oob_code"],
        binding_code=code,
    )
    secrets += [access, sms["oob_code"], code]

    recovered = api.token(
        grant_type=MFA_RECOVERY_CODE,
        mfa_token=api.mfa_token(),
        recovery_code=enrolment["recovery_codes"][0],
    ).json()
    secrets += [recovered["recovery_code"], recovered["access_token"]]

    api.session.post(
        api.url + "oauth/token",
        data={"grant_type": PASSWORD, "username": "x@example.test", "password": "p"},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )
    return secrets


def test_no_secret_reaches_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """A full flow logged at DEBUG leaves no secret value in any log record."""
    caplog.set_level(logging.DEBUG)

    secrets = _run_everything(api)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert any(r.name.startswith("mfaflow.tenant") for r in caplog.records)
    leaked = [secret[:6] + "..." for secret in secrets if secret in logged]
    assert leaked == []


def test_reprs_hide_secrets(api: Api) -> None:
    """Reprs of users, authenticators, messages and enrolments show no secret."""
    mfa_token = api.mfa_token()
    enrolment = api.associate(
        mfa_token,
        authenticator_types=["oob"],
        oob_channels=["sms"],
        phone_number="+15550001111",
    )
    tenant = api.tenant
    user = tenant.find_user("demo@example.test")
    assert user is not None
    message = tenant.outbox.messages()[-1]
    otp = tenant.enrol(user.id, "otp")

    shown = " ".join(
        repr(item)
        for item in (user, message, otp, *tenant.authenticators(user.id), tenant.config)
    )

    for secret in (user.password_hash, message.code, otp.secret, enrolment["oob_code"]):
        assert secret
        assert secret not in shown
