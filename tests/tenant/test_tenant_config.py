"""Tenant configuration: the demo defaults, YAML loading and its error messages."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import attrs
import pytest

from mfaflow.tenant import (
    CLIENT_CREDENTIALS,
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_SERVER_CLIENT_ID,
    MFA_OOB,
    MFA_OTP,
    MFA_RECOVERY_CODE,
    PASSWORD,
    PASSWORD_REALM,
    ClientConfig,
    Lifetimes,
    Limit,
    Limits,
    TenantConfig,
    TenantConfigError,
    UserConfig,
    default_config,
    load_config,
    parse_config,
    verify_password,
)
from mfaflow.tenant._secrets import DEFAULT_WORK_FACTOR

FULL = """\
name: acme
issuer: http://127.0.0.1:8777
connection: acme-users
factors: [otp, sms, push]
recovery_codes: false
password_work_factor: 10
step_up_on_refresh: always
state_file: state/tenant.db
lifetimes:
  access_token: 3600
  mfa_token: 300
refresh_tokens: {rotation: false, leeway: 10}
limits:
  otp_failures: {capacity: 3, refill_seconds: 60}
  push_polls: {capacity: 4, refill_seconds: 2.5}
  login_failures: 3
  login_lockout: 600
  logins: {capacity: 20, refill_seconds: 3}
