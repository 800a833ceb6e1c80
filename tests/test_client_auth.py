"""Client authentication: ``client_auth`` calls, HTTP Basic or the body, on the wire."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from _servers import serve_wsgi
from click.testing import CliRunner

from mfaflow import (
    Client,
    DefinitionErrors,
    Engine,
    MemoryStore,
    MockTransport,
    Request,
    RequestsTransport,
    Response,
    RunError,
    parse_flow,
)
from mfaflow._cli import cli
from mfaflow.tenant import (
    ApiConfig,
    AuthenticatorConfig,
    ClientConfig,
    Clock,
    Tenant,
    TenantConfig,
    UserConfig,
)

ISSUER = "https://tenant.example.test/"
CLIENT_ID = "server app"
#: A secret with characters that form-urlencoding changes (RFC 6749 2.3.1).
SECRET = "p:ss w/rd+é&=1"
PUBLIC_ID = "public-app"
PASSWORD = "correct horse battery staple"
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
API = "https://api.example.test/"
START = 1_750_000_123.0


def basic(client_id: str, secret: str) -> str:
    """The Authorization header RFC 6749 2.3.1 asks for, worked out by hand."""
    encode = {
        " ": "+",
        ":": "%3A",
        "/": "%2F",
        "+": "%2B",
        "é": "%C3%A9",
        "&": "%26",
        "=": "%3D",
    }
    pair = "".join(encode.get(c, c) for c in client_id) + ":"
    pair += "".join(encode.get(c, c) for c in secret)
    return "Basic " + base64.b64encode(pair.encode()).decode()


# -- the request the engine builds --------------------------------------------

FLOW = """
mfaflow: 1
name: calls
inputs:
  which: {}
initial: route
states:
  route:
    on:
      ok:
        - {to: token, when: {equals: ['${inputs.which}', token]}}
        - {to: challenge, when: {equals: ['${inputs.which}', challenge]}}
        - {to: associate}
  token:
    call:
      method: POST
      url: /oauth/token
      client_auth: true
      form: {grant_type: password, username: ann}
    on: {ok: done}
  challenge:
    call:
      method: POST
      url: /mfa/challenge
      client_auth: true
      json: {client_id: '${client.client_id}', mfa_token: tok}
    on: {ok: done}
  associate:
    call:
      method: POST
      url: /mfa/associate
      bearer: the-mfa-token
      client_auth: true
      json: {authenticator_types: [otp]}
    on: {ok: done}
  done: {final: true}
"""


def sent(client: Client, which: str) -> Request:
    """The request the state ``which`` of FLOW sends for ``client``."""
    seen: list[Request] = []

    def handle(request: Request) -> Response:
        seen.append(request)
        return Response(200, {"Content-Type": "application/json"}, b"{}")

    engine = Engine(client, transport=MockTransport(handle))
    engine.start(parse_flow(FLOW), {"which": which})
    (request,) = [r for r in seen if "well-known" not in r.url]
    return request


def form_of(request: Request) -> dict[str, str]:
    """The form fields of a request, one value each."""
    return {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}


def test_basic_puts_the_form_urlencoded_id_and_secret_in_the_header():
    """With basic, the token call has the Basic header and neither id nor secret
    in its body."""
    client = Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic")

    request = sent(client, "token")

    assert request.header("Authorization") == basic(CLIENT_ID, SECRET)
    assert form_of(request) == {"grant_type": "password", "username": "ann"}


def test_post_puts_the_id_and_secret_in_the_form():
    """By default a confidential client sends its id and secret in the body."""
    request = sent(Client(ISSUER, CLIENT_ID, SECRET), "token")

    assert request.header("Authorization") is None
    assert form_of(request) == {
        "grant_type": "password",
        "username": "ann",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


@pytest.mark.parametrize("method", ["post", "basic"])
def test_a_public_client_sends_only_its_id(method: str):
    """A client without a secret sends its client_id, however it is configured."""
    request = sent(Client(ISSUER, PUBLIC_ID, client_auth=method), "token")

    assert request.header("Authorization") is None
    assert form_of(request)["client_id"] == PUBLIC_ID
    assert "client_secret" not in form_of(request)


def test_a_json_body_keeps_its_client_id_beside_the_basic_header():
    """/mfa/challenge takes client_id in its JSON: basic adds the header only."""
    request = sent(Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic"), "challenge")

    assert request.header("Authorization") == basic(CLIENT_ID, SECRET)
    assert json.loads(request.body or b"") == {
        "client_id": CLIENT_ID,
        "mfa_token": "tok",
    }


def test_a_call_with_a_bearer_token_carries_the_credentials_in_its_body():
    """The Authorization header of a bearer call is taken, so basic falls back
    to the body."""
    request = sent(Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic"), "associate")

    assert request.header("Authorization") == "Bearer the-mfa-token"
    assert json.loads(request.body or b"") == {
        "authenticator_types": ["otp"],
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


def test_an_unknown_method_is_refused():
    """Client refuses a client_auth other than post or basic, naming the choices."""
    with pytest.raises(ValueError, match=r"one of 'post', 'basic', not 'jwt'\.$"):
        Client(ISSUER, CLIENT_ID, SECRET, client_auth="jwt")


def test_the_secret_stays_out_of_the_repr():
    """The repr of a client shows how it authenticates, never its secret."""
    shown = repr(Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic"))

    assert SECRET not in shown
    assert "client_auth='basic'" in shown


def test_a_json_body_filled_in_as_a_list_stops_the_run():
    """A json reference that gives no object fails the run with a clear error."""
    flow = parse_flow(
        """
