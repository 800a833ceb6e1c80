"""The engine: driving runs through flows with the mock transport."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest

from mfaflow import (
    AuthorizationServerError,
    ConcurrencyError,
    ConnectError,
    InputError,
    RunEnded,
    RunError,
    RunNotFound,
    TransportTimeout,
    UnhandledEvent,
    UnhandledServerError,
)
from mfaflow._engine import Client, Engine, RunEvent
from mfaflow._loader import parse_flow
from mfaflow._store import MemoryStore
from mfaflow._transport import MockTransport, Request, Response

ISSUER = "https://tenant.example.test/"
SECRET_PASSWORD = "correct-horse-battery-staple"
SECRET_TOKEN = "at-7f3c9e1d2b"


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(status: int, body: Any = None, *, raw: bytes | None = None) -> Response:
    content = (
        raw
        if raw is not None
        else json.dumps(body).encode()
        if body is not None
        else b""
    )
    return Response(status, {"Content-Type": "application/json"}, content)


def form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}


LOGIN = """
mfaflow: 1
name: login
summary: Password grant with a step-up by one-time code.
inputs:
  username: {}
  password: {secret: true}
data:
  mfa_token: {secret: true}
  tokens: {secret: true}
  problem: {}
outputs:
  access_token: {secret: true}
  user: {}
initial: request_token
states:
  request_token:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: password
        username: ${inputs.username}
        password: ${inputs.password}
        client_id: ${client.client_id}
        client_secret: ${client.client_secret}
    on:
      ok: {to: done, save: {tokens: '${response.body}'}}
      mfa_required: {to: ask_code, save: {mfa_token: '${response.body.mfa_token}'}}
      invalid_grant: {to: rejected, save: {problem: '${error.description}'}}
    retry:
      - {errors: [http.5xx], interval: 2, backoff: 3, attempts: 2}
    catch:
      - {errors: [transport.*], to: unreachable, save: {problem: '${error.event}'}}
  ask_code:
    input:
      otp: {prompt: One-time code, secret: true, pattern: '[0-9]{6}'}
    on:
      ok: verify
  verify:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: http://auth0.com/oauth/grant-type/mfa-otp
        mfa_token: ${data.mfa_token}
        otp: ${inputs.otp}
    on:
      ok: {to: done, save: {tokens: '${response.body}'}}
      invalid_grant: ask_code
  done:
    final: true
    message: Signed in as ${inputs.username}.
    output:
      access_token: ${data.tokens.access_token}
      user: ${inputs.username}
  rejected:
    final: true
    outcome: failure
    message: ${data.problem}
  unreachable:
    final: true
    outcome: failure
"""


def tenant(otp: str = "123456") -> Callable[[Request], Response]:
    """A token endpoint: the password gives mfa_required, the right code tokens."""

    def handle(request: Request) -> Response:
        fields = form(request)
        if fields["grant_type"] == "password":
            if fields["password"] != SECRET_PASSWORD:
                return answer(
                    403,
                    {
                        "error": "invalid_grant",
                        "error_description": "Wrong email or password.",
                    },
                )
            return answer(403, {"error": "mfa_required", "mfa_token": "mfa-tok-1"})
        if fields.get("otp") == otp and fields.get("mfa_token") == "mfa-tok-1":
            return answer(200, {"access_token": SECRET_TOKEN, "token_type": "Bearer"})
        return answer(
            403, {"error": "invalid_grant", "error_description": "Invalid otp_code."}
        )

    return handle


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_engine(
    handler: Callable[[Request], Response], clock: Clock, **options: Any
) -> Engine:
    client = Client(ISSUER, "app-1", client_secret="client-secret-xyz")
    return Engine(client, transport=MockTransport(handler), clock=clock, **options)


def login(engine: Engine) -> Any:
    return engine.flow(parse_flow(LOGIN, "login.yaml"))


def test_password_then_code_ends_in_success(clock: Clock) -> None:
    """A run waits for the code after mfa_required and succeeds once it is given."""
    engine = make_engine(tenant(), clock)
    flow = login(engine)

    first = engine.start(flow, {"username": "ann", "password": SECRET_PASSWORD})
    assert first.waiting
    assert first.state == "ask_code"
    assert [(r.name, r.secret, r.prompt) for r in first.waiting_for] == [
        ("otp", True, "One-time code")
    ]

    done = engine.resume(first.run_id, {"otp": "123456"})
    assert done.succeeded
    assert done.state == "done"
    assert done.outputs == {"access_token": SECRET_TOKEN, "user": "ann"}
    assert done.message == "Signed in as ann."
    assert [(h.source, h.event, h.state) for h in done.history] == [
        (None, None, "request_token"),
        ("request_token", "mfa_required", "ask_code"),
        ("ask_code", "ok", "verify"),
        ("verify", "ok", "done"),
    ]


def test_secret_outputs_are_masked_in_repr(clock: Clock) -> None:
    """The result's repr hides secret outputs but shows the others."""
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    done = engine.resume(run.run_id, {"otp": "123456"})
    assert SECRET_TOKEN not in repr(done)
    assert "'ann'" in repr(done)
    assert done.visible_outputs()["access_token"] == "***"


