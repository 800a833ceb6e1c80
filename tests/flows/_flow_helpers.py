"""Helpers of the flow tests: the test tenant, a run driver, scripted servers.

:class:`Driver` starts and resumes runs of the shipped flows against a
served tenant, does what a person's phone or app would (read a code from
the tenant's outbox, compute a TOTP code), keeps every secret a run
handled, and checks that none of them reached the run's history, its
stored document or the logs (see :mod:`_runs`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from _runs import Harvesting, Runs

from mfaflow import (
    Client,
    Engine,
    MemoryStore,
    RequestsTransport,
    RunResult,
    Transport,
)
from mfaflow.tenant import (
    ApiConfig,
    AuthenticatorConfig,
    ClientConfig,
    Clock,
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


class Driver(Runs):
    """Drives runs of the shipped flows and remembers the secrets they handled.

    A driver for the embedded tenant reads the tenant's clock; one for a
    scripted server (no tenant) has a fixed clock of its own.
    """

    def __init__(
        self, engine: Engine, tenant: Tenant | None, clock: Clock | None = None
    ) -> None:
        super().__init__(engine, secrets={PASSWORD, SERVER_SECRET})
        self._tenant = tenant
        self.clock = clock if clock is not None else _tenant_clock(tenant)

    @property
    def tenant(self) -> Tenant:
        """The tenant the runs talk to (a scripted server has none)."""
        assert self._tenant is not None, "this driver talks to a scripted server"
        return self._tenant

    # -- waiting ------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock, which is the engine's (and the tenant's, if any)."""
        self.clock.advance(seconds)

    def after_wait(self, result: RunResult) -> RunResult:
        """Let the time a run waits for pass, then resume it."""
        assert result.resume_at is not None, result
        self.advance(max(0.0, result.resume_at - self.clock.now()))
        return self.seen(self.engine.resume(result.run_id))

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
        code = str(pyotp.TOTP(secret).at(int(self.clock.now())))
        self.secrets.add(code)
        return code

    def wrong_totp(self, secret: str = OTP_SECRET) -> str:
        """A six-digit code that is not the one the app shows now (nor the last)."""
        valid = {
            str(pyotp.TOTP(secret).at(int(self.clock.now()) + offset))
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


def mfa_token_of(driver: Driver, user: str) -> str:
    """The mfa_token of a password login of ``user``, as mfa-api-token keeps it."""
    result = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username=f"{user}@example.test",
        password=PASSWORD,
    )
    assert result.state == "got_mfa_token", result
    token: str = result.outputs["token"]
    return token


def mfa_api_refresh_token(driver: Driver, user: str) -> str:
    """The refresh token of a password login of ``user`` for the MFA API's
    audience, passing MFA with the authenticator app when the tenant asks."""
    result = driver.start(
        "password-grant",
        username=f"{user}@example.test",
        password=PASSWORD,
        audience=f"https://{driver.engine.client.issuer_host}/mfa/",
        scope="enroll read:authenticators offline_access",
    )
    if result.waiting_for:
        result = driver.resume(result, otp=driver.totp())
    assert result.outcome == "success", result
    token: str = result.outputs["refresh_token"]
    return token


def assert_unreachable(result: RunResult, issuer: str) -> None:
    """The run ended as unreachable after connections to ``issuer`` were refused."""
    assert (result.outcome, result.state) == ("failure", "unreachable")
    assert result.outputs["error"] == "transport.connect"
    assert result.message == (
        f"The tenant at {issuer} could not be reached or gave no usable answer "
        "(transport.connect)."
    )


def edges(result: RunResult) -> list[str]:
    """The transitions a run took, as ``flow:source --event--> state``."""
    return [
        f"{entry.flow}:{entry.source} --{entry.event}--> {entry.state}"
        for entry in result.history
        if entry.source is not None
    ]


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url``, one value each."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def make_driver(
    server: LoopbackServer,
    client_id: str = PUBLIC_CLIENT,
    client_secret: str | None = None,
    *,
    transport: Transport | None = None,
    **client: Any,
) -> Driver:
    """A driver whose engine talks to ``server`` as ``client_id``.

    Requests go over ``transport`` (by default, ``requests``).
    """
    engine = _engine(
        server.url, server.tenant.clock, client_id, client_secret, client, transport
    )
    return Driver(engine, server.tenant)


def scripted_driver(
    url: str,
    client_id: str = "scripted-client",
    client_secret: str | None = None,
    *,
    transport: Transport | None = None,
    **client: Any,
) -> Driver:
    """A driver whose engine talks to the scripted server at ``url``; a fixed clock.

    ``transport`` replaces the default :class:`RequestsTransport`.
    """
    clock = Clock.fixed(START)
    engine = _engine(url, clock, client_id, client_secret, client, transport)
    return Driver(engine, None, clock)


def _engine(
    issuer: str,
    clock: Clock,
    client_id: str,
    client_secret: str | None,
    client: Mapping[str, Any],
    transport: Transport | None = None,
) -> Engine:
    return Engine(
        Client(issuer, client_id, client_secret, **client),
        transport=Harvesting(transport or RequestsTransport()),
        store=MemoryStore(),
        clock=clock.now,
    )


def _tenant_clock(tenant: Tenant | None) -> Clock:
    assert tenant is not None, "a driver without a tenant needs a clock"
    return tenant.clock