mfaflow: 1
name: listed
inputs:
  body: {}
initial: send
states:
  send:
    call: {method: POST, url: /x, client_auth: true, json: '${inputs.body}'}
    on: {ok: done}
  done: {final: true}
"""
    )
    engine = Engine(Client(ISSUER, CLIENT_ID, SECRET), transport=MockTransport(None))

    with pytest.raises(RunError) as caught:
        engine.start(flow, {"body": ["a", "b"]})

    assert str(caught.value) == (
        "The json of the state 'send' must be an object to carry the client's "
        "credentials (client_auth), not a list."
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "{url: /x, client_auth: true}",
            "7:21: 'call' of state 'send' has 'client_auth' but no 'form' or 'json'",
        ),
        (
            "{url: /x, client_auth: true, json: [1]}",
            "7:46: 'json' in 'call' of state 'send' must be an object, or one "
            "reference giving one",
        ),
        (
            "{url: /x, client_auth: true, form: {client_secret: s}}",
            "7:47: 'call' of state 'send' has 'client_auth' and writes "
            "'client_secret' in its 'form'",
        ),
    ],
)
def test_a_call_that_cannot_carry_the_credentials_is_a_definition_error(
    call: str, message: str
):
    """client_auth without a body, beside a json list, or beside a hand-written
    client_secret is refused where it is written."""
    text = f"""
mfaflow: 1
name: broken
initial: send
states:
  send:
    call: {call}
    on: {{ok: done}}
  done: {{final: true}}
