"""auth0-server-python's ``MfaClient`` against ``mfaflow serve --tls --control``.

The SDK speaks only ``https`` and trusts what ``SSL_CERT_FILE`` names, here
the certificate ``serve --tls`` printed. It has no password grant: the
test logs in with ``requests`` and seals the ``mfa_token`` of the
``mfa_required`` answer the way the SDK's ServerClient does before
handing it to ``MfaClient``. ``MfaClient`` has no delete.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

import pyotp
import pytest
import requests
from _serve import Served

from mfaflow.tenant import DEMO_API, DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET

with warnings.catch_warnings():
    # The SDK and its dependencies warn about their own deprecations at import
    # (pydantic's class-based Config, authlib's httpx module).
    warnings.simplefilter("ignore")
    from auth0_server_python.auth_server.mfa_client import MfaClient
    from auth0_server_python.error import MfaVerifyError

PASSWORD = "sdk-password-1"
SCOPE = "openid offline_access"
#: The phone number SMS and voice codes go to.
PHONE = "+15557654321"
_T = TypeVar("_T")


class Driver:
    """Calls the served tenant: control with requests, the MFA API through the SDK."""

    def __init__(self, tenant: Served) -> None:
        assert tenant.certificate is not None
        self.url = tenant.url
        self.certificate = str(tenant.certificate)
        domain = tenant.url.removeprefix("https://").rstrip("/")
        self.sdk = MfaClient(
            domain,
            DEMO_SERVER_CLIENT_ID,
            DEMO_SERVER_CLIENT_SECRET,
            secret="a sealing secret of at least 32 characters",
            mfa_token_ttl=600,
        )

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.url + "__control/" + path
        if body is None:
            answer = requests.get(url, verify=self.certificate, timeout=30)
        else:
            answer = requests.post(url, json=body, verify=self.certificate, timeout=30)
        assert answer.ok, answer.text
        return answer.json()

    def new_user(self, tag: str) -> str:
        email = f"{tag}-{uuid.uuid4().hex}@example.test"
        self.control("users", {"email": email, "password": PASSWORD, "mfa": "always"})
        return email

    def mfa_token(self, email: str) -> str:
        """Log in with the password grant; return the sealed mfa_token of its 403."""
        answer = requests.post(
            self.url + "oauth/token",
            data={
                "grant_type": "password",
                "username": email,
                "password": PASSWORD,
                "scope": SCOPE,
                "audience": DEMO_API,
            },
            auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
            verify=self.certificate,
            timeout=30,
        )
        assert answer.status_code == 403, answer.text
        # As ServerClient does with the mfa_token of an mfa_required answer.
        sealed: str = self.sdk._encrypt_mfa_token(
            answer.json()["mfa_token"], DEMO_API, SCOPE
        )
        return sealed

    def last_code(self, email: str) -> str:
        code: str = self.control(f"outbox/last?user={email}")["code"]
        return code

    def totp(self, secret: str, *, steps_back: int = 0) -> str:
        """The code an app shows on the tenant's clock, away from a step's end."""
        now = self.control("clock")["now"]
        if now % 30 >= 28:
            time.sleep(30 - now % 30)
            now = self.control("clock")["now"]
        return str(pyotp.TOTP(secret).at(now - 30 * steps_back))


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


@pytest.fixture
def driver(tenant: Served, monkeypatch: pytest.MonkeyPatch) -> Driver:
    """A driver whose SDK trusts the tenant's certificate through SSL_CERT_FILE."""
    assert tenant.certificate is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(tenant.certificate))
    return Driver(tenant)


def _enrol(driver: Driver, factor: str, email: str, mfa_token: str) -> Any:
    options: dict[str, Any] = {"mfa_token": mfa_token, "factor_type": factor}
    if factor in ("sms", "voice"):
        options["phone_number"] = PHONE
    if factor == "email":
        options["email"] = email
    return run(driver.sdk.enroll_authenticator(options))