def test_the_reprs_of_a_running_run_hide_its_secrets(clock: Clock) -> None:
    """A run's frames and state show secret inputs, data and outputs as '***'."""
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    waiting = engine._load_run(run.run_id)
    engine.resume(run.run_id, {"otp": "123456"})
    ended = engine._load_run(run.run_id)

    shown = repr(waiting) + repr(waiting.top) + repr(ended)
    for secret in (SECRET_PASSWORD, "mfa-tok-1", SECRET_TOKEN):
        assert secret not in shown
    assert "'password': '***'" in repr(waiting.top)
    assert "'username': 'ann'" in repr(waiting.top)
    assert "'access_token': '***'" in repr(ended)
    assert "'user': 'ann'" in repr(ended)


def test_oauth_error_code_is_the_event(clock: Clock) -> None:
    """An OAuth error body's code picks the transition, and its description is saved."""
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": "wrong"})
    assert run.ended
    assert run.outcome == "failure"
    assert run.state == "rejected"
    assert run.message == "Wrong email or password."


def test_public_client_sends_no_secret_field(clock: Clock) -> None:
    """A form field whose template gives null is left out of the request."""
    seen: list[dict[str, str]] = []

    def handle(request: Request) -> Response:
        seen.append(form(request))
        return answer(200, {"access_token": "x"})

    engine = Engine(
        Client(ISSUER, "public-app"), transport=MockTransport(handle), clock=clock
    )
    engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    assert "client_secret" not in seen[0]
    assert seen[0]["client_id"] == "public-app"


def test_input_not_matching_its_pattern_is_refused_and_run_kept(clock: Clock) -> None:
    """A malformed code is refused without showing it, and the run still waits."""
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    with pytest.raises(InputError) as caught:
        engine.resume(run.run_id, {"otp": "12ab"})
    assert "12ab" not in str(caught.value)
    assert caught.value.name == "otp"
    assert engine.get(run.run_id).waiting_for[0].name == "otp"
    assert engine.resume(run.run_id, {"otp": "123456"}).succeeded


def test_wrong_code_asks_again(clock: Clock) -> None:
    """A rejected code leads back to the input state, which asks again."""
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    again = engine.resume(run.run_id, {"otp": "000000"})
    assert again.waiting
    assert again.state == "ask_code"
    assert engine.resume(run.run_id, {"otp": "123456"}).succeeded


def test_missing_and_unknown_inputs_are_refused(clock: Clock) -> None:
    """Starting without a required input, or with an unknown one, stores nothing."""
    store = MemoryStore()
    engine = make_engine(tenant(), clock, store=store)
    with pytest.raises(InputError, match="'password' is required"):
        engine.start(login(engine), {"username": "ann"})
    with pytest.raises(
        InputError, match="no input 'pasword'; its inputs: username, password"
    ):
        engine.start(
            login(engine), {"username": "ann", "password": "x", "pasword": "x"}
        )
    assert store.list() == []