"""
    with pytest.raises(DefinitionErrors) as caught:
        parse_flow(text, "broken.yaml")

    assert str(caught.value).startswith(f"broken.yaml:{message}")


# -- the shipped flows against the embedded tenant, on the wire ------------------


class Wire:
    """A tenant behind a recorder: what each request carried when it arrived."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.url = ""
        self.requests: list[tuple[str, str | None, bytes]] = []
        self._lock = threading.Lock()

    def app(
        self, environ: dict[str, Any], start: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Record the path, the Authorization header and the body, then answer."""
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self._lock:
            self.requests.append(
                (environ["PATH_INFO"], environ.get("HTTP_AUTHORIZATION"), body)
            )
        return self.tenant.with_issuer(self.url).wsgi_app(environ, start)

    def to(self, path: str) -> list[tuple[str | None, bytes]]:
        """The Authorization header and body of each request to ``path``."""
        return [(auth, body) for where, auth, body in self.requests if where == path]


def _config() -> TenantConfig:
    def user(email: str, **fields: Any) -> UserConfig:
        return UserConfig.with_password(email, PASSWORD, work_factor=10, **fields)

    grants = ("password", "mfa", "refresh_token")
    return TenantConfig(
        name="auth",
        clients=(
            ClientConfig(CLIENT_ID, client_secret=SECRET, grant_types=grants),
            ClientConfig(PUBLIC_ID, grant_types=grants),
        ),
        apis=(ApiConfig(API, scopes=("read:data",), allow_offline_access=True),),
        users=(
            user("plain@example.test"),
            user(
                "otp@example.test",
                mfa="always",
                authenticators=[AuthenticatorConfig("otp", secret=OTP_SECRET)],
            ),
            user("new@example.test", mfa="always"),
        ),
        password_work_factor=10,
    )


@pytest.fixture
def wire() -> Iterator[Wire]:
    """The test tenant served on loopback behind a recorder."""
    with Tenant(_config(), clock=Clock.fixed(START), control=True) as tenant:
        recorder = Wire(tenant)
        with serve_wsgi(recorder.app) as url:
            recorder.url = url + "/"
            yield recorder


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything mfaflow logs, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="mfaflow")
    return caplog


def engine_for(wire: Wire, client_id: str, secret: str | None, method: str) -> Engine:
    """An engine for the client at the recorded tenant, on its clock."""
    client = Client(wire.url, client_id, secret, audience=API, client_auth=method)
    transport = RequestsTransport()
    return Engine(
        client, transport=transport, store=MemoryStore(), clock=wire.tenant.clock.now
    )


def sign_in(engine: Engine, user: str) -> Any:
    """Start password-grant for ``user`` with a refresh token asked for."""
    return engine.start(
        "password-grant",
        {
            "username": f"{user}@example.test",
            "password": PASSWORD,
            "scope": "openid offline_access",
        },
    )


def assert_secret_kept(engine: Engine, run_id: str, logs: pytest.LogCaptureFixture):
    """Neither the secret nor its Basic header is in the run, its record or the logs."""
    header = basic(CLIENT_ID, SECRET)
    stored = engine.store.load(run_id)
    places = [
        json.dumps(stored.document),
        json.dumps(stored.secrets),
        repr(engine.get(run_id)),
        logs.text,
    ]
    for place in places:
        assert SECRET not in place
        assert header.split()[1] not in place
    assert stored.document["client"]["client_auth"] == "basic"


def test_password_grant_with_basic(wire: Wire, logs: pytest.LogCaptureFixture):
    """The embedded tenant signs a confidential client in with HTTP Basic, and
    the secret travels only in the header."""
    engine = engine_for(wire, CLIENT_ID, SECRET, "basic")

    result = sign_in(engine, "plain")

    assert (result.outcome, result.state) == ("success", "signed_in")
    ((auth, body),) = wire.to("/oauth/token")
    assert auth == basic(CLIENT_ID, SECRET)
    fields = parse_qs(body.decode())
    assert fields["grant_type"] == ["password"]
    assert "client_id" not in fields
    assert "client_secret" not in fields
    assert_secret_kept(engine, result.run_id, logs)


def test_refresh_with_basic(wire: Wire, logs: pytest.LogCaptureFixture):
    """The refresh flow exchanges a refresh token with HTTP Basic."""
    engine = engine_for(wire, CLIENT_ID, SECRET, "basic")
    first = sign_in(engine, "plain").outputs["refresh_token"]

    result = engine.start("refresh", {"refresh_token": first})

    assert (result.outcome, result.state) == ("success", "refreshed")
    assert result.outputs["refresh_token"] != first
    (_, (auth, body)) = wire.to("/oauth/token")
    assert auth == basic(CLIENT_ID, SECRET)
    assert parse_qs(body.decode())["grant_type"] == ["refresh_token"]
    assert b"client_secret" not in body
    assert_secret_kept(engine, result.run_id, logs)


def test_step_up_with_basic(wire: Wire, logs: pytest.LogCaptureFixture):
    """A step-up challenges with client_id in the JSON and Basic in the header,
    and verifies the code with Basic."""
    engine = engine_for(wire, CLIENT_ID, SECRET, "basic")
    result = sign_in(engine, "otp")
    assert result.waiting_for[0].name == "otp"
    (authenticator,) = wire.tenant.authenticators("otp@example.test", active_only=True)

    code = wire.tenant.current_totp(authenticator.id)
    result = engine.resume(result.run_id, {"otp": code})

    assert (result.outcome, result.state) == ("success", "signed_in")
    ((auth, body),) = wire.to("/mfa/challenge")
    assert auth == basic(CLIENT_ID, SECRET)
    assert json.loads(body)["client_id"] == CLIENT_ID
    assert "client_secret" not in json.loads(body)
    assert all(auth == basic(CLIENT_ID, SECRET) for auth, _ in wire.to("/oauth/token"))
    assert_secret_kept(engine, result.run_id, logs)


def test_enrolment_with_basic_sends_the_credentials_beside_the_bearer(
    wire: Wire, logs: pytest.LogCaptureFixture
):
    """/mfa/associate carries the mfa_token as Bearer, so the credentials go in
    its body; the confirmation uses Basic."""
    engine = engine_for(wire, CLIENT_ID, SECRET, "basic")
    result = sign_in(engine, "new")
    result = engine.resume(result.run_id, {"factor": "otp"})
    (pending,) = [
        found
        for found in wire.tenant.authenticators("new@example.test")
        if found.authenticator_type == "otp"
    ]

    code = wire.tenant.current_totp(pending.id)
    result = engine.resume(result.run_id, {"otp": code})

    assert (result.outcome, result.state) == ("success", "signed_in")
    ((auth, body),) = wire.to("/mfa/associate")
    assert auth is not None
    assert auth.startswith("Bearer ")
    sent_body = json.loads(body)
    assert (sent_body["client_id"], sent_body["client_secret"]) == (CLIENT_ID, SECRET)
    assert wire.to("/oauth/token")[-1][0] == basic(CLIENT_ID, SECRET)
    assert_secret_kept(engine, result.run_id, logs)


def test_a_wrong_secret_with_basic_ends_as_client_rejected(wire: Wire):
    """The tenant's refusal of a wrong Basic secret is the flow's client_rejected."""
    engine = engine_for(wire, CLIENT_ID, "not the secret", "basic")

    result = sign_in(engine, "plain")

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs["error"] == "invalid_client"
    assert "not the secret" not in repr(result)


def test_a_public_client_configured_for_basic_sends_its_id_in_the_body(wire: Wire):
    """A public client has no secret to send: its client_id goes in the body."""
    engine = engine_for(wire, PUBLIC_ID, None, "basic")

    result = sign_in(engine, "plain")

    assert result.outcome == "success"
    ((auth, body),) = wire.to("/oauth/token")
    assert auth is None
    assert parse_qs(body.decode())["client_id"] == [PUBLIC_ID]


# -- the command line ---------------------------------------------------------


def _run(args: list[str], env: Mapping[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env=dict(env), catch_exceptions=False)


@pytest.mark.parametrize("given", ["option", "environment"])
def test_the_cli_authenticates_with_basic_and_resume_keeps_it(
    wire: Wire, tmp_path: Path, given: str
):
    """--client-auth basic (or MFAFLOW_CLIENT_AUTH) is used for the run and
    recorded, so resume uses it too; the environment gives the secret."""
    env = {
        "MFAFLOW_STORE": str(tmp_path / "runs.sqlite"),
        "MFAFLOW_STORE_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "MFAFLOW_CLIENT_SECRET": SECRET,
    }
    option = ["--client-auth", "basic"]
    if given == "environment":
        env["MFAFLOW_CLIENT_AUTH"], option = "basic", []
    started = _run(
        [
            *("run", "password-grant", "--issuer", wire.url, "--client-id", CLIENT_ID),
            *option,
            *("--audience", API, "--no-input", "--json"),
            *(
                "--input",
                "username=otp@example.test",
                "--input",
                f"password={PASSWORD}",
            ),
        ],
        env,
    )
    assert started.exit_code == 3, started.output
    run_id = json.loads(started.stdout)["run_id"]
    (authenticator,) = wire.tenant.authenticators("otp@example.test", active_only=True)
    code = wire.tenant.current_totp(authenticator.id)

    env.pop("MFAFLOW_CLIENT_AUTH", None)
    resumed = _run(["resume", run_id, "--input", f"otp={code}", "--json"], env)

    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["state"] == "signed_in"
    assert [auth for auth, _ in wire.to("/oauth/token")] == [
        basic(CLIENT_ID, SECRET)
    ] * 2
    assert SECRET not in started.output + resumed.output


def test_the_cli_refuses_an_unknown_method():
    """--client-auth takes basic or post, and says so."""
    result = CliRunner().invoke(
        cli,
        [
            *("run", "password-grant", "--issuer", ISSUER, "--client-id", CLIENT_ID),
            *("--client-auth", "jwt"),
        ],
    )

    assert result.exit_code == 2
    assert "'jwt' is not one of 'post', 'basic'" in result.output