clients:
  - client_id: app
    name: The app
    grant_types: [password, mfa, refresh_token]
    callbacks: [http://127.0.0.1/cb]
    web_origins: [https://app.acme.test/, http://localhost]
  - client_id: backend
    client_secret: s3cret-value
    grant_types: [client_credentials]
    api_access: {"https://api.acme.test/": [read]}
apis:
  - identifier: https://api.acme.test/
    scopes: [read, write]
    allow_offline_access: true
    token_lifetime: 600
users:
  - email: ann@acme.test
    password: ann-password-1
    mfa: always
    blocked: true
    password_leaked: true
    authenticators:
      - {type: otp, secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP}
      - {type: sms, phone_number: "+15550001111"}
"""


def test_default_config_is_the_documented_demo_tenant() -> None:
    """The demo tenant has its two clients, its API and an MFA user with no factors."""
    config = default_config()
    public, confidential = config.clients
    [user] = config.users

    assert public.client_id == DEMO_CLIENT_ID
    assert public.public
    assert public.grant_types == (
        PASSWORD,
        PASSWORD_REALM,
        MFA_OTP,
        MFA_OOB,
        MFA_RECOVERY_CODE,
        "refresh_token",
        "authorization_code",
    )
    assert public.callbacks == ("http://127.0.0.1/callback",)
    assert "http://127.0.0.1" in public.web_origins
    assert confidential.web_origins == ()
    assert confidential.client_id == DEMO_SERVER_CLIENT_ID
    assert not confidential.public
    assert confidential.allows(CLIENT_CREDENTIALS)
    assert config.apis[0].identifier == DEMO_API
    assert config.apis[0].allow_offline_access
    assert (user.email, user.mfa, user.authenticators) == (DEMO_EMAIL, "always", ())
    assert config.factors == ("otp", "sms", "voice", "email", "push")
    assert config.recovery_codes
    assert config.lifetimes.access_token == 86400
    assert config.lifetimes.id_token == 36000
    assert config.lifetimes.mfa_token == 600
    assert config.limits.otp_failures == Limit(10, 360)


def test_the_older_push_poll_interval_still_spaces_polls() -> None:
    """A configuration with push_poll_interval keeps its rule: one poll per interval."""
    config = parse_config("limits: {push_poll_interval: 8}\n")

    assert config.limits.push_poll_limit == Limit(1, 8.0)
    assert default_config().limits.push_poll_limit == Limit(12, 5)


def test_configured_passwords_are_only_hashes() -> None:
    """The configuration keeps a hash of the demo password, never the password."""
    config = default_config()
    user = config.users[0]

    assert verify_password(DEMO_PASSWORD, user.password_hash)
    assert not verify_password("wrong", user.password_hash)
    assert DEMO_PASSWORD not in repr(config)
    assert DEMO_PASSWORD not in str(attrs.asdict(config))


def test_yaml_configuration_is_read_into_objects(tmp_path: Path) -> None:
    """Every section of a YAML file lands in the configuration objects."""
    path = tmp_path / "tenant.yaml"
    path.write_text(FULL)

    config = load_config(path)

    app, backend = config.clients
    [api] = config.apis
    [ann] = config.users
    assert config.issuer == "http://127.0.0.1:8777/"
    assert config.connection == "acme-users"
    assert config.factors == ("otp", "sms", "push")
    assert not config.recovery_codes
    assert config.step_up_on_refresh == "always"
    assert config.state_file == str(tmp_path / "state" / "tenant.db")
    assert (config.lifetimes.access_token, config.lifetimes.mfa_token) == (3600, 300)
    assert (config.refresh_tokens.rotation, config.refresh_tokens.leeway) == (False, 10)
    assert config.limits.otp_failures == Limit(3, 60)
    assert config.limits.push_poll_limit == Limit(4, 2.5)
    assert (config.limits.login_failures, config.limits.login_lockout) == (3, 600)
    assert config.limits.logins == Limit(20, 3)
    assert app.web_origins == ("https://app.acme.test", "http://localhost")
    assert (ann.blocked, ann.password_leaked) == (True, True)
    assert app.allows(MFA_OTP)
    assert app.public
    assert backend.client_secret == "s3cret-value"
    assert backend.api_access == {"https://api.acme.test/": ("read",)}
    assert (api.scopes, api.token_lifetime) == (("read", "write"), 600)
    assert verify_password("ann-password-1", ann.password_hash)
    assert [a.type for a in ann.authenticators] == ["otp", "sms"]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        (
            "name: x\nflavour: y\n",
            2,
            1,
            "Unknown key 'flavour' in the configuration; allowed: issuer, name",
        ),
        (
            "recovery_codes: yes\n",
            1,
            17,
            "recovery_codes must be true or false; got 'yes'",
        ),
        ("clients:\n  - name: x\n", 2, 5, "clients[0] is missing client_id"),
        (
            "clients:\n  - client_id: a\n    grant_types: [client_credentials]\n",
            2,
            5,
            "is public",
        ),
        (
            "lifetimes: {access_token: 0}\n",
            1,
            27,
            "lifetimes.access_token must be at least 1; got 0.",
        ),
        (
            "password_work_factor: 40\n",
            1,
            23,
            "password_work_factor must be at most 20; got 40.",
        ),
        (
            "limits:\n  push_poll_interval: soon\n",
            2,
            23,
            "limits.push_poll_interval must be a number; got 'soon'.",
        ),
        (
            "limits:\n  logins: {capacity: 0, refill_seconds: 1}\n",
            2,
            22,
            "limits.logins.capacity must be at least 1; got 0.",
        ),
        (
            "clients:\n  - {client_id: a, client_secret: ''}\n",
            2,
            5,
            "Client 'a' has an empty client_secret, which no request can present; "
            "leave it out for a public client.",
        ),
        (
            "users:\n  - email: a@b.test\n    password: pw\n"
            "    authenticators: [{type: otp, secret: not-base32-at-all}]\n",
            4,
            22,
            "secret must be base32 (letters and the digits 2-7), at least 16 "
            "characters.",
        ),
        (
            "users:\n  - email: a@b.test\n    password: pw\n"
            "    authenticators: [{type: sms}]\n",
            4,
            22,
            "An authenticator of type 'sms' needs a phone_number.",
        ),
        (
            "factors: [otp]\nusers:\n  - email: a@b.test\n    password: pw\n"
            "    authenticators: [{type: push}]\n",
            1,
            1,
            "User 'a@b.test' has an authenticator of type 'push', but that factor "
            "is not enabled; enabled: otp.",
        ),
        (
            "clients:\n  - client_id: null\n",
            2,
            16,
            "clients[0].client_id must be a string; got nothing (null).",
        ),
        (
            "apis:\n  - identifier: x\n    allow_offline_access: 1\n",
            3,
            27,
            "apis[0].allow_offline_access must be true or false; got '1'.",
        ),
        (
            "users:\n  - email: a@b.test\n",
            2,
            5,
            "exactly one of password or password_hash",
        ),
        ("clients: {a: 1}\n", 1, 10, "clients must be a list"),
        ("name: [unclosed\n", 2, 1, "not valid YAML"),
        ("factors: [otp, fax]\n", 1, 1, "Unknown factor 'fax'"),
        (
            "clients:\n  - client_id: a\n    grant_types: [password, implicit]\n",
            3,
            29,
            "Unknown grant type 'implicit'; allowed: 'password', 'mfa', 'http",
        ),
        (
            "clients:\n  - client_id: a\n    web_origins: [https://a.test/app]\n",
            2,
            5,
            "Web origin 'https://a.test/app' is not an origin",
        ),
    ],
    ids=[
        "unknown-key",
        "yes-is-no-bool",
        "missing-key",
        "public-client-credentials",
        "zero-lifetime",
        "work-factor-too-high",
        "interval-not-a-number",
        "limit-capacity-zero",
        "empty-client-secret",
        "secret-not-base32",
        "sms-without-phone",
        "factor-not-enabled",
        "required-key-null",
        "api-flag-not-a-bool",
        "no-password",
        "not-a-list",
        "bad-yaml",
        "unknown-factor",
        "unknown-grant",
        "origin-with-path",
    ],
)
def test_configuration_errors_name_the_place(
    text: str, line: int, column: int, fragment: str
) -> None:
    """A broken file fails with a message naming file, line, column and problem."""
    with pytest.raises(TenantConfigError) as raised:
        parse_config(text, file="tenant.yaml")

    error = raised.value
    assert (error.file, error.line, error.column) == ("tenant.yaml", line, column)
    assert fragment in error.msg
    assert error.msg.count("'password'") <= 2  # the value, and once among the choices
    assert error.msg.endswith(".")
    assert str(error).startswith(f"tenant.yaml:{line}:{column}: ")


def _documented_yaml() -> str:
    """The YAML block of docs/tenant.md that shows every key and its default."""
    text = (Path(__file__).parents[2] / "docs" / "tenant.md").read_text()
    (block,) = re.findall(r"^```yaml\n(.*?)^```$", text, re.M | re.S)
    return block


def test_documented_configuration_reads_as_written() -> None:
    """docs/tenant.md's YAML of every key parses as written, to the defaults."""
    config = parse_config(_documented_yaml())

    defaults = TenantConfig()
    [client] = config.clients
    [api] = config.apis
    [user] = config.users
    for name in ("issuer", "name", "connection", "factors", "recovery_codes"):
        assert getattr(config, name) == getattr(defaults, name), name
    assert config.step_up_on_refresh == defaults.step_up_on_refresh
    assert config.password_work_factor == DEFAULT_WORK_FACTOR
    assert (config.signing_key_file, config.state_file) == (None, None)
    assert config.lifetimes == defaults.lifetimes
    assert config.refresh_tokens == defaults.refresh_tokens
    assert config.limits == defaults.limits
    assert (client.client_secret, client.public, client.web_origins) == (None, True, ())
    assert api.token_lifetime is None
    assert user.id == UserConfig(user.email, user.password_hash).id
    assert (user.recovery_code, user.blocked, user.password_leaked) == (
        None,
        False,
        False,
    )
    assert [a.type for a in user.authenticators] == ["otp", "sms", "email", "push"]


@pytest.mark.parametrize(
    "text",
    [
        "signing_key_file: null\nstate_file: ~\n",
        "limits: {push_poll_interval: null, logins: null, login_lockout: null}\n",
        "lifetimes: {access_token: null}\nrefresh_tokens: {leeway: null}\n",
        "clients:\n  - {client_id: a, client_secret: null, grant_types: null}\n",
        "apis:\n  - {identifier: https://a.test/, token_lifetime: null}\n",
    ],
    ids=["files", "limits", "lifetimes", "client", "api"],
)
def test_null_settings_take_their_defaults(text: str) -> None:
    """A setting written as null reads as if it were left out."""
    config = parse_config(text)

    assert (config.signing_key_file, config.state_file) == (None, None)
    assert config.limits == Limits()
    assert config.lifetimes.access_token == Lifetimes().access_token
    assert config.refresh_tokens.leeway == 0
    assert all(c.public and c.grant_types == () for c in config.clients)
    assert all(a.token_lifetime is None for a in config.apis)


def test_lower_case_totp_secrets_are_read_as_authenticator_apps_read_them() -> None:
    """A base32 secret in lower case is accepted, as apps accept it, in upper case."""
    config = parse_config(
        "users:\n  - email: a@b.test\n    password: pw\n"
        "    authenticators: [{type: otp, secret: jbswy3dpehpk3pxp}]\n"
    )

    [authenticator] = config.users[0].authenticators
    assert authenticator.secret == "JBSWY3DPEHPK3PXP"


def test_secret_values_stay_out_of_config_errors() -> None:
    """A malformed recovery code or TOTP secret is reported without its value."""
    text = textwrap.dedent(
        """\
        users:
          - email: a@b.test
            password: hunter2-hunter2
            recovery_code: not-a-valid-code-value
        """
    )

    with pytest.raises(TenantConfigError) as raised:
        parse_config(text)

    assert "not-a-valid-code-value" not in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert raised.value.line == 2


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """Loading a file that does not exist names the file, at its start."""
    with pytest.raises(TenantConfigError, match=r"nothing\.yaml") as raised:
        load_config(tmp_path / "nothing.yaml")

    assert (raised.value.line, raised.value.column) == (1, 1)


def test_empty_file_is_a_config_error() -> None:
    """An empty document is refused with a clear message, at line 1, column 1."""
    with pytest.raises(TenantConfigError, match="empty") as raised:
        parse_config("", file="tenant.yaml")

    assert str(raised.value).startswith("tenant.yaml:1:1: The file is empty")


@pytest.mark.parametrize(
    "text",
    [
        "name: " + "[" * 5000 + "]" * 5000,
        "name: " + "{a: " * 5000 + "1" + "}" * 5000,
        "name:\n" + "".join("  " * depth + "a:\n" for depth in range(1, 3000)),
    ],
    ids=["lists", "flow-mappings", "block-mappings"],
)
def test_deeply_nested_yaml_is_a_config_error(text: str) -> None:
    """Values nested thousands deep are refused with a message, not a RecursionError."""
    with pytest.raises(TenantConfigError) as raised:
        parse_config(text, file="tenant.yaml")

    assert str(raised.value) == (
        "tenant.yaml:1:1: The file nests values too deeply to be a tenant "
        "configuration."
    )


def test_python_objects_check_consistency() -> None:
    """Config objects built in Python refuse duplicates and dangling references."""
    client = ClientConfig("a", grant_types=("password",))
    user = UserConfig("x@y.test", default_config().users[0].password_hash)

    with pytest.raises(ValueError, match="Two clients share 'a'"):
        TenantConfig(clients=(client, client))
    with pytest.raises(ValueError, match="Two users share"):
        TenantConfig(users=(user, user))
    with pytest.raises(ValueError, match="not a configured API"):
        TenantConfig(
            clients=(
                ClientConfig(
                    "b",
                    client_secret="s",
                    grant_types=("client_credentials",),
                    api_access={"https://none.test/": ("x",)},
                ),
            )
        )
    with pytest.raises(ValueError, match="issuer must be an http or https URL"):
        TenantConfig(issuer="ftp://example.test")
    with pytest.raises(ValueError, match="not a hash"):
        UserConfig("x@y.test", "plain-text")
