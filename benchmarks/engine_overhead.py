"""How much the engine costs next to a bare ``transitions`` trigger.

Prints, per operation, the median of several timed batches:

- a bare ``transitions`` trigger on a plain model (the floor);
- ``Engine.start`` of a one-step flow whose HTTP call a mock transport
  answers at once (load, create, one call, one transition, save);
- one transition: ``Engine.resume`` of a run waiting for input, giving the
  input and taking one transition to a final state.

Run it with ``python benchmarks/engine_overhead.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from transitions import Machine

from mfaflow import Client, Engine, MemoryStore, MockTransport, Response, parse_flow

ONE_CALL = """
mfaflow: 1
name: one-call
data:
  body: {}
initial: ask
states:
  ask:
    call: {method: POST, url: /oauth/token, form: {grant_type: client_credentials}}
    on: {ok: {to: done, save: {body: '${response.body}'}}}
  done: {final: true}
"""

ONE_INPUT = """
mfaflow: 1
name: one-input
initial: wait
states:
  wait:
    input: {code: {}}
    on: {ok: done}
  done: {final: true}
"""


def per_call(operation: Callable[[], object], count: int, batches: int = 7) -> float:
    """The median over ``batches`` of the mean seconds one call takes."""
    timings = []
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(count):
            operation()
        timings.append((time.perf_counter() - started) / count)
    return statistics.median(timings)


def bare_trigger() -> float:
    class Model:
        state = "a"

    machine = Machine(
        model=None,
        states=["a", "b"],
        initial="a",
        auto_transitions=False,
        send_event=True,
    )
    machine.add_transition("go", "a", "b")
    machine.add_transition("back", "b", "a")
    model = Model()
    go, back = machine.events["go"], machine.events["back"]

    def both() -> None:
        go.trigger(model)
        back.trigger(model)

    return per_call(both, 20_000) / 2


def main() -> None:
    answer = Response(
        200, {"Content-Type": "application/json"}, b'{"access_token": "x"}'
    )
    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        transport=MockTransport(lambda request: answer),
        store=MemoryStore(),
    )
    one_call = engine.flow(parse_flow(ONE_CALL, "one-call.yaml"))
    one_input = engine.flow(parse_flow(ONE_INPUT, "one-input.yaml"))

    floor = bare_trigger()
    start = per_call(lambda: engine.start(one_call), 2_000)

    waiting = [engine.start(one_input).run_id for _ in range(14_000)]
    resume = per_call(lambda: engine.resume(waiting.pop(), {"code": "1"}), 2_000)

    rows = [
        ("bare transitions trigger", floor),
        ("Engine.start, one HTTP step", start),
        ("Engine.resume, one transition", resume),
    ]
    print(f"{'operation':34} {'µs/op':>10} {'x trigger':>10}")
    for name, seconds in rows:
        print(f"{name:34} {seconds * 1e6:10.1f} {seconds / floor:10.1f}")


if __name__ == "__main__":
    main()
