"""Helpers of the flow tests: the test tenant, a run driver, scripted servers.

:class:`Driver` starts and resumes runs of the shipped flows against a
served tenant, does what a person's phone or app would (read a code from
the tenant's outbox, compute a TOTP code), keeps every secret a run
handled, and checks that none of them reached the run's history, its
stored document or the logs.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from mfaflow import (
    Client,
    Engine,
    MemoryStore,
    Request,
    RequestsTransport,
    Response,
    RunResult,
    Transport,
)
from mfaflow.tenant import (
    ApiConfig,
    AuthenticatorConfig,
    ClientConfig,
    Limits,
    LoopbackServer,
    Tenant,
    TenantConfig,
    UserConfig,
)

START = 1_750_000_123.0
PASSWORD = "correct horse battery staple"
API = "https://api.example.test/"
PUBLIC_CLIENT = "flows-public"
SERVER_CLIENT = "flows-server"
SERVER_SECRET = "flows-server-secret-5b1e9c"
#: A client that may only use the authorization code grant.
BROWSER_CLIENT = "flows-browser-only"
CALLBACK = "http://127.0.0.1/callback"
#: The TOTP secret of the pre-enrolled authenticator app of otp@example.test.
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#: The recovery code of recovery@example.test.
RECOVERY_CODE = "N3BGPZZWJ85JLCNPZBDW6QXC"
PHONE = "+15551234567"
#: Auth0's factor grants and the rest the flows use.
GRANTS = ("password", "mfa", "refresh_token", "authorization_code")
#: Keys under which stored secrets hold values worth searching for.
_SECRET_KEYS = frozenset(
    {
        "access_token",
        "id_token",
        "refresh_token",
        "mfa_token",
        "token",
        "password",
        "otp",
        "binding_code",
        "recovery_code",
        "recovery_codes",
        "barcode_uri",
        "secret",
        "oob_code",
        "code",
        "verifier",
        "callback_url",
        "client_secret",
        "code_verifier",
    }
)


def _users() -> tuple[UserConfig, ...]:
    def user(email: str, mfa: str = "always", **fields: Any) -> UserConfig:
        return UserConfig.with_password(
            email, PASSWORD, work_factor=10, mfa=mfa, **fields
        )

    return (
        user("plain@example.test", mfa="never"),
        user("new@example.test"),
        user(
            "otp@example.test",
            authenticators=[AuthenticatorConfig("otp", secret=OTP_SECRET)],
        ),
        user(
            "sms@example.test",
            authenticators=[AuthenticatorConfig("sms", phone_number=PHONE)],
        ),
        user(
            "voice@example.test",
            authenticators=[AuthenticatorConfig("voice", phone_number=PHONE)],
        ),
        user("email@example.test", authenticators=[AuthenticatorConfig("email")]),
        user("push@example.test", authenticators=[AuthenticatorConfig("push")]),
        user(
            "many@example.test",
            authenticators=[AuthenticatorConfig("push")],
            recovery_code=RECOVERY_CODE,
        ),
        user(
            "recovery@example.test",
            authenticators=[AuthenticatorConfig("otp", secret=OTP_SECRET)],
            recovery_code=RECOVERY_CODE,
        ),
    )


@functools.cache
def base_config() -> TenantConfig:
    """The tenant the flow tests run against (password hashes made once)."""
    return TenantConfig(
        name="flows",
        clients=(
            ClientConfig(PUBLIC_CLIENT, grant_types=GRANTS, callbacks=(CALLBACK,)),
            ClientConfig(
                SERVER_CLIENT,
                client_secret=SERVER_SECRET,
                grant_types=GRANTS,
                callbacks=(CALLBACK,),
            ),
            ClientConfig(
                BROWSER_CLIENT,
                grant_types=("authorization_code",),
                callbacks=(CALLBACK,),
            ),
        ),
        apis=(ApiConfig(API, scopes=("read:data",), allow_offline_access=True),),
        users=_users(),
        password_work_factor=10,
        limits=Limits(push_poll_interval=5.0),
    )


class Driver:
    """Drives runs of the shipped flows and remembers the secrets they handled."""

    def __init__(self, engine: Engine, tenant: Tenant) -> None:
        self.engine = engine
        self.tenant = tenant
        self.secrets: set[str] = {PASSWORD, SERVER_SECRET}
        self.run_ids: list[str] = []
        #: The stored document of each run after every start and resume.
        self.documents: list[str] = []
        if isinstance(engine.transport, Harvesting):
            # Whatever secret crossed the wire counts, stored or not.
            self.secrets = engine.transport.secrets
            self.secrets |= {PASSWORD, SERVER_SECRET}

    # -- driving --------------------------------------------------------

    def start(self, flow: str, **inputs: Any) -> RunResult:
        """Start ``flow`` with ``inputs``."""
        self._remember(inputs)
        result = self.engine.start(flow, inputs)
        self.run_ids.append(result.run_id)
        return self._seen(result)

    def resume(self, result: RunResult, **inputs: Any) -> RunResult:
        """Give a waiting run the inputs it asked for."""
        self._remember(inputs)
        return self._seen(self.engine.resume(result.run_id, inputs))

    def advance(self, seconds: float) -> None:
        """Move the tenant's clock, which is also the engine's."""
        self.tenant.clock.advance(seconds)

    def after_wait(self, result: RunResult) -> RunResult:
        """Let the time a run waits for pass, then resume it."""
        assert result.resume_at is not None, result
        self.advance(max(0.0, result.resume_at - self.tenant.clock.now()))
        return self._seen(self.engine.resume(result.run_id))

    def until_input(self, result: RunResult, limit: int = 10) -> RunResult:
        """Let every wait for time pass until the run ends or asks for input."""
        for _ in range(limit):
            if result.ended or result.waiting_for:
                return result
            result = self.after_wait(result)
        raise AssertionError(f"The run still waits after {limit} waits: {result!r}")

    # -- what a person or a device does -----------------------------------

    def totp(self, secret: str = OTP_SECRET) -> str:
        """The code an authenticator app with ``secret`` shows now."""
        code = str(pyotp.TOTP(secret).at(int(self.tenant.clock.now())))
        self.secrets.add(code)
        return code

    def wrong_totp(self, secret: str = OTP_SECRET) -> str:
        """A six-digit code that is not the one the app shows now (nor the last)."""
        valid = {
            str(pyotp.TOTP(secret).at(int(self.tenant.clock.now()) + offset))
            for offset in (-30, 0, 30)
        }
        return next(
            f"{n:06d}" for n in range(123456, 999999) if f"{n:06d}" not in valid
        )

    def last_code(self, user: str, channel: str | None = None) -> str:
        """The newest code the tenant sent to ``user``, read from its outbox."""
        code = self.tenant.last_code(user, channel)
        self.secrets.add(code)
        return code

    def barcode_secret(self, result: RunResult) -> str:
        """The TOTP secret of the otpauth:// URI a waiting run gives as its link."""
        uri = self.barcode_uri(result)
        secret = pyotp.parse_uri(uri).secret
        self.secrets.add(secret)
        return str(secret)

    def barcode_uri(self, result: RunResult) -> str:
        """The otpauth:// URI a waiting run gives as its link, a secret one."""
        (request,) = result.waiting_for
        assert request.link is not None
        assert request.link.startswith("otpauth://")
        assert request.link_is_secret
        self.secrets.add(request.link)
        return request.link

    # -- checks -------------------------------------------------------------

    def assert_no_secret_leaked(self, caplog: pytest.LogCaptureFixture) -> None:
        """No secret a run handled is in its history, stored document or the logs."""
        values = set(self.secrets)
        places: dict[str, str] = {"logs": caplog.text}
        for index, document in enumerate(self.documents):
            places[f"stored document {index}"] = document
        for run_id in self.run_ids:
            stored = self.engine.store.load(run_id)
            values |= _secret_values(stored.secrets)
            result = self.engine.get(run_id)
            values |= {
                str(result.outputs[name])
                for name in result.secret_outputs
                if result.outputs.get(name)
            }
            places[f"document of {run_id}"] = json.dumps(stored.document)
            places[f"history of {run_id}"] = repr(result.history) + repr(result)
            places[f"message of {run_id}"] = f"{result.message} {result.error}"
        values = {value for value in values if value}
        assert values, "the check found no secret to look for"
        for where, text in places.items():
            for value in values:
                assert not _contains(text, value), f"a secret is in the {where}"

    def _remember(self, inputs: Mapping[str, Any]) -> None:
        for name, value in inputs.items():
            if name in _SECRET_KEYS and isinstance(value, str):
                self.secrets.add(value)

    def _seen(self, result: RunResult) -> RunResult:
        """Keep the secrets of ``result`` and a copy of the run's stored document."""
        for name in result.secret_outputs:
            value = result.outputs.get(name)
            if isinstance(value, str):
                self.secrets.add(value)
            elif isinstance(value, list):
                self.secrets.update(str(item) for item in value)
        stored = self.engine.store.load(result.run_id)
        self.secrets |= _secret_values(stored.secrets)
        self.documents.append(json.dumps(stored.document))
        return result


