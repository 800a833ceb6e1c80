"""What the examples' tests share: the tenant's users and where the examples are.

The tenant runs on the system clock, because the examples run in other
processes (a subprocess, a browser) that read real time; its users have
their authenticators enrolled from the start (but for one who has none).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import attrs

from mfaflow.tenant import (
    AuthenticatorConfig,
    TenantConfig,
    UserConfig,
    default_config,
)

#: The folder of the examples.
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
PASSWORD = "examples-password-7c1d"
OTP_USER = "otp@example.test"
#: A user with push (and its one-time-code twin) enrolled.
PUSH_USER = "push@example.test"
#: A user with no authenticator yet: signing in enrols one.
NEW_USER = "new@example.test"
#: The TOTP secret of the authenticator app otp@example.test has enrolled.
OTP_SECRET = "KRSXG5CTMVRXEZLUKN2XAZLDOJSXIZLU"

#: Shapes of tokens, for output whose exact tokens a test cannot know.
TOKEN_SHAPES = (
    re.compile(r"eyJ[\w-]{8,}\.[\w-]+"),  # a JWT
    re.compile(r"Fe26\.2\*\*"),  # an mfa_token
    re.compile(r"[\w-]{40,}"),  # an opaque token
)


@functools.cache
def tenant_config() -> TenantConfig:
    """The demo tenant, with the examples' users instead of the demo user."""

    def user(email: str, *factors: AuthenticatorConfig) -> UserConfig:
        return UserConfig.with_password(
            email,
            PASSWORD,
            work_factor=10,
            mfa="always",
            name=email.split("@")[0].title(),
            authenticators=list(factors),
        )

    return attrs.evolve(
        default_config(),
        users=(
            user(OTP_USER, AuthenticatorConfig("otp", secret=OTP_SECRET)),
            user(PUSH_USER, AuthenticatorConfig("push")),
            user(NEW_USER),
        ),
        password_work_factor=10,
    )