#: An answer of a scripted server: the status, a JSON body (or raw bytes), and
#: optionally headers to add, their names spelled as they are to be sent.
Answer = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]


#: An answer a scripted server holds back for :attr:`Scripted.hold` seconds
#: before it answers 504: to a client that stops waiting sooner, the request
#: was received and its answer lost.
LOST: Answer = (504, b"held back")


#: The tokens a scripted server gives, long enough to be found in any text.
SCRIPTED_TOKENS = {
    "access_token": "at-scripted-5f2c81d0e4a7",
    "id_token": "id-scripted-0b9e44c13f6d",
    "refresh_token": "rt-scripted-c7d2a9e1b803",
    "token_type": "Bearer",
    "expires_in": 60,
    "scope": "openid offline_access",
}
#: The mfa_token of a scripted mfa_required answer.
SCRIPTED_MFA_TOKEN = "Fe26.2**scripted-mfa-token-77a3e0"
#: How a scripted server lists a user with one authenticator app.
SCRIPTED_APP = {"id": "totp|dev_scripted", "authenticator_type": "otp", "active": True}


def mfa_required(status: int = 403) -> Answer:
    """A scripted mfa_required answer, 403 as observed or 401 as Auth0's API says."""
    body = {
        "error": "mfa_required",
        "error_description": "Multifactor authentication required",
        "mfa_token": SCRIPTED_MFA_TOKEN,
    }
    return status, body


def scripted_mfa(status: int = 403, **answers: list[Answer]) -> dict[str, list[Answer]]:
    """Routes of a scripted Auth0 whose user must pass MFA with an authenticator app.

    The password and refresh_token grants answer mfa_required with
    ``status``; the user has one app, challenged as ``otp``; any code
    signs in. ``answers`` replace routes by a short name: ``password``,
    ``refresh_token``, ``list`` (``GET /mfa/authenticators``),
    ``challenge`` (``POST /mfa/challenge``), ``mfa_otp``, ``mfa_oob``,
    ``mfa_recovery_code`` (the grants of the token endpoint).
    """
    routes = {
        "POST /oauth/token password": [mfa_required(status)],
        "POST /oauth/token refresh_token": [mfa_required(status)],
        "GET /mfa/authenticators": [(200, [SCRIPTED_APP])],
        "POST /mfa/challenge": [(200, {"challenge_type": "otp"})],
        "POST /oauth/token mfa-otp": [(200, SCRIPTED_TOKENS)],
    }
    for name, listed in answers.items():
        routes[_ROUTE_NAMES[name]] = listed
    return routes


_ROUTE_NAMES = {
    "list": "GET /mfa/authenticators",
    "challenge": "POST /mfa/challenge",
    "mfa_otp": "POST /oauth/token mfa-otp",
    "mfa_oob": "POST /oauth/token mfa-oob",
    "mfa_recovery_code": "POST /oauth/token mfa-recovery-code",
    "refresh_token": "POST /oauth/token refresh_token",
    "password": "POST /oauth/token password",
}


class Scripted:
    """A WSGI app that gives fixed answers in turn and records the fields it was sent.

    ``answers`` is one list, answered to every request in turn, or a
    mapping from routes to lists. A route is ``"METHOD /path"``, or, to
    tell the token endpoint's grants apart, ``"POST /oauth/token GRANT"``
    with the last part of the grant type (``password``, ``mfa-oob``,
    ``refresh_token``). The last answer of each list repeats; a request
    that no route takes is answered 404 ``unscripted``. Discovery is
    answered 404, so flows fall back to Auth0's paths. :data:`LOST` is
    answered after ``hold`` seconds.
    """

    #: How long a :data:`LOST` answer is held back, in seconds.
    hold = 1.5

    def __init__(self, answers: list[Answer] | Mapping[str, list[Answer]]) -> None:
        if isinstance(answers, list):
            answers = {"*": answers}
        self.routes = {route: list(listed) for route, listed in answers.items()}
        #: The form or JSON fields of each request, in order.
        self.received: list[dict[str, Any]] = []
        #: The route of each request, such as ``"POST /oauth/token mfa-oob"``.
        self.requests: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path.startswith("/.well-known/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no discovery here"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        fields = _fields(environ["wsgi.input"].read(length).decode())
        grant = str(fields.get("grant_type", "")).rsplit("/", 1)[-1]
        route = f"{environ['REQUEST_METHOD']} {path}"
        self.received.append(fields)
        self.requests.append(f"{route} {grant}".rstrip())

        scripted = self._answer(route, grant)
        if scripted is LOST:
            time.sleep(self.hold)
        status, answer, *added = scripted
        if isinstance(answer, bytes):
            content, kind = answer, "text/html"
        else:
            content, kind = json.dumps(answer).encode(), "application/json"
        headers = [("Content-Type", kind)]
        for more in added:
            headers.extend(more.items())
        start_response(f"{status} Answer", headers)
        return [content]

    def _answer(self, route: str, grant: str) -> Answer:
        for key in (f"{route} {grant}", route, "*"):
            listed = self.routes.get(key)
            if listed:
                return listed.pop(0) if len(listed) > 1 else listed[0]
        unscripted = {"error": "unscripted", "error_description": f"No {route}."}
        return 404, unscripted


def _fields(body: str) -> dict[str, Any]:
    if body.startswith("{"):
        parsed: dict[str, Any] = json.loads(body)
        return parsed
    return {name: values[0] for name, values in parse_qs(body).items()}
