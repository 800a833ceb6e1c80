"""The engine against hostile answers, broken guards and changed flows.

Answers come from real servers on loopback (raw sockets, so that they can
be anything); runs are kept in a real SQLite store, so that a run which
could not be stored would show.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _servers import read_request_head, serve_raw
from attrs import evolve

from mfaflow._crypto import generate_key
from mfaflow._engine import Client, Engine
from mfaflow._errors import (
    ActionError,
    ConcurrencyError,
    ConnectTimeout,
    DefinitionErrors,
    EncryptionKeyMissing,
    RunError,
    UnhandledServerError,
)
from mfaflow._loader import parse_flow
from mfaflow._registry import Registry, default_registry
from mfaflow._store import SQLiteStore, StoredRun
from mfaflow._transport import MockTransport, Request, RequestsTransport, Response

#: Calls the path it is given, naming itself in a header, and keeps what
#: went wrong.
PROBE = """
mfaflow: 1
name: probe
initial: call
inputs:
  path: {}
  name: {default: probe}
data:
  body: {}
  problem: {}
outputs:
  body: {}
  problem: {}
states:
  call:
    call: {url: '${inputs.path}', headers: {X-Name: '${inputs.name}'}}
    on:
      ok: {to: done, save: {body: '${response.body}'}}
    catch:
      - {errors: ['*'], to: failed, save: {problem: '${error.event}'}}
  done: {final: true, output: {body: '${data.body}'}}
  failed: {final: true, outcome: failure, output: {problem: '${data.problem}'}}
"""


def answering(body: bytes, status: str = "200 OK") -> Callable[..., None]:
    """A raw handler that answers every request with ``body`` as JSON."""

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(head.encode() + body)

    return handle


def sqlite_engine(
    url: str, tmp_path: Path, transport: RequestsTransport | None = None
) -> Engine:
    """An engine for the server at ``url``, keeping runs in a SQLite file.

    ``transport`` replaces one with short timeouts.
    """
    store = SQLiteStore(tmp_path / "runs.sqlite", key=generate_key())
    if transport is None:
        transport = RequestsTransport(connect_timeout=2, read_timeout=5)
    return Engine(Client(url + "/", "app"), transport=transport, store=store)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000-deep"),
        pytest.param(b'{"access_token": NaN, "x": Infinity}', id="nan-infinity"),
        pytest.param(b'{"expires_in": -Infinity}', id="minus-infinity"),
        pytest.param(b'{"expires_in": 1e999}', id="float-overflow"),
        pytest.param(b'{"n": ' + b"1" * 5000 + b"}", id="integer-5000-digits"),
    ],
)
def test_a_hostile_json_body_is_an_invalid_answer_and_the_run_is_stored(
    body: bytes, tmp_path: Path
) -> None:
    """A 2xx body that is too deep or not finite is response.invalid, and stored."""
    with serve_raw(answering(body)) as url:
        engine = sqlite_engine(url, tmp_path)
        result = engine.start(parse_flow(PROBE, "probe.yaml"), {"path": "/x"})

    assert result.ended
    assert result.outputs == {"problem": "response.invalid"}
    assert engine.get(result.run_id).state == "failed"


def test_a_header_http_cannot_carry_is_a_transport_error_the_flow_catches(
    tmp_path: Path,
) -> None:
    """An input that is not Latin-1 in a header is transport.error, caught by '*'."""
    with serve_raw(answering(b"{}")) as url:
        engine = sqlite_engine(url, tmp_path)
        result = engine.start(
            parse_flow(PROBE, "probe.yaml"), {"path": "/x", "name": "Jérôme €"}
        )

    assert result.outputs == {"problem": "transport.error"}
    assert engine.get(result.run_id).state == "failed"


#: Verifies a one-time code by POST, repeating it only when it was not sent.
VERIFY = """
mfaflow: 1
name: verify
initial: verify
inputs:
  otp: {secret: true}
data:
  problem: {}
outputs:
  problem: {}
states:
  verify:
    call: {method: POST, url: /verify, form: {otp: '${inputs.otp}'}}
    on: {ok: done}
    retry:
      - {errors: [transport.connect, transport.tls], attempts: 2, interval: 0}
    catch:
      - {errors: ['*'], to: failed, save: {problem: '${error.event}'}}
  done: {final: true}
  failed: {final: true, outcome: failure, output: {problem: '${data.problem}'}}