def _confirm(
    driver: Driver, factor: str, email: str, mfa_token: str, enrolment: Any
) -> Any:
    verify = driver.sdk.verify
    if factor == "otp":
        # The previous step's code, so the current one is left for a challenge.
        otp = driver.totp(enrolment.secret, steps_back=1)
        return run(verify({"mfa_token": mfa_token, "otp": otp}))
    if factor == "auth0":
        with pytest.raises(MfaVerifyError) as pending:
            run(verify({"mfa_token": mfa_token, "oob_code": enrolment.oob_code}))
        assert pending.value.cause["error"] == "authorization_pending"  # type: ignore[index]
        driver.control("pushes/approve", {"user": email})
        return run(verify({"mfa_token": mfa_token, "oob_code": enrolment.oob_code}))
    code = driver.last_code(email)
    return run(
        verify(
            {
                "mfa_token": mfa_token,
                "oob_code": enrolment.oob_code,
                "binding_code": code,
            }
        )
    )


@pytest.mark.parametrize("factor", ["otp", "sms", "voice", "email", "auth0"])
def test_each_factor_enrols_and_verifies(driver: Driver, factor: str) -> None:
    """enroll_authenticator's answer parses, and verify() confirms it with tokens."""
    email = driver.new_user(factor)
    mfa_token = driver.mfa_token(email)

    enrolment = _enrol(driver, factor, email, mfa_token)
    tokens = _confirm(driver, factor, email, mfa_token, enrolment)

    assert enrolment.authenticator_type == ("otp" if factor == "otp" else "oob")
    assert len(enrolment.recovery_codes) == 1
    if factor != "otp":
        assert enrolment.oob_channel == factor
        assert enrolment.binding_method == (None if factor == "auth0" else "prompt")
    assert tokens.token_type == "Bearer"
    assert tokens.access_token
    assert tokens.refresh_token
    assert tokens.id_token


@pytest.mark.parametrize("factor", ["otp", "sms", "voice", "email", "auth0"])
def test_each_factor_is_listed_and_challenged(driver: Driver, factor: str) -> None:
    """After enrolment, list_authenticators parses and challenge_authenticator works."""
    email = driver.new_user(factor)
    first = driver.mfa_token(email)
    enrolment = _enrol(driver, factor, email, first)
    _confirm(driver, factor, email, first, enrolment)
    mfa_token = driver.mfa_token(email)

    listed = run(driver.sdk.list_authenticators({"mfa_token": mfa_token}))
    challenge = run(
        driver.sdk.challenge_authenticator(
            {"mfa_token": mfa_token, "factor_type": factor}
        )
    )

    kinds = {item.id.split("|")[0] for item in listed}
    twins = {"otp": {"totp"}, "auth0": {"push", "totp"}, "email": {"email"}}
    assert kinds == {"recovery-code", *twins.get(factor, {"sms", "voice"})}
    assert all(item.active for item in listed)
    assert challenge.challenge_type == ("otp" if factor == "otp" else "oob")
    if factor in ("sms", "voice", "email"):
        assert challenge.binding_method == "prompt"
        code = driver.last_code(email)
        options = {"mfa_token": mfa_token, "oob_code": challenge.oob_code}
        tokens = run(driver.sdk.verify({**options, "binding_code": code}))
        assert tokens.access_token


def test_otp_and_recovery_code_verify_after_a_challenge(driver: Driver) -> None:
    """An otp challenge verifies with the current code, then with a recovery code."""
    email = driver.new_user("otp")
    first = driver.mfa_token(email)
    enrolment = _enrol(driver, "otp", email, first)
    _confirm(driver, "otp", email, first, enrolment)
    mfa_token = driver.mfa_token(email)

    run(
        driver.sdk.challenge_authenticator(
            {"mfa_token": mfa_token, "factor_type": "otp"}
        )
    )
    by_otp = run(
        driver.sdk.verify(
            {"mfa_token": mfa_token, "otp": driver.totp(enrolment.secret)}
        )
    )
    recovered = run(
        driver.sdk.verify(
            {
                "mfa_token": driver.mfa_token(email),
                "recovery_code": enrolment.recovery_codes[0],
            }
        )
    )
    with pytest.raises(MfaVerifyError) as wrong:
        run(driver.sdk.verify({"mfa_token": mfa_token, "otp": "000000"}))

    assert by_otp.access_token
    assert len(recovered.recovery_code or "") == 24
    assert recovered.recovery_code != enrolment.recovery_codes[0]
    assert str(wrong.value) == "Invalid otp_code."