def test_retry_waits_with_backoff_then_succeeds(clock: Clock) -> None:
    """5xx answers make the run wait interval, then interval * backoff, then retry."""
    answers = [
        answer(503, raw=b"busy"),
        answer(502, raw=b"busy"),
        answer(200, {"access_token": "t"}),
    ]
    engine = make_engine(lambda request: answers.pop(0), clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    assert run.waiting
    assert run.resume_at == clock.now + 2
    assert run.waiting_for == ()

    assert engine.resume(run.run_id).resume_at == clock.now + 2, "too early: unchanged"
    clock.now += 2
    second = engine.resume(run.run_id)
    assert second.resume_at == clock.now + 6
    clock.now += 6
    assert engine.resume(run.run_id).succeeded
    assert answers == []


def test_retries_exhausted_fall_through_to_unhandled(clock: Clock) -> None:
    """After its attempts a retried event is handled as if no rule matched."""
    sent: list[Request] = []

    def handle(request: Request) -> Response:
        sent.append(request)
        return answer(500, raw=b"down")

    engine = make_engine(handle, clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    clock.now = run.resume_at or 0
    run = engine.resume(run.run_id)
    clock.now = run.resume_at or 0
    with pytest.raises(UnhandledEvent) as caught:
        engine.resume(run.run_id)
    assert caught.value.event == "http.500"
    assert caught.value.state == "request_token"
    assert len(sent) == 3, "the first try and two retries"


def test_transport_failure_is_caught(clock: Clock) -> None:
    """A timeout becomes transport.timeout, caught and sent to a final state."""

    def handle(request: Request) -> Response:
        raise TransportTimeout("The server did not answer in time.", url=request.url)

    engine = make_engine(handle, clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    assert run.ended
    assert run.state == "unreachable"
    assert run.outcome == "failure"


@pytest.mark.parametrize(
    ("response", "event"),
    [
        (answer(200, raw=b"<html>oops</html>"), "response.invalid"),
        (answer(404, raw=b"<html>not found</html>"), "http.404"),
        (answer(400, {"error": "authorization_pending"}), "authorization_pending"),
        (answer(401, {"message": "no"}), "http.401"),
    ],
)
def test_answers_become_events_by_rule(
    clock: Clock, response: Response, event: str
) -> None:
    """Statuses, OAuth error codes and unparseable bodies map to their event names."""
    engine = make_engine(lambda request: response, clock)
    with pytest.raises(UnhandledEvent) as caught:
        engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    assert caught.value.event == event
    assert caught.value.flow == "login"
    assert caught.value.state == "request_token"


def test_failed_run_is_stored_and_can_be_resumed(clock: Clock) -> None:
    """A run stopped by an unhandled event is kept as failed and retried on resume."""
    answers = [answer(404, raw=b""), answer(200, {"access_token": "t"})]
    store = MemoryStore()
    engine = make_engine(lambda request: answers.pop(0), clock, store=store)
    with pytest.raises(UnhandledEvent) as caught:
        engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    run_id = caught.value.run_id
    assert run_id is not None
    stored = engine.get(run_id)
    assert stored.status == "failed"
    assert stored.state == "request_token"
    assert "http.404" in (stored.error or "")
    assert engine.resume(run_id).succeeded


def test_resume_of_ended_or_unknown_run_is_refused(clock: Clock) -> None:
    """Resuming an ended run or an unknown id raises a specific error."""
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": "wrong"})
    with pytest.raises(RunEnded, match="already ended"):
        engine.resume(run.run_id)
    with pytest.raises(RunNotFound):
        engine.resume("no-such-run")


POLL = """
mfaflow: 1
name: poll
inputs:
  oob_code: {secret: true}
data:
  tokens: {secret: true}
expires_in: 30
on_expiry: too_late
initial: poll
states:
  poll:
    call:
      method: POST
      url: /oauth/token
      json: {oob_code: '${inputs.oob_code}', binding_code: null}
    on:
      ok: {to: approved, save: {tokens: '${response.body}'}}
      authorization_pending: {to: poll, delay: 5}
      slow_down: {to: poll, delay: 10}
      access_denied: rejected
  approved: {final: true}
  rejected: {final: true, outcome: failure}
  too_late: {final: true, outcome: expired}
"""


@pytest.mark.parametrize("status", [400, 200])
def test_polling_waits_between_requests(clock: Clock, status: int) -> None:
    """authorization_pending and slow_down wait their delay, at 400 and at 200 alike.

    Auth0's legacy docs show a pending push poll answered with HTTP 200.
    """
    bodies: list[dict[str, Any]] = []
    answers = [
        answer(status, {"error": "authorization_pending"}),
        answer(status, {"error": "slow_down"}),
        answer(200, {"access_token": "t"}),
    ]

    def handle(request: Request) -> Response:
        bodies.append(json.loads(request.body or b"{}"))
        return answers.pop(0)

    engine = make_engine(handle, clock)
    run = engine.start(parse_flow(POLL, "poll.yaml"), {"oob_code": "oob-1"})
    assert run.resume_at == clock.now + 5
    clock.now += 5
    assert engine.resume(run.run_id).resume_at == clock.now + 10
    clock.now += 10
    assert engine.resume(run.run_id).succeeded
    assert bodies[0] == {"oob_code": "oob-1"}, "null fields are left out of JSON bodies"


def test_an_unhandled_oauth_error_is_an_authorization_server_error(
    clock: Clock,
) -> None:
    """An OAuth error no transition takes carries the server's answer; run stored."""
    denied = {"error": "invalid_grant", "error_description": "Invalid oob_code."}
    engine = make_engine(lambda request: answer(403, denied), clock)

    with pytest.raises(AuthorizationServerError) as caught:
        engine.start(parse_flow(POLL, "poll.yaml"), {"oob_code": "oob-1"})

    error = caught.value
    assert isinstance(error, UnhandledServerError)
    assert isinstance(error, UnhandledEvent)
    assert (error.error, error.description, error.status) == (
        "invalid_grant",
        "Invalid oob_code.",
        403,
    )
    assert (error.flow, error.state, error.event) == ("poll", "poll", "invalid_grant")
    assert str(error) == (
        "The authorization server answered 'invalid_grant': Invalid oob_code "
        "(HTTP 403), and the state 'poll' of the flow 'poll' has no transition "
        "for it."
    )
    assert engine.get(error.run_id).status == "failed"


def test_an_unhandled_status_is_not_an_authorization_server_error(
    clock: Clock,
) -> None:
    """A status without an OAuth error body stays a plain UnhandledEvent."""
    engine = make_engine(lambda request: answer(404, {"error": ""}), clock)

    with pytest.raises(UnhandledEvent) as caught:
        engine.start(parse_flow(POLL, "poll.yaml"), {"oob_code": "oob-1"})

    assert not isinstance(caught.value, AuthorizationServerError)
    assert caught.value.event == "http.404"


def test_expired_run_ends_in_its_expiry_state(clock: Clock) -> None:
    """A run resumed after its expiry goes to on_expiry without sending a request."""
    sent: list[Request] = []

    def handle(request: Request) -> Response:
        sent.append(request)
        return answer(400, {"error": "authorization_pending"})

    engine = make_engine(handle, clock)
    run = engine.start(parse_flow(POLL, "poll.yaml"), {"oob_code": "oob-1"})
    clock.now += 31
    ended = engine.resume(run.run_id)
    assert ended.ended
    assert ended.outcome == "expired"
    assert ended.state == "too_late"
    assert len(sent) == 1
    assert ended.history[-1].event == "expired"


PARENT = """
mfaflow: 1
name: parent
inputs:
  oob_code: {secret: true}
data:
  result: {}
initial: step
states:
  step:
    flow: poll
    with: {oob_code: '${inputs.oob_code}'}
    on:
      approved: {to: good}
      failure: bad
      expired: bad
  good: {final: true}
  bad: {final: true, outcome: failure}
"""


def test_subflow_runs_inside_the_run_and_reports_its_final_state(
    tmp_path: Any, clock: Clock
) -> None:
    """A sub-flow's waits are the run's waits; its final state is the parent's event.

    Hooks are told when the sub-flow enters its initial state.
    """
    (tmp_path / "poll.yaml").write_text(POLL)
    (tmp_path / "parent.yaml").write_text(PARENT)
    answers = [
        answer(400, {"error": "authorization_pending"}),
        answer(400, {"error": "access_denied"}),
    ]
    seen: list[RunEvent] = []
    engine = make_engine(
        lambda request: answers.pop(0),
        clock,
        flow_paths=[tmp_path],
        hooks=[seen.append],
    )

    run = engine.start("parent", {"oob_code": "oob-1"})
    assert run.waiting
    assert run.state == "poll"
    clock.now += 5
    ended = engine.resume(run.run_id)
    assert ended.ended
    assert ended.state == "bad"
    assert ended.outcome == "failure"
    assert [(h.flow, h.state) for h in ended.history] == [
        ("parent", "step"),
        ("poll", "poll"),
        ("poll", "poll"),
        ("poll", "rejected"),
        ("parent", "bad"),
    ]
    assert [(e.kind, e.flow, e.state, e.source) for e in seen[:3]] == [
        ("started", "parent", "step", None),
        ("entered", "poll", "poll", "step"),
        ("transition", "poll", "poll", "poll"),
    ]


def test_one_machine_per_flow_shared_by_runs(clock: Clock) -> None:
    """Runs share the flow's compiled machine, which holds no per-run model."""
    engine = make_engine(tenant(), clock)
    flow = login(engine)
    for _ in range(5):
        engine.start(flow, {"username": "ann", "password": SECRET_PASSWORD})
    compiled = engine._compile(flow)
    assert compiled is engine._compile(flow)
    assert compiled.machine.models == []


def test_hooks_see_every_step_without_values(clock: Clock) -> None:
    """Hooks are told of start, transitions, waits and the end, with no secret."""
    seen: list[RunEvent] = []
    engine = make_engine(tenant(), clock, hooks=[seen.append])
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    engine.resume(run.run_id, {"otp": "123456"})
    assert [(e.kind, e.state) for e in seen] == [
        ("started", "request_token"),
        ("transition", "ask_code"),
        ("waiting", "ask_code"),
        ("transition", "verify"),
        ("transition", "done"),
        ("ended", "done"),
    ]
    assert SECRET_PASSWORD not in repr(seen)
    assert SECRET_TOKEN not in repr(seen)


def test_debug_log_names_transitions_and_no_secret(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """DEBUG logging tags each transition with the run id and never shows a secret."""
    caplog.set_level(logging.DEBUG, logger="mfaflow")
    engine = make_engine(tenant(), clock)
    run = engine.start(login(engine), {"username": "ann", "password": SECRET_PASSWORD})
    engine.resume(run.run_id, {"otp": "123456"})
    text = caplog.text
    assert f"run {run.run_id}: request_token --mfa_required--> ask_code" in text
    for secret in (
        SECRET_PASSWORD,
        SECRET_TOKEN,
        "mfa-tok-1",
        "123456",
        "client-secret-xyz",
    ):
        assert secret not in text


def test_stale_resume_fails_and_changes_nothing(clock: Clock) -> None:
    """Two engines resuming the same run: the later save fails with ConcurrencyError."""
    store = MemoryStore()
    first = make_engine(tenant(), clock, store=store)
    second = make_engine(tenant(), clock, store=store)
    run = first.start(login(first), {"username": "ann", "password": SECRET_PASSWORD})
    login(second)

    loaded = second._load_run(run.run_id)
    assert first.resume(run.run_id, {"otp": "000000"}).waiting
    before = store.load(run.run_id)
    with pytest.raises(ConcurrencyError):
        second._drive(loaded, [], second._accept_inputs(loaded, {"otp": "123456"}))
    assert store.load(run.run_id) == before


DISCOVER = """
mfaflow: 1
name: discover
initial: ask
states:
  ask:
    call:
      endpoint: token_endpoint
      method: POST
      form: {grant_type: client_credentials}
    on: {ok: done}
  done: {final: true}
"""


@pytest.mark.parametrize(
    ("discovery", "expected"),
    [
        (
            # The issuer may differ from the configured one by a trailing slash.
            answer(
                200,
                {
                    "issuer": ISSUER.rstrip("/"),
                    "token_endpoint": "https://elsewhere.test/token",
                },
            ),
            "https://elsewhere.test/token",
        ),
        (answer(404, raw=b"no"), ISSUER + "oauth/token"),
        (answer(200, raw=b"<html>"), ISSUER + "oauth/token"),
    ],
)
def test_endpoint_from_discovery_with_auth0_fallback(
    clock: Clock, discovery: Response, expected: str
) -> None:
    """A named endpoint comes from discovery, fetched once, or from Auth0's paths."""
    urls: list[str] = []

    def handle(request: Request) -> Response:
        urls.append(request.url)
        if request.url.endswith("/.well-known/openid-configuration"):
            return discovery
        return answer(200, {})

    engine = make_engine(handle, clock)
    flow = engine.flow(parse_flow(DISCOVER, "discover.yaml"))
    engine.start(flow)
    engine.start(flow)
    assert urls == [ISSUER + ".well-known/openid-configuration", expected, expected]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(ConnectError("refused", url=ISSUER), id="unreachable"),
        pytest.param(answer(503, raw=b"busy"), id="5xx"),
    ],
)
def test_discovery_that_failed_is_asked_again_by_the_next_run(
    clock: Clock, failure: Exception | Response
) -> None:
    """A server down when the first run began does not lose its endpoints for good."""
    urls: list[str] = []
    failed: list[bool] = []

    def handle(request: Request) -> Response:
        urls.append(request.url)
        if request.url.endswith("/.well-known/openid-configuration"):
            if not failed:
                failed.append(True)
                if isinstance(failure, Exception):
                    raise failure
                return failure
            return answer(
                200, {"issuer": ISSUER, "token_endpoint": "https://elsewhere.test/t"}
            )
        return answer(200, {})

    engine = make_engine(handle, clock)
    flow = engine.flow(parse_flow(DISCOVER, "discover.yaml"))
    for _ in range(3):
        engine.start(flow)

    discovery = ISSUER + ".well-known/openid-configuration"
    assert urls == [
        *(discovery, ISSUER + "oauth/token"),
        *(discovery, "https://elsewhere.test/t"),
        "https://elsewhere.test/t",
    ]


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (
            {"issuer": "https://evil.example.test/", "token_endpoint": "https://e/t"},
            "names the issuer 'https://evil.example.test/'",
        ),
        (
            {"issuer": ISSUER + "other/", "token_endpoint": "https://e/t"},
            f"names the issuer '{ISSUER}other/'",
        ),
        ({"token_endpoint": "https://e/t"}, "names no issuer"),
    ],
)
def test_a_discovery_document_of_another_issuer_is_refused(
    clock: Clock, document: dict[str, str], said: str
) -> None:
    """Endpoints from a document naming another issuer (or none) are never called."""
    urls: list[str] = []

    def handle(request: Request) -> Response:
        urls.append(request.url)
        return answer(200, document)

    engine = make_engine(handle, clock)
    with pytest.raises(RunError) as caught:
        engine.start(parse_flow(DISCOVER, "discover.yaml"))

    assert str(caught.value) == (
        f"The discovery document of {ISSUER} {said}; its endpoints are not used, "
        "as they may belong to another server."
    )
    assert caught.value.state == "ask"
    assert urls == [ISSUER + ".well-known/openid-configuration"]