"""


def test_a_post_whose_connection_dropped_is_not_repeated(tmp_path: Path) -> None:
    """A hang-up after the request is transport.dropped, which a flow need not retry."""
    received: list[bytes] = []

    def hang_up(connection: socket.socket, stop: threading.Event) -> None:
        received.append(read_request_head(connection))

    with serve_raw(hang_up) as url:
        engine = sqlite_engine(url, tmp_path)
        result = engine.start(parse_flow(VERIFY, "verify.yaml"), {"otp": "123456"})

    assert result.outputs == {"problem": "transport.dropped"}
    assert len(received) == 1, "the code went out once and was not sent again"


def test_a_post_that_could_not_connect_is_repeated(tmp_path: Path) -> None:
    """A connect timeout is transport.connect: nothing was sent, so it is retried."""
    sent: list[Request] = []

    def slow_to_connect(request: Request) -> Response:
        sent.append(request)
        raise ConnectTimeout("Connecting took longer than 1 s.", url=request.url)

    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        transport=MockTransport(slow_to_connect),
        store=SQLiteStore(tmp_path / "runs.sqlite", key=generate_key()),
    )
    result = engine.start(parse_flow(VERIFY, "verify.yaml"), {"otp": "123456"})
    while not result.ended:  # each retry waits for its (zero) interval
        result = engine.resume(result.run_id)

    assert result.outputs == {"problem": "transport.connect"}
    assert len(sent) == 3, "the first try and two retries"


#: Routes on guards whose arguments come from the inputs.
GUARDED = """
mfaflow: 1
name: guarded
initial: a
inputs:
  x: {default: abc}
  pattern: {default: 'a.*'}
states:
  a:
    on:
      ok:
        - {to: done, when: {GUARD: ['${inputs.x}', '${inputs.pattern}']}}
        - done
  done: {final: true}
"""


def test_a_guard_that_raises_stops_the_run_with_a_run_error(tmp_path: Path) -> None:
    """A filled-in pattern that is no regular expression is a RunError; run stored."""
    engine = sqlite_engine("http://127.0.0.1:9", tmp_path)
    flow = parse_flow(GUARDED.replace("GUARD", "matches"), "guarded.yaml")

    with pytest.raises(RunError) as caught:
        engine.start(flow, {"pattern": "["})

    error = caught.value
    assert str(error) == (
        "The guard 'matches' on the event 'ok' in the state 'a' of the flow "
        "'guarded' failed with re.error."
    )
    assert (error.flow, error.state, error.event) == ("guarded", "a", "ok")
    assert error.run_id is not None
    stored = engine.get(error.run_id)
    assert stored.status == "failed"
    assert stored.error == str(error)


def test_a_plugin_guard_that_raises_is_a_run_error_without_its_message(
    tmp_path: Path,
) -> None:
    """A registered guard's exception is named by class; its text may hold secrets."""
    registry = default_registry()

    def leaky(args: Any) -> bool:
        raise KeyError(f"no such user {args[0]}")

    registry.add_guard("leaky", leaky)
    store = SQLiteStore(tmp_path / "runs.sqlite", key=generate_key())
    engine = Engine(
        Client("http://127.0.0.1:9/", "app"), store=store, registry=registry
    )
    flow = parse_flow(GUARDED.replace("GUARD", "leaky"), "guarded.yaml")

    with pytest.raises(RunError, match=r"failed with KeyError\.$") as caught:
        engine.start(flow, {"x": "HUNTER2"})

    assert "HUNTER2" not in str(caught.value)
    assert engine.get(caught.value.run_id or "").status == "failed"


#: Waits for a code, then ends.
EDIT = """mfaflow: 1
name: NAME
summary: Asks for a code.
initial: ask
states:
  ask:
    input: {code: {}}
    on: {ok: done}
  done: {final: true}
"""


def file_engine(store: SQLiteStore) -> Engine:
    """An engine as a new process would make it: nothing compiled yet."""
    return Engine(Client("http://127.0.0.1:9/", "app"), store=store)


#: The key of the stores the tests open on one file.
KEY = generate_key()


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "runs.sqlite", key=KEY)


def started(path: Path, store: SQLiteStore) -> str:
    """Write the flow 'edit' to ``path``, start a run of it; the run's id."""
    path.write_text(EDIT.replace("NAME", "edit"))
    return file_engine(store).start(path).run_id