class Harvesting:
    """A transport that notes every secret value it sends or receives.

    Form fields, JSON fields and Bearer tokens under secret-looking names
    (``password``, ``otp``, ``access_token``, ``mfa_token``, ``oob_code``,
    ``barcode_uri``, ``recovery_codes``, ...) go to :attr:`secrets`, so a
    test can check that none of them was stored or logged in the open.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.secrets: set[str] = set()

    def send(self, request: Request) -> Response:
        authorization = request.header("Authorization") or ""
        if authorization.startswith("Bearer "):
            self.secrets.add(authorization.removeprefix("Bearer "))
        self.secrets |= _body_secrets(request.body or b"")
        response = self.inner.send(request)
        self.secrets |= _body_secrets(response.body)
        return response


def _body_secrets(body: bytes) -> set[str]:
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = {name: values for name, values in parse_qs(text).items()}
    return _secret_values(parsed)


def _secret_values(value: Any, key: str = "") -> set[str]:
    """The strings under secret-looking keys, anywhere in a stored run's secrets."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for name, item in value.items():
            found |= _secret_values(item, str(name))
    elif isinstance(value, list):
        for item in value:
            found |= _secret_values(item, key)
    elif isinstance(value, str) and key in _SECRET_KEYS:
        found.add(value)
    return found