@pytest.mark.parametrize(
    "issuer", ["https://ann:hunter2-pw@tenant.test/", "https://ann@tenant.test/"]
)
def test_an_issuer_with_user_information_is_refused_without_showing_it(
    issuer: str,
) -> None:
    """A user name or password in the issuer URL is refused, and not repeated."""
    with pytest.raises(ValueError, match="must not hold a user name or password") as e:
        Client(issuer, "app")

    assert "hunter2-pw" not in str(e.value)
    assert "ann" not in str(e.value)


def test_inputs_given_after_expiry_end_the_run_as_expired(clock: Clock) -> None:
    """A code given to a run whose expiry has passed ends it as expired, unused."""
    sent: list[Request] = []

    def handle(request: Request) -> Response:
        sent.append(request)
        return tenant()(request)

    engine = make_engine(handle, clock)
    flow = parse_flow(LOGIN.replace("initial:", "expires_in: 60\ninitial:"), "x.yaml")
    run = engine.start(flow, {"username": "ann", "password": SECRET_PASSWORD})
    clock.now += 61
    ended = engine.resume(run.run_id, {"otp": "123456"})
    assert ended.ended
    assert ended.outcome == "expired"
    assert len(sent) == 1, "the code was never sent"


def test_shipped_flow_runs_in_process_through_the_wsgi_transport() -> None:
    """A shipped flow signs in at the embedded tenant called in process, no socket."""
    from mfaflow._transport import WSGITransport
    from mfaflow.tenant import DEMO_CLIENT_ID, Tenant

    tenant = Tenant().with_issuer("http://tenant.test/")
    tenant.add_user("bo@example.test", SECRET_PASSWORD)
    engine = Engine(
        Client("http://tenant.test/", DEMO_CLIENT_ID),
        transport=WSGITransport(tenant.wsgi_app),
    )

    result = engine.start(
        "password-grant", {"username": "bo@example.test", "password": SECRET_PASSWORD}
    )

    assert result.succeeded
    assert result.state == "signed_in"
    assert str(result.outputs["access_token"]).count(".") == 2, "an RS256 JWT"