def resumed_after(path: Path, store: SQLiteStore, run_id: str, text: str) -> Any:
    """Write ``text`` over the flow, then resume the run with a new engine."""
    path.write_text(text.replace("NAME", "edit"))
    return file_engine(store).resume(run_id, {"code": "1"})


def test_resuming_after_a_state_was_renamed_is_a_clear_run_error(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """A flow changed under a waiting run, its version kept, is reported as such."""
    path = tmp_path / "edit.yaml"
    run_id = started(path, store)

    with pytest.raises(RunError) as caught:
        resumed_after(path, store, run_id, EDIT.replace("ask", "asking"))

    assert str(caught.value) == (
        f"The flow 'edit' changed since the run {run_id} started, though its "
        "version is still 1; the run cannot go on with another definition than "
        "its own (give a changed flow a new version)."
    )
    assert (caught.value.run_id, caught.value.state) == (run_id, "ask")
    assert store.load(run_id).status == "waiting", "the stored run is untouched"


def test_a_run_stored_without_a_digest_names_its_missing_state(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """A run stored before digests whose state is gone gets a RunError, no KeyError."""
    path = tmp_path / "edit.yaml"
    run_id = started(path, store)
    stored = store.load(run_id)
    del stored.document["frames"][0]["flow_digest"]
    store.save(evolve(stored, version=stored.version + 1), stored.version)

    with pytest.raises(RunError) as caught:
        resumed_after(path, store, run_id, EDIT.replace("ask", "asking"))

    assert str(caught.value) == (
        f"The run {run_id} is in the state 'ask', which the flow 'edit' no longer has."
    )


def test_a_change_of_descriptions_only_lets_the_run_go_on(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """Summaries, descriptions and layout are not part of what a flow does."""
    path = tmp_path / "edit.yaml"
    run_id = started(path, store)
    changed = "# A comment moves every line.\n" + EDIT.replace("for a code.", "")

    assert resumed_after(path, store, run_id, changed).succeeded


def test_a_file_named_like_a_shipped_flow_is_resumed_from_the_file(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """A run of the user's 'refresh' goes on with that file, not the shipped flow."""
    path = tmp_path / "mine" / "refresh.yaml"
    path.parent.mkdir()
    path.write_text(EDIT.replace("NAME", "refresh"))
    run = file_engine(store).start(path)

    resumed = file_engine(store).resume(run.run_id, {"code": "1"})

    assert resumed.succeeded
    assert resumed.state == "done"


def test_a_parsed_flow_is_checked_before_it_runs() -> None:
    """A Flow from parse_flow naming an unknown action is refused before any call."""
    sent: list[Request] = []

    def handle(request: Request) -> Response:
        sent.append(request)
        return Response(200)

    text = EDIT.replace("NAME", "unchecked").replace(
        "    input: {code: {}}",
        "    call: {url: /x}\n    on: {ok: act}\n  act:\n    action: os.system",
    )
    flow = parse_flow(text, "unchecked.yaml")
    engine = Engine(Client("http://i.test/", "app"), transport=MockTransport(handle))

    with pytest.raises(DefinitionErrors) as caught:
        engine.start(flow)
    with pytest.raises(DefinitionErrors):
        engine.flow(flow)

    assert [error.msg.split(";")[0] for error in caught.value.errors] == [
        "Unknown action 'os.system' in state 'act'"
    ]
    assert sent == []


#: Keeps a token from the answer; its secrets are declared, not inputs.
TOKEN = """
mfaflow: 1
name: token
initial: send
data:
  token: {secret: true}
outputs:
  token: {secret: true}
states:
  send:
    call: {method: POST, url: /x}
    on: {ok: {to: done, save: {token: '${response.body.token}'}}}
  done: {final: true, output: {token: '${data.token}'}}
"""


def counting(sent: list[Request]) -> MockTransport:
    """A transport that answers every request with a token, keeping them."""

    def handle(request: Request) -> Response:
        sent.append(request)
        return Response.json_response(200, {"token": "T0KEN"})

    return MockTransport(handle)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (TOKEN, "data.token, outputs.token"),
        (
            EDIT.replace("NAME", "stepping").replace(
                "    input: {code: {}}\n    on: {ok: done}",
                "    flow: mfa-challenge\n    with: {mfa_token: x}\n"
                "    on: {'*': done}",
            ),
            "inputs.mfa_token",
        ),
    ],
    ids=["own-secrets", "a-sub-flow's-secrets"],
)
def test_a_store_without_a_key_refuses_a_flow_with_secrets_before_any_call(
    tmp_path: Path, text: str, fields: str
) -> None:
    """A keyless store refuses at start, naming the secret fields; nothing is sent."""
    sent: list[Request] = []
    store = SQLiteStore(tmp_path / "runs.sqlite")
    engine = Engine(
        Client("http://i.test/", "app"), transport=counting(sent), store=store
    )

    with pytest.raises(EncryptionKeyMissing) as caught:
        engine.start(parse_flow(text, "flow.yaml"))

    message = str(caught.value)
    assert message.startswith(f"The flow '{parse_flow(text).name}' keeps secrets (")
    assert fields in message
    assert message.endswith(
        f"but the store {str(tmp_path / 'runs.sqlite')!r} has no key to encrypt "
        "them; pass key=load_or_create_key(path) to SQLiteStore."
    )
    assert sent == []
    assert store.list() == []


def test_a_store_without_a_key_runs_a_flow_without_secrets(tmp_path: Path) -> None:
    """A flow that declares no secret runs and is stored without a key."""
    store = SQLiteStore(tmp_path / "runs.sqlite")
    engine = Engine(
        Client("http://i.test/", "app"), transport=counting([]), store=store
    )

    result = engine.start(parse_flow(TOKEN.replace("{secret: true}", "{}"), "t.yaml"))

    assert result.outputs == {"token": "T0KEN"}
    assert [summary.id for summary in store.list()] == [result.run_id]


#: Waits as long as an input says, then calls a URL an input gives.
TIMED = """
mfaflow: 1
name: timed
initial: a
inputs:
  ttl: {default: 1}
  path: {default: /x}
states:
  a:
    on:
      ok: {to: b, delay: '${inputs.ttl}'}
  b:
    call: {url: '${inputs.path}'}
    on: {ok: done}
  done: {final: true}
"""


@pytest.mark.parametrize(
    ("inputs", "message", "state", "event"),
    [
        (
            {"ttl": "soon"},
            "The delay of the transition 'ok' of the state 'a' in the flow 'timed' "
            "must be a number of seconds, not 'soon'.",
            "a",
            "ok",
        ),
        (
            {"ttl": "inf"},
            "The delay of the transition 'ok' of the state 'a' in the flow 'timed' "
            "must be a number of seconds, not 'inf'.",
            "a",
            "ok",
        ),
        (
            {"ttl": 0, "path": ""},
            "The url of the state 'b' in the flow 'timed' must be text, "
            "not empty text.",
            "b",
            None,
        ),
    ],
    ids=["delay-text", "delay-infinite", "empty-url"],
)
def test_a_value_filled_in_wrongly_is_a_run_error_with_its_context(
    tmp_path: Path,
    inputs: dict[str, Any],
    message: str,
    state: str,
    event: str | None,
) -> None:
    """Bad delays and URLs name the flow, run, state and event; the run is stored."""
    engine = sqlite_engine("http://127.0.0.1:9", tmp_path)

    with pytest.raises(RunError) as caught:
        engine.start(parse_flow(TIMED, "timed.yaml"), inputs)

    error = caught.value
    assert str(error) == message
    assert (error.flow, error.state, error.event) == ("timed", state, event)
    assert engine.get(error.run_id or "").status == "failed"


def test_an_endpoint_nobody_knows_is_a_run_error_with_its_context(
    tmp_path: Path,
) -> None:
    """A call to an endpoint neither discovery nor Auth0 names says where it is."""
    text = TIMED.replace("call: {url: '${inputs.path}'}", "call: {endpoint: weird}")
    engine = sqlite_engine("http://127.0.0.1:9", tmp_path)

    with pytest.raises(RunError) as caught:
        engine.start(parse_flow(text, "timed.yaml"), {"ttl": 0})

    assert str(caught.value).startswith(
        "The issuer's discovery document has no 'weird' (the state 'b' of the flow "
        "'timed') and Auth0 has no default path for it; known: "
    )
    assert caught.value.state == "b"
    assert caught.value.run_id is not None


#: Signs in with a recovery code; the answer carries its replacement.
RECOVERY = """
mfaflow: 1
name: recovery
initial: send
data:
  tokens: {secret: true}
outputs:
  access_token: {secret: true}
  recovery_code: {reveal: true}
states:
  send:
    call: {method: POST, url: /oauth/token}
    on: {ok: {to: done, save: {tokens: '${response.body}'}}}
  done:
    final: true
    output:
      access_token: ${data.tokens.access_token}
      recovery_code: ${data.tokens.recovery_code}
"""

RECOVERY_FLOW = parse_flow(RECOVERY, "recovery.yaml")
NEW_CODE = "NEWRECOVERYCODE2345678901"


def recovered(store: SQLiteStore) -> tuple[Engine, str]:
    """An engine and the id of a run that ended with a new recovery code."""

    def handle(request: Request) -> Response:
        body = {"access_token": "AT-1", "recovery_code": NEW_CODE}
        return Response.json_response(200, body)

    engine = Engine(
        Client("http://i.test/", "app"), transport=MockTransport(handle), store=store
    )
    result = engine.start(RECOVERY_FLOW)
    assert result.revealed_outputs == {"recovery_code"}
    assert result.outputs["recovery_code"] == NEW_CODE
    return engine, result.run_id


def test_forget_revealed_removes_every_copy_from_the_stored_run(
    store: SQLiteStore,
) -> None:
    """Once shown, a recovery code is gone from the outputs and from its data."""
    engine, run_id = recovered(store)

    forgotten = engine.forget_revealed(run_id)

    assert "recovery_code" not in forgotten.outputs
    assert engine.get(run_id).outputs == {"access_token": "AT-1"}
    stored = store.load(run_id)
    assert NEW_CODE not in json.dumps([stored.document, stored.secrets])
    assert stored.secrets["frames"]["0"]["data"]["tokens"]["access_token"] == "AT-1"


class Racing(SQLiteStore):
    """A real store where another process saves each run just after it is loaded."""

    def load(self, run_id: str) -> StoredRun:
        found = super().load(run_id)
        other = SQLiteStore(self.path, key=KEY)
        other.save(evolve(found, version=found.version + 1), found.version)
        return found


def test_forget_revealed_is_version_checked(store: SQLiteStore) -> None:
    """A run saved by someone else meanwhile is not overwritten; nothing is lost."""
    engine, run_id = recovered(store)
    racing = Engine(engine.client, store=Racing(store.path, key=KEY))
    racing.flow(RECOVERY_FLOW)

    with pytest.raises(ConcurrencyError):
        racing.forget_revealed(run_id)

    assert engine.get(run_id).outputs["recovery_code"] == NEW_CODE


def test_a_sub_flow_given_an_input_it_lacks_is_refused_before_it_runs() -> None:
    """The engine checks a sub-flow state's 'with' and 'on' against the shipped
    sub-flow."""
    text = EDIT.replace("NAME", "stepping").replace(
        "    input: {code: {}}", "    flow: mfa-challenge\n    with: {bogus: 1}"
    )
    engine = Engine(Client("http://i.test/", "app"), transport=counting([]))

    with pytest.raises(DefinitionErrors) as caught:
        engine.start(parse_flow(text, "stepping.yaml"))

    assert [error.msg.split(";")[0] for error in caught.value.errors] == [
        "State 'ask' starts the sub-flow 'mfa-challenge' without its required "
        "input 'mfa_token'.",
        "State 'ask' gives the sub-flow 'mfa-challenge' the input 'bogus', which "
        "it does not declare",
        "State 'ask' has a transition for 'ok', which the sub-flow 'mfa-challenge' "
        "never ends with",
    ]


#: Runs the action ACTION with the password, and keeps the error's message.
ACTING = """
mfaflow: 1
name: acting
inputs:
  password: {secret: true}
data:
  problem: {}
outputs:
  problem: {}
initial: act
states:
  act:
    action: ACTION
    with: {password: '${inputs.password}'}
    on: {ok: done}
    catch:
      - {errors: [action.error], to: failed, save: {problem: '${error.message}'}}
  done: {final: true}
  failed:
    final: true
    outcome: failure
    message: ${data.problem}
    output: {problem: '${data.problem}'}
"""


def acting_engine(tmp_path: Path, action: Callable[..., Any]) -> Engine:
    """An engine whose registry has ``action`` as the action 'plugin'."""
    registry = Registry(plugins=False)
    registry.add_action("plugin", action)
    store = SQLiteStore(tmp_path / "runs.sqlite", key=generate_key())
    return Engine(Client("http://127.0.0.1:9/", "app"), store=store, registry=registry)


def test_an_action_exception_is_shown_by_its_class_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin that puts a secret in its exception does not leak it: the
    run's error message names the action and the exception's class only."""

    def leaky(context: Any, args: Any) -> Any:
        raise ValueError(f"cannot log in with {args['password']}")

    engine = acting_engine(tmp_path, leaky)
    flow = parse_flow(ACTING.replace("ACTION", "plugin"), "acting.yaml")

    result = engine.start(flow, {"password": "HUNTER2"})

    assert (result.state, result.message) == (
        "failed",
        "The action 'plugin' failed with ValueError.",
    )
    stored = engine.store.load(result.run_id)
    for place in (repr(result), json.dumps(stored.document), caplog.text):
        assert "HUNTER2" not in place
    assert "failed with ValueError" in caplog.text


def test_an_action_error_is_shown_as_the_action_wrote_it(tmp_path: Path) -> None:
    """An ActionError's message is the one the run shows: the action marks it safe."""

    def careful(context: Any, args: Any) -> Any:
        raise ActionError("The password has expired; reset it.")

    engine = acting_engine(tmp_path, careful)
    flow = parse_flow(ACTING.replace("ACTION", "plugin"), "acting.yaml")

    result = engine.start(flow, {"password": "HUNTER2"})

    assert result.outputs["problem"] == "The password has expired; reset it."


def test_a_built_in_action_says_why_it_failed(tmp_path: Path) -> None:
    """The built-in actions fail with ActionError, so their messages are shown,
    and without the text they were given."""
    flow = parse_flow(
        ACTING.replace("ACTION", "next_attempt").replace(
            "{password: '${inputs.password}'}", "{attempt: '${inputs.password}'}"
        ),
        "acting.yaml",
    )
    engine = Engine(
        Client("http://127.0.0.1:9/", "app"),
        store=SQLiteStore(tmp_path / "runs.sqlite", key=generate_key()),
    )

    result = engine.start(flow, {"password": "HUNTER2"})

    assert result.outputs["problem"] == "attempt must be a whole number, not text."


#: Signs in with a password and a client secret, keeping what went wrong.
ECHOED = """
mfaflow: 1
name: echoed
initial: call
inputs:
  password: {secret: true}
data:
  problem: {}
  said: {}
outputs:
  problem: {}
  said: {}
states:
  call:
    call:
      method: POST
      url: /oauth/token
      client_auth: true
      form: {grant_type: password, password: '${inputs.password}'}
    on:
      ok: done
      invalid_grant:
        to: failed
        save: {problem: '${error.message}', said: '${response.body.error_description}'}
  done: {final: true}
  failed:
    final: true
    outcome: failure
    message: 'Refused: ${data.said}'
    output: {problem: '${data.problem}', said: '${data.said}'}
"""

PASSWORD = "hunter2-correct-horse"
CLIENT_SECRET = "cs-9f8e7d6c5b4a"


def test_a_secret_the_server_echoes_is_masked_where_it_is_kept_in_clear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An error_description quoting the password or client secret is kept as ***."""
    described = f"Password {PASSWORD} is wrong for client secret {CLIENT_SECRET}"
    body = json.dumps(
        {"error": "invalid_grant", "error_description": described}
    ).encode()
    caplog.set_level("DEBUG", logger="mfaflow")
    with serve_raw(answering(body, "403 Forbidden")) as url:
        store = SQLiteStore(tmp_path / "runs.sqlite", key=generate_key())
        engine = Engine(
            Client(url + "/", "app", client_secret=CLIENT_SECRET),
            transport=RequestsTransport(connect_timeout=2, read_timeout=5),
            store=store,
        )
        result = engine.start(parse_flow(ECHOED, "echoed.yaml"), {"password": PASSWORD})

    masked = "Password *** is wrong for client secret ***"
    assert result.outputs == {"problem": masked, "said": masked}
    assert result.message == f"Refused: {masked}"
    stored = json.dumps(engine.get(result.run_id).outputs)
    for secret in (PASSWORD, CLIENT_SECRET):
        assert secret not in stored
        assert secret not in caplog.text


def test_an_unhandled_server_error_does_not_repeat_an_echoed_secret(
    tmp_path: Path,
) -> None:
    """The UnhandledServerError of an echoing answer shows the secret as ***."""
    described = f"The password {PASSWORD} is not allowed"
    body = json.dumps({"error": "access_denied", "error_description": described})
    with serve_raw(answering(body.encode(), "403 Forbidden")) as url:
        engine = sqlite_engine(url, tmp_path)
        with pytest.raises(UnhandledServerError) as caught:
            engine.start(parse_flow(ECHOED, "echoed.yaml"), {"password": PASSWORD})

    assert PASSWORD not in str(caught.value)
    assert caught.value.description == "The password *** is not allowed"
    assert PASSWORD not in (engine.get(caught.value.run_id or "").error or "")


def nested(depth: int) -> bytes:
    """A JSON object whose value nests ``depth`` arrays and objects in all."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


@pytest.mark.parametrize(("depth", "problem"), [(64, None), (65, "response.invalid")])
def test_json_nested_past_the_cap_is_an_invalid_answer(
    depth: int, problem: str | None, tmp_path: Path
) -> None:
    """64 levels are read; one more is response.invalid, not a RecursionError later."""
    with serve_raw(answering(nested(depth))) as url:
        engine = sqlite_engine(url, tmp_path)
        result = engine.start(parse_flow(PROBE, "probe.yaml"), {"path": "/x"})

    if problem is None:
        assert result.state == "done"
    else:
        assert result.outputs == {"problem": problem}


def test_an_answer_over_four_mib_is_too_large_whatever_the_transport_allows(
    tmp_path: Path,
) -> None:
    """A transport allowing 16 MiB still has the engine refuse a 5 MiB answer."""
    body = b'{"v": "' + b"x" * (5 * 1_048_576) + b'"}'
    with serve_raw(answering(body)) as url:
        transport = RequestsTransport(max_body=16 * 1_048_576)
        engine = sqlite_engine(url, tmp_path, transport)
        result = engine.start(parse_flow(PROBE, "probe.yaml"), {"path": "/x"})

    assert result.outputs == {"problem": "response.too_large"}
    assert engine.get(result.run_id).state == "failed"


#: Takes every event it is sent and says which one it was.
EVENTS = """
mfaflow: 1
name: events
initial: call
inputs:
  password: {secret: true, default: hunter2-correct-horse}
data:
  event: {}
outputs:
  event: {}
states:
  call:
    call: {method: POST, url: /token, form: {password: '${inputs.password}'}}
    on:
      ok: {to: done, save: {event: ok}}
      transport.timeout: {to: done, save: {event: transport.timeout}}
    catch:
      - {errors: ['*'], to: done, save: {event: '${error.event}'}}
  done: {final: true, output: {event: '${data.event}'}}
"""


@pytest.mark.parametrize(
    ("code", "event"),
    [
        ("invalid_grant", "invalid_grant"),
        ("a0.mfa_required", "a0.mfa_required"),
        ("transport.timeout", "response.invalid"),
        ("http.500", "response.invalid"),
        ("ok", "response.invalid"),
        ("expired", "response.invalid"),
        ("bad code", "response.invalid"),
        ("x\nlogged", "response.invalid"),
        ("a..b", "response.invalid"),
        ("x" * 65, "response.invalid"),
        ("hunter2-correct-horse", "response.invalid"),
    ],
)
def test_only_a_valid_unreserved_error_code_becomes_an_event(
    code: str, event: str, tmp_path: Path
) -> None:
    """A server cannot fire the engine's own events, nor log a secret as one."""
    body = json.dumps({"error": code}).encode()
    with serve_raw(answering(body)) as url:
        engine = sqlite_engine(url, tmp_path)
        result = engine.start(parse_flow(EVENTS, "events.yaml"))

    assert result.outputs == {"event": event}
    history = [entry.event for entry in engine.get(result.run_id).history]
    assert history[-1] == event


#: Waits as long as its input says, then retries a call for ever more.
PATIENT = """
mfaflow: 1
name: patient
initial: call
inputs:
  wait: {default: 0}
states:
  call:
    call: {url: /x}
    on: {ok: {to: done, delay: '${inputs.wait}'}}
    retry: [{errors: [http.5xx], interval: 1, backoff: 100, attempts: 1000}]
  done: {final: true}
"""


@pytest.mark.parametrize("wait", [1e308, 315_360_001, -1])
def test_a_delay_filled_in_out_of_bounds_is_a_clear_run_error(
    wait: float, tmp_path: Path
) -> None:
    """A delay given as 1e308, past ten years or negative stops the run, and says so."""
    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        transport=MockTransport(lambda request: Response(200, (), b"{}")),
        store=SQLiteStore(tmp_path / "runs.sqlite", key=generate_key()),
    )

    with pytest.raises(RunError) as caught:
        engine.start(parse_flow(PATIENT, "patient.yaml"), {"wait": wait})

    assert str(caught.value).startswith(
        "The delay of the transition 'ok' of the state 'call' in the flow 'patient' "
        "must be a number of seconds from 0 to 315360000 (ten years), not "
    )
    assert engine.get(caught.value.run_id or "").status == "failed"


def test_a_steep_backoff_over_many_attempts_stops_growing_at_ten_years() -> None:
    """100 ** 200 overflows a float; the wait is then capped, not an OverflowError."""
    now = [1_000_000.0]
    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        transport=MockTransport(lambda request: Response(503, (), b"")),
        clock=lambda: now[0],
    )
    result = engine.start(parse_flow(PATIENT, "patient.yaml"))
    for _ in range(200):
        now[0] = result.resume_at or now[0]
        result = engine.resume(result.run_id)

    assert (result.resume_at or 0) - now[0] == 315_360_000


