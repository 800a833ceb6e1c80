"""Helpers for the embedded tenant's tests: an HTTP client with the common steps."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pyotp
import requests

from mfaflow.tenant import (
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    MFA_OTP,
    PASSWORD_REALM,
    LoopbackServer,
)

#: scrypt's lowest work factor: the tests' password hashes, cheap to check.
FAST_WORK_FACTOR = 10


def wrong_code(secret: str, now: float) -> str:
    """Return a six-digit code that is not valid for ``secret`` around ``now``."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(now + offset) for offset in (-60, -30, 0, 30)}
    return next(code for code in ("000000", "111111", "222222") if code not in valid)


#: ``serve(config, **tenant_options)``: start another tenant; yields an :class:`Api`.
Serve = Callable[..., AbstractContextManager["Api"]]


class Api:
    """Talks HTTP to a served tenant, with helpers for the common steps."""

    def __init__(self, server: LoopbackServer) -> None:
        self.url = server.url
        self.tenant = server.tenant
        self.session = requests.Session()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.close()

    # Raw calls -----------------------------------------------------------------

    def token(self, **fields: Any) -> requests.Response:
        """POST a form to /oauth/token (``client_id`` defaults to the demo's)."""
        fields.setdefault("client_id", DEMO_CLIENT_ID)
        return self.session.post(self.url + "oauth/token", data=fields)

    def token_json(self, **fields: Any) -> requests.Response:
        """POST JSON to /oauth/token (``client_id`` defaults to the demo's)."""
        fields.setdefault("client_id", DEMO_CLIENT_ID)
        return self.session.post(self.url + "oauth/token", json=fields)

    def post(
        self, path: str, body: dict[str, Any] | None = None, *, token: str | None = None
    ) -> requests.Response:
        """POST JSON to ``path``, with a Bearer ``token`` if given."""
        return self.session.post(self.url + path, json=body or {}, headers=_auth(token))

    def get(self, path: str, *, token: str | None = None) -> requests.Response:
        """GET ``path``, with a Bearer ``token`` if given."""
        return self.session.get(self.url + path, headers=_auth(token))

    def delete(self, path: str, *, token: str | None = None) -> requests.Response:
        """DELETE ``path``, with a Bearer ``token`` if given."""
        return self.session.delete(self.url + path, headers=_auth(token))

    # Steps ---------------------------------------------------------------------

    def login(self, **fields: Any) -> requests.Response:
        """Log the demo user in with the password-realm grant."""
        defaults = {
            "grant_type": PASSWORD_REALM,
            "realm": "Username-Password-Authentication",
            "username": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "scope": "openid profile email offline_access",
            "audience": DEMO_API,
        }
        return self.token(**{**defaults, **fields})

    def mfa_token(self, **fields: Any) -> str:
        """Log in and return the ``mfa_token`` of the ``mfa_required`` answer."""
        answer = self.login(**fields)
        assert answer.status_code == 403, answer.text
        token: str = answer.json()["mfa_token"]
        return token

    def associate(self, mfa_token: str, **body: Any) -> dict[str, Any]:
        """Enrol an authenticator with ``body``; return the answer's body."""
        answer = self.post("mfa/associate", body, token=mfa_token)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def associate_sms(self, token: str, phone_number: str) -> dict[str, Any]:
        """Enrol SMS to ``phone_number``; return the answer's body (its oob_code)."""
        return self.associate(
            token,
            authenticator_types=["oob"],
            oob_channels=["sms"],
            phone_number=phone_number,
        )

    def totp(self, secret: str) -> str:
        """Return the current code for ``secret``, as an authenticator app would."""
        return pyotp.TOTP(secret).at(self.tenant.clock.now())

    def next_totp(self, secret: str) -> str:
        """Move the clock to the next TOTP step and return its code."""
        self.tenant.clock.advance(30)
        return self.totp(secret)

    def verify_otp(self, mfa_token: str, otp: str, **fields: Any) -> requests.Response:
        """Run the mfa-otp grant."""
        return self.token(grant_type=MFA_OTP, mfa_token=mfa_token, otp=otp, **fields)

    def enrol_otp(self) -> tuple[str, dict[str, Any]]:
        """Enrol and confirm OTP for the demo user; return the secret and the tokens."""
        mfa_token = self.mfa_token()
        enrolment = self.associate(mfa_token, authenticator_types=["otp"])
        answer = self.verify_otp(mfa_token, self.totp(enrolment["secret"]))
        assert answer.status_code == 200, answer.text
        return enrolment["secret"], answer.json()

    def mfa_api_token(self, secret: str, scope: str = "") -> dict[str, Any]:
        """Get an MFA-audience access token for an enrolled demo user (passing OTP)."""
        mfa_token = self.mfa_token(audience=self.tenant.mfa_audience, scope=scope)
        answer = self.verify_otp(mfa_token, self.next_totp(secret))
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens


def _auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def error_of(answer: requests.Response) -> tuple[int, str, str]:
    """Return the status, ``error`` and ``error_description`` of an error answer."""
    body = answer.json()
    return answer.status_code, body["error"], body["error_description"]