def _contains(text: str, value: str) -> bool:
    if len(value) <= 8 and value.isdigit():
        # Short codes only count as whole numbers, not inside timestamps.
        return re.search(rf"(?<!\d){re.escape(value)}(?!\d)", text) is not None
    return value in text


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url``, one value each."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def make_driver(
    server: LoopbackServer,
    client_id: str = PUBLIC_CLIENT,
    client_secret: str | None = None,
    **client: Any,
) -> Driver:
    """A driver whose engine talks to ``server`` as ``client_id``."""
    engine = Engine(
        Client(server.url, client_id, client_secret, **client),
        transport=Harvesting(RequestsTransport()),
        store=MemoryStore(),
        clock=server.tenant.clock.now,
    )
    return Driver(engine, server.tenant)


class Scripted:
    """A WSGI app that gives fixed answers in turn and records the forms it was sent.

    The last answer repeats. Discovery is answered 404, so flows fall back
    to Auth0's paths.
    """

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        self.answers = list(answers)
        self.received: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"].startswith("/.well-known/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no discovery here"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode()
        self.received.append(
            {name: values[0] for name, values in parse_qs(body).items()}
        )
        status, answer = (
            self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        )
        if isinstance(answer, bytes):
            content, kind = answer, "text/html"
        else:
            content, kind = json.dumps(answer).encode(), "application/json"
        start_response(f"{status} Answer", [("Content-Type", kind)])
        return [content]


class FakeClock:
    """A clock that moves only when told, for engines without a tenant."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