#: Starts itself again for as long as its input says so, which is always.
NESTING = """
mfaflow: 1
name: nesting
initial: pick
inputs:
  nest: {default: 'yes'}
states:
  pick:
    on:
      ok:
        - {to: again, when: {equals: ['${inputs.nest}', 'yes']}}
        - done
  again:
    flow: nesting
    with: {nest: '${inputs.nest}'}
    on: {success: done}
  done: {final: true}
"""


def test_a_flow_that_keeps_starting_itself_stops_at_the_nesting_limit(
    tmp_path: Path,
) -> None:
    """Recursion validation cannot rule out ends, stored as failed, at 16 deep."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "nesting.yaml").write_text(NESTING, encoding="utf-8")
    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        store=SQLiteStore(tmp_path / "runs.sqlite", key=generate_key()),
        flow_paths=[folder],
    )

    with pytest.raises(RunError) as caught:
        engine.start("nesting")

    assert str(caught.value) == (
        "The state 'again' of the flow 'nesting' would nest sub-flows more than "
        "16 deep; a flow may start itself without end."
    )
    assert engine.get(caught.value.run_id or "").status == "failed"


#: Waits for a code, for at most a minute.
WAITER = """
mfaflow: 1
name: waiter
initial: ask
expires_in: 60
states:
  ask:
    input: {code: {prompt: Code}}
    on: {ok: done}
  done: {final: true}
