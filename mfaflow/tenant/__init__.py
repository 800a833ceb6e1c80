"""The embedded tenant: an Auth0-compatible authorization server as a WSGI app.

Build one from a configuration, serve it, and drive it from tests::

    from mfaflow.tenant import Clock, LoopbackServer, Tenant, default_config

    tenant = Tenant(default_config(), clock=Clock.fixed(), control=True)
    with LoopbackServer(tenant) as server:
        ...  # call server.url + "oauth/token"; read server.tenant.outbox

See ``docs/tenant.md`` for what is modelled, the choices made where Auth0's
sources disagree, the configuration format and the control surface.
"""

from ._clock import Clock
from ._config import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    FACTORS,
    GRANT_TYPES,
    MFA_OOB,
    MFA_OTP,
    MFA_RECOVERY_CODE,
    PASSWORD,
    PASSWORD_REALM,
    REFRESH_TOKEN,
    ApiConfig,
    AuthenticatorConfig,
    ClientConfig,
    Lifetimes,
    Limit,
    Limits,
    RefreshTokenPolicy,
    TenantConfig,
    UserConfig,
    default_config,
    load_config,
    parse_config,
)
from ._errors import OAuthError, TenantConfigError, TenantSetupError
from ._factors import Challenge, Enrolment
from ._issuing import MFA_SCOPES
from ._secrets import hash_password, verify_password
from ._server import LoopbackServer
from ._state import (
    Authenticator,
    AuthorizationCode,
    LoginSession,
    MemoryStore,
    Message,
    MfaTransaction,
    OobChallenge,
    PushRequest,
    RefreshToken,
    SQLiteStore,
    StateStore,
    TransientState,
    User,
)
from ._tenant import Outbox, Tenant
from ._tls import default_tls_directory, loopback_tls, self_signed, server_context
from ._tokens import SigningKey

__all__ = [
    "AUTHORIZATION_CODE",
    "CLIENT_CREDENTIALS",
    "DEMO_API",
    "DEMO_CLIENT_ID",
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "DEMO_SERVER_CLIENT_ID",
    "DEMO_SERVER_CLIENT_SECRET",
    "FACTORS",
    "GRANT_TYPES",
    "MFA_OOB",
    "MFA_OTP",
    "MFA_RECOVERY_CODE",
    "MFA_SCOPES",
    "PASSWORD",
    "PASSWORD_REALM",
    "REFRESH_TOKEN",
    "ApiConfig",
    "Authenticator",
    "AuthenticatorConfig",
    "AuthorizationCode",
    "Challenge",
    "ClientConfig",
    "Clock",
    "Enrolment",
    "Lifetimes",
    "Limit",
    "Limits",
    "LoginSession",
    "LoopbackServer",
    "MemoryStore",
    "Message",
    "MfaTransaction",
    "OAuthError",
    "OobChallenge",
    "Outbox",
    "PushRequest",
    "RefreshToken",
    "RefreshTokenPolicy",
    "SQLiteStore",
    "SigningKey",
    "StateStore",
    "Tenant",
    "TenantConfig",
    "TenantConfigError",
    "TenantSetupError",
    "TransientState",
    "User",
    "UserConfig",
    "default_config",
    "default_tls_directory",
    "hash_password",
    "load_config",
    "loopback_tls",
    "parse_config",
    "self_signed",
    "server_context",
    "verify_password",
]
