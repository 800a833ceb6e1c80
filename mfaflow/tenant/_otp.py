"""TOTP (RFC 6238) as Auth0 uses it: SHA1, 6 digits, 30-second steps.

A code is accepted for the current step and the one before it (about a
minute), and only once: an authenticator remembers the last step it
accepted, and a code of that step or an earlier one is refused.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pyotp

from ._secrets import same

__all__ = ["PERIOD", "barcode_uri", "code_at", "matching_step", "new_secret", "step_at"]

PERIOD = 30
DIGITS = 6
_SECRET_LENGTH = 32


def new_secret() -> str:
    """Return a random base32 TOTP secret of 32 characters (160 bits)."""
    return str(pyotp.random_base32(length=_SECRET_LENGTH))


def step_at(when: float) -> int:
    """Return the TOTP time step containing ``when``."""
    return int(when) // PERIOD


def code_at(secret: str, when: float) -> str:
    """Return the code an authenticator app shows at ``when``."""
    return str(pyotp.TOTP(secret).generate_otp(step_at(when)))


def matching_step(secret: str, code: str, now: float, last_step: int) -> int | None:
    """Return the step ``code`` belongs to, if it is acceptable at ``now``.

    Acceptable: the code of the current or the previous step, newer than
    ``last_step`` (the last step this authenticator accepted).
    """
    totp = pyotp.TOTP(secret)
    current = step_at(now)
    for step in (current, current - 1):
        if step > last_step and same(code, str(totp.generate_otp(step))):
            return step
    return None


def barcode_uri(secret: str, tenant: str, user: str) -> str:
    """Return the ``otpauth://`` URI an authenticator app scans."""
    label = quote(f"{tenant}:{user}", safe=":@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": tenant,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD,
        }
    )
    return f"otpauth://totp/{label}?{query}"
