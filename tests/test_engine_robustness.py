"""The engine against hostile answers, broken guards and changed flows.

Answers come from real servers on loopback (raw sockets, so that they can
be anything); runs are kept in a real SQLite store, so that a run which
could not be stored would show.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _servers import read_request_head, serve_raw

from mfaflow._crypto import generate_key
from mfaflow._engine import Client, Engine
from mfaflow._errors import RunError
from mfaflow._loader import parse_flow
from mfaflow._registry import default_registry
from mfaflow._store import SQLiteStore
from mfaflow._transport import RequestsTransport

#: Calls the path it is given and keeps what went wrong.
PROBE = """
mfaflow: 1
name: probe
initial: call
inputs:
  path: {}
data:
  body: {}
  problem: {}
outputs:
  body: {}
  problem: {}
states:
  call:
    call: {url: '${inputs.path}'}
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


def sqlite_engine(url: str, tmp_path: Path) -> Engine:
    """An engine for the server at ``url``, keeping runs in a SQLite file."""
    store = SQLiteStore(tmp_path / "runs.sqlite", key=generate_key())
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


#: Sends a header filled in from an input, and catches every failure.
HEADER = """
mfaflow: 1
name: header
initial: call
inputs:
  name: {}
data:
  problem: {}
outputs:
  problem: {}
states:
  call:
    call: {url: /ok, headers: {X-Name: '${inputs.name}'}}
    on: {ok: done}
    catch:
      - {errors: ['*'], to: failed, save: {problem: '${error.event}'}}
  done: {final: true}
  failed: {final: true, outcome: failure, output: {problem: '${data.problem}'}}
"""


def test_a_header_http_cannot_carry_is_a_transport_error_the_flow_catches(
    tmp_path: Path,
) -> None:
    """An input that is not Latin-1 in a header is transport.error, caught by '*'."""
    with serve_raw(answering(b"{}")) as url:
        engine = sqlite_engine(url, tmp_path)
        result = engine.start(parse_flow(HEADER, "header.yaml"), {"name": "Jérôme €"})

    assert result.outputs == {"problem": "transport.error"}
    assert engine.get(result.run_id).state == "failed"


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