"""


def waiter_engines(tmp_path: Path, now: list[float]) -> tuple[Engine, Engine]:
    """Two engines on one SQLite store, as two processes would be."""
    key = generate_key()

    def made() -> Engine:
        return Engine(
            Client("https://tenant.example.test/", "app"),
            store=SQLiteStore(tmp_path / "runs.sqlite", key=key),
            clock=lambda: now[0],
        )

    return made(), made()


def test_resuming_a_run_whose_flow_file_is_gone_names_the_file(tmp_path: Path) -> None:
    """A deleted or moved flow file is named; the stored run is left as it was."""
    path = tmp_path / "waiter.yaml"
    path.write_text(WAITER, encoding="utf-8")
    first, second = waiter_engines(tmp_path, [1_000_000.0])
    run = first.start(path)
    path.unlink()

    with pytest.raises(RunError) as caught:
        second.resume(run.run_id, {"code": "1"})

    assert str(caught.value) == (
        f"The run {run.run_id} runs the flow 'waiter' from the file {path}, which "
        "no longer exists; put the file back, or add a folder holding it as "
        "waiter.yaml to the flow paths (--flows)."
    )
    assert second.store.load(run.run_id).status == "waiting"


def test_a_run_resumed_after_its_expiry_ends_expired_and_says_so(
    tmp_path: Path,
) -> None:
    """The code given too late is not used; the run ends expired, with a message."""
    path = tmp_path / "waiter.yaml"
    path.write_text(WAITER, encoding="utf-8")
    now = [1_000_000.0]
    first, second = waiter_engines(tmp_path, now)
    run = first.start(path)
    now[0] += 61

    result = second.resume(run.run_id, {"code": "1"})

    assert result.ended
    assert result.outcome == "expired"
    assert result.message == (
        "The flow 'waiter' expired in the state 'ask' before it ended; start it again."
    )
