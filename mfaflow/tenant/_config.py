"""The tenant's configuration: attrs classes, a YAML loader, the demo tenant.

A configuration is immutable: :class:`TenantConfig` holds clients
(:class:`ClientConfig`), APIs (:class:`ApiConfig`), users
(:class:`UserConfig`, with optional pre-enrolled :class:`AuthenticatorConfig`),
the enabled factors, lifetimes, refresh-token policy and rate limits. Build
one in Python, load one from YAML with :func:`load_config` or
:func:`parse_config`, or start from :func:`default_config`, the demo tenant.

Choices where Auth0's sources leave room (see ``docs/tenant.md``):

- Grant names in ``grant_types`` may be Auth0's short names. ``password``
  turns on ``password`` and ``password-realm`` together and ``mfa`` the three
  MFA grants together, as the Auth0 Dashboard does; full grant-type URIs are
  accepted too.
- Users' passwords are hashed with scrypt as soon as they are read; the
  configuration object never holds a password.
- YAML is read with the safe loader, and only ``true`` and ``false`` are
  booleans (``yes``, ``no``, ``on`` and ``off`` stay strings and are refused
  where a boolean is expected). Unknown keys are errors that list the allowed
  ones; every error names the file, line and column.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

import attrs
import yaml
from attrs import field, frozen

from ._errors import TenantConfigError
from ._secrets import DEFAULT_WORK_FACTOR, hash_password, is_password_hash

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
    "PASSWORD",
    "PASSWORD_REALM",
    "REFRESH_TOKEN",
    "ApiConfig",
    "AuthenticatorConfig",
    "ClientConfig",
    "Lifetimes",
    "Limit",
    "Limits",
    "RefreshTokenPolicy",
    "TenantConfig",
    "UserConfig",
    "default_config",
    "load_config",
    "parse_config",
]

PASSWORD = "password"
PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
MFA_OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
MFA_RECOVERY_CODE = "http://auth0.com/oauth/grant-type/mfa-recovery-code"

#: Every grant type the tenant implements, by its wire name.
GRANT_TYPES = (
    PASSWORD,
    PASSWORD_REALM,
    AUTHORIZATION_CODE,
    REFRESH_TOKEN,
    CLIENT_CREDENTIALS,
    MFA_OTP,
    MFA_OOB,
    MFA_RECOVERY_CODE,
)
_GRANT_GROUPS = {
    "password": (PASSWORD, PASSWORD_REALM),
    "mfa": (MFA_OTP, MFA_OOB, MFA_RECOVERY_CODE),
}

#: The factors a tenant can enable, by channel name.
FACTORS = ("otp", "sms", "voice", "email", "push")

MfaPolicy = Literal["never", "always"]
_MFA_POLICIES = ("never", "always")

DEMO_CLIENT_ID = "mfaflow-demo"
DEMO_SERVER_CLIENT_ID = "mfaflow-demo-server"
#: The demo's confidential client secret; the demo tenant only listens on loopback.
DEMO_SERVER_CLIENT_SECRET = "mfaflow-demo-server-secret"
DEMO_API = "https://api.example.test/"
DEMO_EMAIL = "demo@example.test"
#: The demo user's password, printed by the demo and written in the docs.
DEMO_PASSWORD = "demo-password-1"

_PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")
_BASE32 = re.compile(r"[A-Z2-7]{16,}")
_RECOVERY_CODE = re.compile(r"[A-Z0-9]{24}")

T = TypeVar("T")


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _authenticators(
    values: Iterable[AuthenticatorConfig],
) -> tuple[AuthenticatorConfig, ...]:
    return tuple(values)


def _upper(value: str | None) -> str | None:
    # Authenticator apps read base32 secrets in either case; keep one.
    return None if value is None else value.upper()


def _clients(values: Iterable[ClientConfig]) -> tuple[ClientConfig, ...]:
    return tuple(values)


def _apis(values: Iterable[ApiConfig]) -> tuple[ApiConfig, ...]:
    return tuple(values)


def _users(values: Iterable[UserConfig]) -> tuple[UserConfig, ...]:
    return tuple(values)


def _expand_grants(names: Sequence[str]) -> tuple[str, ...]:
    expanded: list[str] = []
    for name in names:
        for grant in _GRANT_GROUPS.get(name, (name,)):
            if grant not in expanded:
                expanded.append(grant)
    return tuple(expanded)


def _unknown_grant(grant: str) -> str | None:
    """Return why ``grant`` is not a grant name, or ``None`` when it is one."""
    if grant in _GRANT_GROUPS or grant in GRANT_TYPES:
        return None
    names = dict.fromkeys((*_GRANT_GROUPS, *GRANT_TYPES))
    allowed = ", ".join(repr(name) for name in names)
    return f"Unknown grant type {grant!r}; allowed: {allowed}."


def _check_grants(_: object, __: object, grants: tuple[str, ...]) -> None:
    for grant in grants:
        problem = _unknown_grant(grant)
        if problem is not None:
            raise ValueError(problem)


def _check_choice(
    choices: Sequence[str],
) -> Callable[[object, Any, str], None]:
    def check(_: object, attribute: Any, value: str) -> None:
        if value not in choices:
            msg = (
                f"{attribute.name} must be one of "
                f"{', '.join(repr(c) for c in choices)}; got {value!r}."
            )
            raise ValueError(msg)

    return check


def _check_positive(_: object, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        msg = f"{attribute.name} must be a positive number; got {value!r}."
        raise ValueError(msg)


def _check_url(_: object, attribute: Any, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"{attribute.name} must be an http or https URL; got {value!r}."
        raise ValueError(msg)


def _origins(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(value.rstrip("/") for value in values)


def _check_origins(_: object, __: object, origins: tuple[str, ...]) -> None:
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            msg = (
                f"Web origin {origin!r} is not an origin; write a scheme and "
                "a host, and a port if needed, such as 'https://app.example.test'."
            )
            raise ValueError(msg)


def _issuer_url(value: str) -> str:
    return value if value.endswith("/") else value + "/"


def _frozen_scopes(value: Mapping[str, Sequence[str]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({key: tuple(scopes) for key, scopes in value.items()})


@frozen
class ClientConfig:
    """An application registered with the tenant.

    A client without ``client_secret`` is public (a native app or SPA): it
    authenticates with its ``client_id`` alone. ``grant_types`` takes wire
    names or the short names ``password`` and ``mfa`` (see the module
    docstring). ``callbacks`` are the allowed redirect URIs; loopback ones
    match any port (RFC 8252). ``web_origins`` are Auth0's "Allowed Web
    Origins": the browser origins (``https://app.example.test``) whose
    JavaScript may call the tenant's APIs (CORS); a loopback origin written
    without a port matches every port. ``api_access`` maps an API identifier
    to the scopes the client may get with ``client_credentials``.
    """

    client_id: str
    name: str = ""
    client_secret: str | None = field(default=None, repr=False)
    grant_types: tuple[str, ...] = field(
        default=(), converter=_expand_grants, validator=_check_grants
    )
    callbacks: tuple[str, ...] = field(default=(), converter=_strings)
    web_origins: tuple[str, ...] = field(
        default=(), converter=_origins, validator=_check_origins
    )
    api_access: Mapping[str, tuple[str, ...]] = field(
        factory=dict, converter=_frozen_scopes
    )

    def __attrs_post_init__(self) -> None:
        if not self.client_id:
            msg = "client_id must not be empty."
            raise ValueError(msg)
        if self.client_secret == "":
            msg = (
                f"Client {self.client_id!r} has an empty client_secret, which no "
                "request can present; leave it out for a public client."
            )
            raise ValueError(msg)
        if self.public and CLIENT_CREDENTIALS in self.grant_types:
            msg = (
                f"Client {self.client_id!r} is public (it has no client_secret), "
                "so it cannot use the client_credentials grant."
            )
            raise ValueError(msg)
        for callback in self.callbacks:
            parts = urlsplit(callback)
            if not parts.scheme or not (parts.netloc or parts.path):
                msg = (
                    f"Callback {callback!r} of client {self.client_id!r} is not a URL."
                )
                raise ValueError(msg)

    @property
    def public(self) -> bool:
        """Whether the client has no secret."""
        return self.client_secret is None

    def allows(self, grant_type: str) -> bool:
        """Whether the client may use ``grant_type`` (a wire name)."""
        return grant_type in self.grant_types


@frozen
class ApiConfig:
    """An API (resource server): the ``audience`` of its access tokens.

    ``token_lifetime`` overrides the tenant's access-token lifetime for this
    API; ``allow_offline_access`` lets clients get refresh tokens for it.
    """

    identifier: str
    name: str = ""
    scopes: tuple[str, ...] = field(default=(), converter=_strings)
    allow_offline_access: bool = False
    token_lifetime: int | None = None

    def __attrs_post_init__(self) -> None:
        if not self.identifier:
            msg = "An API's identifier must not be empty."
            raise ValueError(msg)
        if self.token_lifetime is not None and self.token_lifetime <= 0:
            msg = f"token_lifetime must be positive; got {self.token_lifetime!r}."
            raise ValueError(msg)


@frozen
class AuthenticatorConfig:
    """An authenticator a configured user has from the start (active).

    ``type`` is a factor name (``otp``, ``sms``, ``voice``, ``email``,
    ``push``). ``secret`` is the base32 TOTP secret of an ``otp``
    authenticator, in either case and kept in upper case (random when
    omitted); ``phone_number`` (E.164) is needed
    for ``sms`` and ``voice``; ``email`` defaults to the user's address. The
    twin rules apply: ``push`` also gets an ``otp`` twin, and ``sms`` and
    ``voice`` get each other when both are enabled.
    """

    type: str = field(validator=_check_choice(FACTORS))
    id: str | None = None
    secret: str | None = field(default=None, repr=False, converter=_upper)
    phone_number: str | None = None
    email: str | None = None
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.secret is not None and not _BASE32.fullmatch(self.secret):
            msg = (
                "secret must be base32 (letters and the digits 2-7), "
                "at least 16 characters."
            )
            raise ValueError(msg)
        if self.type in ("sms", "voice"):
            if self.phone_number is None:
                msg = f"An authenticator of type {self.type!r} needs a phone_number."
                raise ValueError(msg)
            if not _PHONE_NUMBER.fullmatch(self.phone_number):
                msg = (
                    "phone_number must be in E.164 form, such as '+15551234567'; "
                    f"got {self.phone_number!r}."
                )
                raise ValueError(msg)


def _default_user_id(user: UserConfig) -> str:
    # Stable across restarts, so a durable store finds the same user again.
    return "auth0|" + hashlib.sha256(user.email.lower().encode()).hexdigest()[:24]


def _check_password_hash(_: object, __: object, value: str) -> None:
    if not is_password_hash(value):
        msg = "password_hash is not a hash made by mfaflow.tenant.hash_password."
        raise ValueError(msg)


@frozen
class UserConfig:
    """A user of the tenant's database connection.

    ``password_hash`` comes from :func:`~mfaflow.tenant.hash_password` (or
    use :meth:`with_password`). ``mfa`` is ``"always"`` (every login asks
    for MFA, or for enrolment when the user has no authenticator) or
    ``"never"``. ``recovery_code`` pre-enrols a recovery code. ``blocked``
    refuses every login of the user (an administrator's block);
    ``password_leaked`` marks the password as found in a data breach, so
    logins with it are refused until it changes.
    """

    email: str
    password_hash: str = field(repr=False, validator=_check_password_hash)
    id: str = field(default=attrs.Factory(_default_user_id, takes_self=True))
    name: str = ""
    mfa: MfaPolicy = field(default="never", validator=_check_choice(_MFA_POLICIES))
    email_verified: bool = True
    authenticators: tuple[AuthenticatorConfig, ...] = field(
        default=(), converter=_authenticators
    )
    recovery_code: str | None = field(default=None, repr=False)
    blocked: bool = False
    password_leaked: bool = False

    def __attrs_post_init__(self) -> None:
        if "@" not in self.email:
            msg = f"email must be an email address; got {self.email!r}."
            raise ValueError(msg)
        for name, value in (("email", self.email), ("id", self.id)):
            # Both reach log lines, which a newline would split.
            if not value.isprintable():
                msg = f"{name} must not hold control characters; got {value!r}."
                raise ValueError(msg)
        if self.recovery_code is not None and not _RECOVERY_CODE.fullmatch(
            self.recovery_code
        ):
            msg = "recovery_code must be 24 upper-case letters and digits."
            raise ValueError(msg)

    @classmethod
    def with_password(
        cls,
        email: str,
        password: str,
        *,
        work_factor: int = DEFAULT_WORK_FACTOR,
        **fields: Any,
    ) -> UserConfig:
        """Return a user whose ``password_hash`` is a fresh hash of ``password``."""
        return cls(email, hash_password(password, work_factor=work_factor), **fields)


@frozen
class Lifetimes:
    """Lifetimes in seconds. The MFA-audience access token's 600 s is fixed."""

    access_token: int = field(default=86400, validator=_check_positive)
    id_token: int = field(default=36000, validator=_check_positive)
    mfa_token: int = field(default=600, validator=_check_positive)
    oob_code: int = field(default=300, validator=_check_positive)
    authorization_code: int = field(default=600, validator=_check_positive)
    refresh_token_absolute: int = field(default=2592000, validator=_check_positive)
    refresh_token_idle: int = field(default=2592000, validator=_check_positive)
    login_session: int = field(default=259200, validator=_check_positive)


@frozen
class RefreshTokenPolicy:
    """Refresh-token rotation, and its overlap period (``leeway``, seconds)."""

    rotation: bool = True
    leeway: int = 0

    def __attrs_post_init__(self) -> None:
        if self.leeway < 0:
            msg = f"leeway must not be negative; got {self.leeway!r}."
            raise ValueError(msg)


@frozen
class Limit:
    """A token bucket: ``capacity`` attempts, one more every ``refill_seconds``."""

    capacity: int = field(validator=_check_positive)
    refill_seconds: float = field(validator=_check_positive)


@frozen
class Limits:
    """Rate limits and attack protection.

    ``otp_failures`` counts a user's failed one-time codes, binding codes and
    recovery codes; when it is empty, verification answers 429
    ``too_many_attempts``. ``push_polls`` limits the polls of push
    challenges per ``mfa_token`` (Auth0's burst of 12 and 12 a minute): a
    poll that finds it empty answers ``slow_down`` and costs nothing.
    ``push_poll_interval``, when set, replaces it by the stricter rule of
    older configurations: one poll per that many seconds. The ``*_sends``
    buckets limit messages sent to a user by SMS or voice, email and push.

    ``login_failures`` consecutive wrong passwords block a user's logins
    for ``login_lockout`` seconds (brute-force protection; 0 turns it off).
    ``logins``, when set, limits the password logins per username.
    """

    otp_failures: Limit = Limit(10, 360)
    push_polls: Limit = Limit(12, 5)
    push_poll_interval: float | None = field(
        default=None,
        validator=attrs.validators.optional(_check_positive),
    )
    phone_sends: Limit = Limit(10, 3600)
    email_sends: Limit = Limit(20, 60)
    push_sends: Limit = Limit(5, 12)
    login_failures: int = field(default=10, validator=attrs.validators.ge(0))
    login_lockout: float = field(default=2592000.0, validator=_check_positive)
    logins: Limit | None = None

    @property
    def push_poll_limit(self) -> Limit:
        """The bucket that push polls draw from, per ``mfa_token``."""
        if self.push_poll_interval is not None:
            return Limit(1, self.push_poll_interval)
        return self.push_polls


def _unique(items: Sequence[T], key: Callable[[T], str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        value = key(item)
        if value in seen:
            msg = f"Two {what} share {value!r}; each must be unique."
            raise ValueError(msg)
        seen.add(value)


@frozen
class TenantConfig:
    """Everything that defines a tenant; see ``docs/tenant.md`` for each field.

    ``issuer`` is the base URL tokens name as ``iss`` (a trailing ``/`` is
    added); a served tenant usually replaces it once its port is known
    (:meth:`mfaflow.tenant.Tenant.with_issuer`). ``connection`` is the
    database connection's name, the ``realm`` of the password-realm grant.
    ``signing_key_file`` (PEM, RSA) keeps tokens verifiable across restarts;
    ``state_file`` makes users, authenticators and refresh tokens durable in
    SQLite.
    """

    issuer: str = field(
        default="http://127.0.0.1/", converter=_issuer_url, validator=_check_url
    )
    name: str = "mfaflow"
    connection: str = "Username-Password-Authentication"
    clients: tuple[ClientConfig, ...] = field(default=(), converter=_clients)
    apis: tuple[ApiConfig, ...] = field(default=(), converter=_apis)
    users: tuple[UserConfig, ...] = field(default=(), converter=_users)
    factors: tuple[str, ...] = field(default=FACTORS, converter=_strings)
    recovery_codes: bool = True
    lifetimes: Lifetimes = Lifetimes()
    refresh_tokens: RefreshTokenPolicy = RefreshTokenPolicy()
    limits: Limits = Limits()
    step_up_on_refresh: MfaPolicy = field(
        default="never", validator=_check_choice(_MFA_POLICIES)
    )
    password_work_factor: int = field(
        default=DEFAULT_WORK_FACTOR, validator=attrs.validators.in_(range(10, 21))
    )
    signing_key_file: str | None = None
    state_file: str | None = None

    def __attrs_post_init__(self) -> None:
        _unique(self.clients, lambda client: client.client_id, "clients")
        _unique(self.apis, lambda api: api.identifier, "APIs")
        _unique(self.users, lambda user: user.email.lower(), "users")
        _unique(self.users, lambda user: user.id, "users")
        for factor in self.factors:
            if factor not in FACTORS:
                msg = f"Unknown factor {factor!r}; allowed: {', '.join(FACTORS)}."
                raise ValueError(msg)
        for user in self.users:
            self._check_user(user)
        for client in self.clients:
            self._check_api_access(client)

    def _check_user(self, user: UserConfig) -> None:
        for authenticator in user.authenticators:
            if authenticator.type not in self.factors:
                msg = (
                    f"User {user.email!r} has an authenticator of type "
                    f"{authenticator.type!r}, "
                    "but that factor is not enabled; "
                    f"enabled: {', '.join(self.factors)}."
                )
                raise ValueError(msg)

    def _check_api_access(self, client: ClientConfig) -> None:
        for identifier, scopes in client.api_access.items():
            api = self.api(identifier)
            if api is None:
                msg = (
                    f"Client {client.client_id!r} has api_access to {identifier!r}, "
                    "which is not a configured API."
                )
                raise ValueError(msg)
            unknown = [scope for scope in scopes if scope not in api.scopes]
            if unknown:
                msg = (
                    f"Client {client.client_id!r} has api_access scopes {unknown!r} "
                    f"that API {identifier!r} does not define."
                )
                raise ValueError(msg)

    def client(self, client_id: str) -> ClientConfig | None:
        """Return the client with ``client_id``, or ``None``."""
        return next((c for c in self.clients if c.client_id == client_id), None)

    def api(self, identifier: str) -> ApiConfig | None:
        """Return the API whose identifier is ``identifier``, or ``None``."""
        return next((a for a in self.apis if a.identifier == identifier), None)


@functools.cache
def default_config() -> TenantConfig:
    """Return the demo tenant's configuration.

    - ``mfaflow-demo``: a public client with the password, MFA,
      refresh-token and authorization-code grants, calling back to
      ``http://127.0.0.1/callback`` (any loopback port), and allowing
      browser calls from loopback origins on any port (CORS);
    - ``mfaflow-demo-server``: a confidential client (secret
      :data:`DEMO_SERVER_CLIENT_SECRET`) with the same grants plus
      ``client_credentials`` for the demo API;
    - the API ``https://api.example.test/`` with the scope ``read:data``
      and offline access;
    - the user ``demo@example.test`` (password :data:`DEMO_PASSWORD`), with
      MFA always and no authenticator yet;
    - every factor enabled, and recovery codes on.
    """
    grants = ("password", "mfa", REFRESH_TOKEN, AUTHORIZATION_CODE)
    callbacks = ("http://127.0.0.1/callback",)
    loopback_origins = (
        "http://127.0.0.1",
        "http://localhost",
        "https://127.0.0.1",
        "https://localhost",
    )
    return TenantConfig(
        name="mfaflow",
        clients=(
            ClientConfig(
                DEMO_CLIENT_ID,
                name="mfaflow demo",
                grant_types=grants,
                callbacks=callbacks,
                web_origins=loopback_origins,
            ),
            ClientConfig(
                DEMO_SERVER_CLIENT_ID,
                name="mfaflow demo server",
                client_secret=DEMO_SERVER_CLIENT_SECRET,
                grant_types=(*grants, CLIENT_CREDENTIALS),
                callbacks=callbacks,
                api_access={DEMO_API: ("read:data",)},
            ),
        ),
        apis=(
            ApiConfig(
                DEMO_API,
                name="Example API",
                scopes=("read:data",),
                allow_offline_access=True,
            ),
        ),
        users=(
            UserConfig.with_password(
                DEMO_EMAIL, DEMO_PASSWORD, name="Demo User", mfa="always"
            ),
        ),
    )


# --- YAML -----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, reading only ``true`` and ``false`` as booleans."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|false)$"), list("tf"))

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_NULL_TAG = "tag:yaml.org,2002:null"


def load_config(path: str | Path) -> TenantConfig:
    """Read a tenant configuration from the YAML file at ``path``.

    Relative ``signing_key_file`` and ``state_file`` paths are taken from
    the file's directory.

    Raises:
        TenantConfigError: the file cannot be read or is not a valid
            configuration; the error names the file, line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc.reason
        msg = f"Cannot read the tenant configuration {str(path)!r}: {reason}."
        raise TenantConfigError(msg, str(path), 1, 1) from exc
    return parse_config(text, file=str(path), base_dir=path.parent)


def parse_config(
    text: str, *, file: str = "<string>", base_dir: str | Path | None = None
) -> TenantConfig:
    """Read a tenant configuration from YAML ``text``.

    Args:
        text: The YAML document.
        file: The name errors give for the document.
        base_dir: The directory relative paths in the document start from;
            ``None`` leaves them as written.

    Raises:
        TenantConfigError: the text is not a valid configuration.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = f"The file is not valid YAML: {exc.problem or exc.context}."
        raise TenantConfigError(msg, file, line, column) from exc
    except yaml.YAMLError as exc:
        msg = f"The file is not valid YAML: {exc}."
        raise TenantConfigError(msg, file, 1, 1) from exc
    except RecursionError:
        # PyYAML composes nested values recursively; no setting nests deeply.
        msg = "The file nests values too deeply to be a tenant configuration."
        raise TenantConfigError(msg, file, 1, 1) from None
    reader = _Reader(file, None if base_dir is None else Path(base_dir))
    if node is None:
        reader.fail_at(1, 1, "The file is empty; expected a mapping of settings.")
    return reader.tenant(node)


def _keys(cls: type) -> tuple[str, ...]:
    """Return the YAML keys of a config class: its field names."""
    return tuple(attrs.fields_dict(cls))


class _Reader:
    """Turns composed YAML nodes into config objects, failing with locations."""

    def __init__(self, file: str, base_dir: Path | None) -> None:
        self.file = file
        self.base_dir = base_dir

    # Sections ---------------------------------------------------------------

    def tenant(self, node: yaml.Node) -> TenantConfig:
        keys = self.mapping(node, "the configuration", _keys(TenantConfig))
        work_factor = DEFAULT_WORK_FACTOR
        if "password_work_factor" in keys:
            work_factor = self.integer(
                keys["password_work_factor"],
                "password_work_factor",
                minimum=10,
                maximum=20,
            )
        kwargs: dict[str, Any] = {"password_work_factor": work_factor}
        for key in ("name", "issuer", "connection", "step_up_on_refresh"):
            if key in keys:
                kwargs[key] = self.string(keys[key], key)
        for key in ("signing_key_file", "state_file"):
            if key in keys:
                kwargs[key] = self.path(keys[key], key)
        if "factors" in keys:
            kwargs["factors"] = self.strings(keys["factors"], "factors")
        if "recovery_codes" in keys:
            kwargs["recovery_codes"] = self.boolean(
                keys["recovery_codes"], "recovery_codes"
            )
        if "lifetimes" in keys:
            kwargs["lifetimes"] = self.lifetimes(keys["lifetimes"])
        if "refresh_tokens" in keys:
            kwargs["refresh_tokens"] = self.refresh_tokens(keys["refresh_tokens"])
        if "limits" in keys:
            kwargs["limits"] = self.limits(keys["limits"])
        sections: dict[str, Callable[[yaml.Node, str], Any]] = {
            "clients": self.client,
            "apis": self.api,
            "users": lambda item, where: self.user(item, where, work_factor),
        }
        for key, read in sections.items():
            if key in keys:
                kwargs[key] = tuple(
                    read(item, f"{key}[{index}]")
                    for index, item in enumerate(self.sequence(keys[key], key))
                )
        return self.build(node, TenantConfig, kwargs)

    def client(self, node: yaml.Node, where: str) -> ClientConfig:
        keys = self.mapping(node, where, _keys(ClientConfig), required=("client_id",))
        kwargs: dict[str, Any] = {}
        for key in ("client_id", "name", "client_secret"):
            if key in keys:
                kwargs[key] = self.string(keys[key], f"{where}.{key}")
        for key in ("callbacks", "web_origins"):
            if key in keys:
                kwargs[key] = self.strings(keys[key], f"{where}.{key}")
        if "grant_types" in keys:
            kwargs["grant_types"] = self.grants(keys["grant_types"], where)
        if "api_access" in keys:
            access = self.mapping(keys["api_access"], f"{where}.api_access", None)
            kwargs["api_access"] = {
                audience: self.strings(scopes, f"{where}.api_access[{audience!r}]")
                for audience, scopes in access.items()
            }
        return self.build(node, ClientConfig, kwargs)

    def grants(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        """Read ``grant_types``, locating an unknown grant at its own item."""
        grants: list[str] = []
        for item in self.sequence(node, f"{where}.grant_types"):
            grant = self.string(item, f"an item of {where}.grant_types")
            problem = _unknown_grant(grant)
            if problem is not None:
                self.fail(item, problem)
            grants.append(grant)
        return tuple(grants)

    def api(self, node: yaml.Node, where: str) -> ApiConfig:
        keys = self.mapping(node, where, _keys(ApiConfig), required=("identifier",))
        kwargs: dict[str, Any] = {}
        for key in ("identifier", "name"):
            if key in keys:
                kwargs[key] = self.string(keys[key], f"{where}.{key}")
        if "scopes" in keys:
            kwargs["scopes"] = self.strings(keys["scopes"], f"{where}.scopes")
        if "allow_offline_access" in keys:
            kwargs["allow_offline_access"] = self.boolean(
                keys["allow_offline_access"], f"{where}.allow_offline_access"
            )
        if "token_lifetime" in keys:
            kwargs["token_lifetime"] = self.integer(
                keys["token_lifetime"], f"{where}.token_lifetime", minimum=1
            )
        return self.build(node, ApiConfig, kwargs)

    def user(self, node: yaml.Node, where: str, work_factor: int) -> UserConfig:
        allowed = ("password", *_keys(UserConfig))
        keys = self.mapping(node, where, allowed, required=("email",))
        kwargs: dict[str, Any] = {}
        for key in ("email", "id", "name", "mfa", "recovery_code"):
            if key in keys:
                kwargs[key] = self.string(keys[key], f"{where}.{key}")
        for key in ("email_verified", "blocked", "password_leaked"):
            if key in keys:
                kwargs[key] = self.boolean(keys[key], f"{where}.{key}")
        kwargs["password_hash"] = self.password_hash(node, keys, where, work_factor)
        if "authenticators" in keys:
            items = self.sequence(keys["authenticators"], f"{where}.authenticators")
            kwargs["authenticators"] = tuple(
                self.authenticator(item, f"{where}.authenticators[{index}]")
                for index, item in enumerate(items)
            )
        return self.build(node, UserConfig, kwargs)

    def password_hash(
        self,
        node: yaml.Node,
        keys: Mapping[str, yaml.Node],
        where: str,
        work_factor: int,
    ) -> str:
        if ("password" in keys) == ("password_hash" in keys):
            self.fail(node, f"{where} needs exactly one of password or password_hash.")
        if "password_hash" in keys:
            return self.string(keys["password_hash"], f"{where}.password_hash")
        password = self.string(keys["password"], f"{where}.password")
        return hash_password(password, work_factor=work_factor)

    def authenticator(self, node: yaml.Node, where: str) -> AuthenticatorConfig:
        keys = self.mapping(node, where, _keys(AuthenticatorConfig), required=("type",))
        kwargs = {
            key: self.string(value, f"{where}.{key}") for key, value in keys.items()
        }
        return self.build(node, AuthenticatorConfig, kwargs)

    def lifetimes(self, node: yaml.Node) -> Lifetimes:
        keys = self.mapping(node, "lifetimes", _keys(Lifetimes))
        kwargs = {
            key: self.integer(value, f"lifetimes.{key}", minimum=1)
            for key, value in keys.items()
        }
        return self.build(node, Lifetimes, kwargs)

    def refresh_tokens(self, node: yaml.Node) -> RefreshTokenPolicy:
        keys = self.mapping(node, "refresh_tokens", _keys(RefreshTokenPolicy))
        kwargs: dict[str, Any] = {}
        if "rotation" in keys:
            kwargs["rotation"] = self.boolean(
                keys["rotation"], "refresh_tokens.rotation"
            )
        if "leeway" in keys:
            kwargs["leeway"] = self.integer(
                keys["leeway"], "refresh_tokens.leeway", minimum=0
            )
        return self.build(node, RefreshTokenPolicy, kwargs)

    def limits(self, node: yaml.Node) -> Limits:
        keys = self.mapping(node, "limits", _keys(Limits))
        kwargs: dict[str, Any] = {}
        for key, value in keys.items():
            where = f"limits.{key}"
            if key in ("push_poll_interval", "login_lockout"):
                kwargs[key] = self.number(value, where, minimum_exclusive=0)
            elif key == "login_failures":
                kwargs[key] = self.integer(value, where, minimum=0)
            else:
                kwargs[key] = self.limit(value, where)
        return self.build(node, Limits, kwargs)

    def limit(self, node: yaml.Node, where: str) -> Limit:
        keys = self.mapping(node, where, _keys(Limit), required=_keys(Limit))
        return self.build(
            node,
            Limit,
            {
                "capacity": self.integer(
                    keys["capacity"], f"{where}.capacity", minimum=1
                ),
                "refill_seconds": self.number(
                    keys["refill_seconds"],
                    f"{where}.refill_seconds",
                    minimum_exclusive=0,
                ),
            },
        )

    # Values -------------------------------------------------------------------

    def mapping(
        self,
        node: yaml.Node,
        where: str,
        allowed: Sequence[str] | None,
        required: Sequence[str] = (),
    ) -> dict[str, yaml.Node]:
        """Return a mapping node's values by key; ``allowed=None`` allows any key.

        With ``allowed`` (a mapping of settings), a setting written as
        ``null`` is left out, so that it takes its default, unless it is
        ``required``.
        """
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{where} must be a mapping; got {_kind(node)}.")
        keys: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.string(key_node, f"a key of {where}")
            if key in keys:
                self.fail(key_node, f"Key {key!r} appears twice in {where}.")
            if allowed is not None and key not in allowed:
                self.fail(
                    key_node,
                    f"Unknown key {key!r} in {where}; allowed: {', '.join(allowed)}.",
                )
            keys[key] = value_node
        if allowed is not None:
            keys = {
                key: value
                for key, value in keys.items()
                if key in required or not _is_null(value)
            }
        missing = [key for key in required if key not in keys]
        if missing:
            self.fail(node, f"{where} is missing {', '.join(missing)}.")
        return keys

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{where} must be a list; got {_kind(node)}.")
        return list(node.value)

    def string(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL_TAG:
            self.fail(node, f"{where} must be a string; got {_kind(node)}.")
        return str(node.value)

    def strings(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        return tuple(
            self.string(item, f"an item of {where}")
            for item in self.sequence(node, where)
        )

    def path(self, node: yaml.Node, where: str) -> str:
        value = Path(self.string(node, where)).expanduser()
        if self.base_dir is not None and not value.is_absolute():
            value = self.base_dir / value
        return str(value)

    def boolean(self, node: yaml.Node, where: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL_TAG:
            self.fail(node, f"{where} must be true or false; got {_kind(node)}.")
        return bool(node.value == "true")

    def integer(
        self, node: yaml.Node, where: str, *, minimum: int, maximum: int | None = None
    ) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT_TAG:
            self.fail(node, f"{where} must be a whole number; got {_kind(node)}.")
        value = int(str(node.value).replace("_", ""), 0)
        if value < minimum:
            self.fail(node, f"{where} must be at least {minimum}; got {value!r}.")
        if maximum is not None and value > maximum:
            self.fail(node, f"{where} must be at most {maximum}; got {value!r}.")
        return value

    def number(self, node: yaml.Node, where: str, *, minimum_exclusive: int) -> float:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (
            _INT_TAG,
            _FLOAT_TAG,
        ):
            self.fail(node, f"{where} must be a number; got {_kind(node)}.")
        value = float(str(node.value).replace("_", ""))
        if value <= minimum_exclusive:
            msg = f"{where} must be above {minimum_exclusive}; got {node.value}."
            self.fail(node, msg)
        return value

    def build(
        self, node: yaml.Node, factory: Callable[..., T], kwargs: Mapping[str, Any]
    ) -> T:
        """Call ``factory(**kwargs)``, locating its ``ValueError`` at ``node``."""
        try:
            return factory(**kwargs)
        except (ValueError, TypeError) as exc:
            self.fail(node, str(exc))

    def fail(self, node: yaml.Node, msg: str) -> NoReturn:
        self.fail_at(node.start_mark.line + 1, node.start_mark.column + 1, msg)

    def fail_at(self, line: int, column: int, msg: str) -> NoReturn:
        raise TenantConfigError(msg, self.file, line, column)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    return repr(node.value)
