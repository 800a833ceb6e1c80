"""How much the engine costs next to a bare ``transitions`` trigger.

Prints, per operation, the minimum and the median of many timed batches
(the minimum is the steadiest figure on a shared machine; the median says
what a busy one gives), and both as a multiple of the floor:

- a bare ``transitions`` trigger on a plain model (the floor);
- ``Engine.start`` of a one-step flow whose HTTP call a mock transport
  answers at once (load, create, one call, one transition, save);
- one transition: ``Engine.resume`` of a run waiting for input, giving the
  input and taking one transition to a final state (load and save too);
- one transition without the store: the engine's own cost of a step, from
  a flow of many pass states run by one ``Engine.start`` (one store write
  for them all), less the same start with a single pass state.

Run it with ``python benchmarks/engine_overhead.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

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


#: How many transitions the long flow of pass states takes.
STEPS = 50


def chain(length: int) -> str:
    """A flow of ``length`` pass states, each going on to the next."""
    states = "".join(f"  s{i}:\n    on: {{ok: s{i + 1}}}\n" for i in range(length))
    return (
        f"mfaflow: 1\nname: chain-{length}\ninitial: s0\nstates:\n"
        f"{states}  s{length}: {{final: true}}\n"
    )


class Timing(NamedTuple):
    """Seconds one call takes: the fastest batch's mean, and the median's."""

    least: float
    median: float

    def __sub__(self, other: object) -> Timing:
        assert isinstance(other, Timing)
        return Timing(self.least - other.least, self.median - other.median)

    def __truediv__(self, by: object) -> Timing:
        assert isinstance(by, int | float)
        return Timing(self.least / by, self.median / by)


def per_call(operation: Callable[[], object], count: int, batches: int = 21) -> Timing:
    """Over ``batches``, the least and the median of the mean seconds per call."""
    timings = []
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(count):
            operation()
        timings.append((time.perf_counter() - started) / count)
    return Timing(min(timings), statistics.median(timings))


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

    return per_call(both, 10_000) / 2


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

    short = engine.flow(parse_flow(chain(1), "chain-1.yaml"))
    long = engine.flow(parse_flow(chain(STEPS), f"chain-{STEPS}.yaml"))

    floor = bare_trigger()
    start = per_call(lambda: engine.start(one_call), 1_000)

    waiting = [engine.start(one_input).run_id for _ in range(21_000)]
    resume = per_call(lambda: engine.resume(waiting.pop(), {"code": "1"}), 1_000)

    one = per_call(lambda: engine.start(short), 500)
    many = per_call(lambda: engine.start(long), 500)
    step = (many - one) / (STEPS - 1)

    rows = [
        ("bare transitions trigger", floor),
        ("Engine.start, one HTTP step", start),
        ("Engine.resume, one transition", resume),
        ("one transition, without the store", step),
    ]
    print(f"{'operation':36} {'µs min':>8} {'µs median':>10} {'x min':>7} {'x med':>7}")
    for name, took in rows:
        print(
            f"{name:36} {took.least * 1e6:8.1f} {took.median * 1e6:10.1f} "
            f"{took.least / floor.least:7.1f} {took.median / floor.median:7.1f}"
        )


if __name__ == "__main__":
    main()
