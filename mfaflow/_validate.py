"""Structural checks of a flow: what a schema cannot say.

:func:`check_flow` looks at a whole :class:`~mfaflow._model.Flow`: that
every transition leads to a state, that every state can be reached and
left, that references name declared inputs, data and outputs and only use
roots that exist where they are written, and that every action, guard and
sub-flow named exists. Nothing is imported: names are only looked up in the
containers given.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from typing import Any

from ._errors import DefinitionError
from ._model import (
    Condition,
    Flow,
    InputSpec,
    Location,
    State,
    Transition,
    Value,
    event_matches,
    leaves,
)
from ._template import Reference, Template

__all__ = ["check_flow"]

#: Roots that any template may use.
_EVERYWHERE = frozenset({"inputs", "data", "client", "run"})
#: Roots added in the transitions and catch rules of each kind of state.
_EVENT_ROOTS = {
    "call": frozenset({"response", "error"}),
    "action": frozenset({"result", "error"}),
    "flow": frozenset({"output", "error"}),
    "input": frozenset({"error"}),
    "pass": frozenset({"error"}),
    "final": frozenset(),
}
#: Where each root that is not available everywhere exists.
_HOMES = {
    "response": "the transitions and catch rules of a call state",
    "result": "the transitions and catch rules of an action state",
    "output": "the transitions and catch rules of a sub-flow state",
    "error": "transitions and catch rules",
}
#: The keys a root has, for roots whose keys are fixed.
_ROOT_KEYS = {
    "client": (
        "audience",
        "client_auth",
        "client_id",
        "client_secret",
        "issuer",
        "issuer_host",
        "redirect_uri",
    ),
    "run": ("flow", "id", "state"),
    "response": ("body", "headers", "status"),
    "error": ("code", "description", "event", "message", "status"),
}


def check_flow(
    flow: Flow,
    *,
    actions: Container[str] | None,
    guards: Container[str] | None,
    flows: Container[str] | None = None,
    subflows: Callable[[str], Flow | None] | None = None,
) -> list[DefinitionError]:
    """Every structural problem of ``flow``, in the order of its file.

    ``actions``, ``guards`` and ``flows`` hold the names that exist; a name
    of a kind passed as ``None`` is not checked. ``subflows``, when given,
    returns the definition of a sub-flow by name (``None`` when it cannot
    be read), so that the ``with:`` of each sub-flow state is checked
    against the inputs the sub-flow declares, and its ``on:`` keys against
    the final states and outcomes the sub-flow can end with.
    """
    checker = _Checker(flow)
    checker.targets()
    checker.reachability()
    checker.exits()
    checker.endings()
    checker.declarations()
    checker.references()
    checker.names(actions, guards, flows)
    checker.secrecy(subflows)
    if subflows is not None:
        checker.subflows(subflows)
    checker.recursion(subflows or (lambda name: None))
    return sorted(checker.errors, key=lambda error: (error.line, error.column))


class _Checker:
    """Collects the structural problems of one flow, one kind per method."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.errors: list[DefinitionError] = []
        self.inputs = set(flow.inputs)
        for state in flow.states.values():
            self.inputs.update(spec.name for spec in state.inputs)

    def fail(self, at: Location, message: str) -> None:
        self.errors.append(DefinitionError(message, at.file, at.line, at.column))

    def where(self, key: str) -> Location:
        return self.flow.locations.get(key, self.flow.location)

    # States and the ways between them.

    def targets(self) -> None:
        flow, states = self.flow, self.flow.states
        if flow.initial not in states:
            near = _near(flow.initial, states)
            message = f"The initial state {flow.initial!r} is not a state{near}."
            self.fail(self.where("initial"), message)
        if flow.on_expiry is not None:
            self.expiry_target(flow.on_expiry)
        for state in states.values():
            for transition in state.transitions:
                what = f"Transition {transition.event!r} of state {state.name!r}"
                self.target(transition.target, transition.location, what)
            for index, rule in enumerate(state.catch, 1):
                what = f"Catch rule {index} of state {state.name!r}"
                self.target(rule.target, rule.location, what)

    def target(self, name: str, at: Location, what: str) -> None:
        if name not in self.flow.states:
            near = _near(name, self.flow.states)
            self.fail(at, f"{what} goes to {name!r}, which is not a state{near}.")

    def expiry_target(self, name: str) -> None:
        state = self.flow.states.get(name)
        if state is None:
            near = _near(name, self.flow.states)
            message = f"'on_expiry' names {name!r}, which is not a state{near}."
            self.fail(self.where("on_expiry"), message)
        elif not state.final:
            message = f"'on_expiry' names {name!r}, which is not a final state."
            self.fail(self.where("on_expiry"), message)

    def reachability(self) -> None:
        flow = self.flow
        if flow.initial not in flow.states:
            return
        reached = _reachable(flow)
        for state in flow.states.values():
            if state.name in reached:
                continue
            if state.final:
                message = (
                    f"Final state {state.name!r} is reached by no path "
                    f"from the initial state {flow.initial!r}."
                )
            else:
                message = (
                    f"State {state.name!r} cannot be reached "
                    f"from the initial state {flow.initial!r}."
                )
            self.fail(state.location, message)

    def exits(self) -> None:
        for state in self.flow.states.values():
            if state.final:
                continue
            if not state.transitions and not state.catch:
                message = (
                    f"State {state.name!r} has no way out: "
                    "it is not final and has no 'on' or 'catch'."
                )
                self.fail(state.location, message)
            elif state.kind in ("pass", "input") and not _takes_ok(state):
                kind = "Pass" if state.kind == "pass" else "Input"
                message = (
                    f"{kind} state {state.name!r} has no transition for 'ok', "
                    "the only event it emits."
                )
                self.fail(state.location, message)

    def endings(self) -> None:
        """Report the states a run can enter but never leave for a final state.

        Going back from the final states along the transitions finds every
        state that can still end; a loop without a way out (``a`` going to
        ``a``, or ``b`` and ``c`` going to each other) is left over. In a
        flow with ``expires_in``, a state where the run waits (for input,
        or for a ``delay`` before entering it) ends too: the run waits
        there until it expires, and expiring ends it. A loop that never
        waits takes its steps at once and never sees its expiry, so it is
        still told. States with no way out at all are told by :meth:`exits`.
        """
        flow = self.flow
        if flow.initial not in flow.states:
            return
        ending = _can_end(flow)
        for name in sorted(_reachable(flow) - ending, key=list(flow.states).index):
            state = flow.states[name]
            if state.transitions or state.catch:
                message = (
                    f"State {name!r} leads to no final state: "
                    "a run that enters it can never end."
                )
                self.fail(state.location, message)

    # Declarations and references.

    def declarations(self) -> None:
        for state in self.flow.states.values():
            for transition in state.transitions:
                what = f"Transition {transition.event!r} of state {state.name!r}"
                self.saves(transition.save, transition.location, what)
            for index, rule in enumerate(state.catch, 1):
                what = f"Catch rule {index} of state {state.name!r}"
                self.saves(rule.save, rule.location, what)
            for key in state.output:
                if key not in self.flow.outputs:
                    message = (
                        f"Final state {state.name!r} gives the output {key!r}, "
                        "which is not declared under 'outputs'."
                    )
                    self.fail(state.location, message)

    def saves(self, save: Mapping[str, Value], at: Location, what: str) -> None:
        for key in save:
            if key not in self.flow.data:
                message = f"{what} saves {key!r}, which is not declared under 'data'."
                self.fail(at, message)

    def references(self) -> None:
        for where, place, roots, value in _places(self.flow):
            for template in _templates(value):
                for reference in template.references:
                    at = _written(reference, template, place)
                    self.reference(reference, where, at, roots)

    def reference(
        self, reference: Reference, where: str, at: Location, roots: frozenset[str]
    ) -> None:
        root = reference.root
        if root not in roots:
            message = (
                f"Reference {reference} in {where} cannot be filled there: "
                f"{root!r} exists only in {_HOMES[root]}."
            )
            self.fail(at, message)
            return
        if not reference.path:
            return
        key = reference.path[0]
        if root == "inputs" and key not in self.inputs:
            message = (
                f"Reference {reference} in {where} names the input {key!r}, "
                "which is declared neither in the flow's inputs nor in an input state."
            )
            self.fail(at, message)
        elif root == "data" and key not in self.flow.data:
            message = (
                f"Reference {reference} in {where} names {key!r}, "
                "which is not declared under 'data'."
            )
            self.fail(at, message)
        elif root in _ROOT_KEYS and key not in _ROOT_KEYS[root]:
            allowed = ", ".join(_ROOT_KEYS[root])
            message = (
                f"Reference {reference} in {where} names {key!r}, "
                f"which {root!r} does not have; allowed: {allowed}."
            )
            self.fail(at, message)

    # Secrets kept out of what is shown or stored in clear.

    def secrecy(self, subflows: Callable[[str], Flow | None] | None) -> None:
        """Report secret values written where a value is kept or shown in clear.

        A secret input, secret data as a whole, ``client.client_secret``, a
        whole root holding one, or a secret output of a sub-flow must not be
        saved into data that is not secret, given as an output or a sub-flow
        input that is not secret, or written into a prompt or a final
        state's message, which are shown and stored as they are. Values
        that come from answers cannot be judged here; the engine masks a
        secret they repeat when it runs.
        """
        flow = self.flow
        secrets = _Secrets(flow)
        for state in flow.states.values():
            child = subflows(state.flow) if subflows and state.flow else None
            self.state_secrets(state, secrets.with_outputs(child))
            for spec in state.inputs:
                if spec is not flow.inputs.get(spec.name):
                    self.clear_prompt(spec, secrets)
            if child is not None:
                self.secret_arguments(state, child, secrets)
        for spec in flow.inputs.values():
            self.clear_prompt(spec, secrets)

    def state_secrets(self, state: State, found: _Secrets) -> None:
        """Secrets in the saves, outputs and message of one state."""
        where = f"state {state.name!r}"
        for transition in state.transitions:
            what = f"Transition {transition.event!r} of {where}"
            self.secret_saves(transition.save, transition.location, what, found)
        for index, rule in enumerate(state.catch, 1):
            what = f"Catch rule {index} of {where}"
            self.secret_saves(rule.save, rule.location, what, found)
        for key, value in state.output.items():
            output = self.flow.outputs.get(key)
            if output is not None and not output.secret:
                what = f"Final state {state.name!r} gives as the output {key!r}"
                mark = f"mark {key!r} 'secret: true' under 'outputs'"
                self.clear(value, state.location, what, mark, found)
        what = f"The message of final state {state.name!r} shows"
        self.clear(state.message, state.location, what, "", found)

    def secret_saves(
        self, save: Mapping[str, Value], at: Location, what: str, found: _Secrets
    ) -> None:
        for key, value in save.items():
            spec = self.flow.data.get(key)
            if spec is not None and not spec.secret:
                mark = f"mark {key!r} 'secret: true' under 'data'"
                self.clear(
                    value, at, f"{what} saves into the data {key!r}", mark, found
                )

    def clear_prompt(self, spec: InputSpec, found: _Secrets) -> None:
        what = f"The prompt of the input {spec.name!r} shows"
        self.clear(spec.prompt, spec.location, what, "", found)

    def secret_arguments(self, state: State, child: Flow, found: _Secrets) -> None:
        for key, value in state.args.items():
            spec = child.inputs.get(key)
            if spec is not None and not spec.secret:
                what = (
                    f"State {state.name!r} gives the sub-flow {child.name!r} "
                    f"as its input {key!r}"
                )
                mark = f"mark {key!r} 'secret: true' in {child.name!r}"
                at = state.arg_locations.get(key, state.location)
                self.clear(value, at, what, mark, found)

    def clear(
        self, value: Any, place: Location, what: str, mark: str, found: _Secrets
    ) -> None:
        """Report the first secret ``value`` holds, where it is kept in clear."""
        for template in _templates(value):
            for reference in template.references:
                secret = found.names(reference)
                if secret is None:
                    continue
                fix = f"; {mark}, or leave the secret out" if mark else ""
                message = (
                    f"{what} {reference} ({secret}), which would be "
                    f"stored and shown in clear{fix}."
                )
                self.fail(_written(reference, template, place), message)
                return

    # Names looked up elsewhere.

    def names(
        self,
        actions: Container[str] | None,
        guards: Container[str] | None,
        flows: Container[str] | None,
    ) -> None:
        for state in self.flow.states.values():
            where = f"state {state.name!r}"
            if actions is not None and state.kind == "action":
                at = state.locations.get("action", state.location)
                self.known(state.action or "", actions, "action", where, at)
            if flows is not None and state.kind == "flow":
                at = state.locations.get("flow", state.location)
                self.known(state.flow or "", flows, "sub-flow", where, at)
            if guards is None:
                continue
            for transition in state.transitions:
                for condition in _conditions(transition.when):
                    what = f"transition {transition.event!r} of {where}"
                    self.known(
                        condition.guard, guards, "guard", what, condition.location
                    )

    def subflows(self, subflows: Callable[[str], Flow | None]) -> None:
        """Check each sub-flow state against the sub-flow: inputs and endings."""
        for state in self.flow.states.values():
            child = subflows(state.flow) if state.flow else None
            if child is not None:
                self.given_inputs(state, child)
                self.awaited_endings(state, child)

    def recursion(self, subflows: Callable[[str], Flow | None]) -> None:
        """Report the sub-flow states that must lead back to this flow.

        A flow that starts itself, directly or through the sub-flows it
        starts, nests deeper at each turn and never ends, when every run
        must pass those sub-flow states. One that starts itself only on
        some paths (the shipped ``authorize`` does, once, with other
        inputs) may end, and passes.
        """
        for state in self.flow.states.values():
            if state.flow is None or state.name not in _inevitable(self.flow):
                continue
            chain = _back_to(self.flow, state.flow, subflows)
            if chain is None:
                continue
            at = state.locations.get("flow", state.location)
            if len(chain) == 2:
                how = "which is this flow itself"
            else:
                how = f"which leads back to this flow ({' -> '.join(chain)})"
            message = (
                f"State {state.name!r} starts the sub-flow {state.flow!r}, {how}: "
                "a run would nest it in itself without end."
            )
            self.fail(at, message)

    def given_inputs(self, state: State, child: Flow) -> None:
        declared = ", ".join(child.inputs) or "none"
        for key in state.args:
            if key not in child.inputs:
                message = (
                    f"State {state.name!r} gives the sub-flow {child.name!r} the "
                    f"input {key!r}, which it does not declare; its inputs: "
                    f"{declared}."
                )
                self.fail(state.arg_locations.get(key, state.location), message)
        for spec in child.inputs.values():
            if spec.required and spec.name not in state.args:
                message = (
                    f"State {state.name!r} starts the sub-flow {child.name!r} "
                    f"without its required input {spec.name!r}."
                )
                self.fail(state.locations.get("flow", state.location), message)

    def awaited_endings(self, state: State, child: Flow) -> None:
        """Report the ``on`` keys of ``state`` that no ending of ``child`` gives.

        The event of a sub-flow's end is its final state's name, when the
        state has a key for it, else its outcome; no other event comes.
        """
        finals, outcomes = _endings(child)
        for key in dict.fromkeys(t.event for t in state.transitions):
            if any(event_matches(key, e) is not None for e in finals + outcomes):
                continue
            message = (
                f"State {state.name!r} has a transition for {key!r}, which the "
                f"sub-flow {child.name!r} never ends with; its final states: "
                f"{', '.join(finals)}; its outcomes: {', '.join(outcomes)}."
            )
            self.fail(state.event_locations.get(key, state.location), message)

    def known(
        self, name: str, names: Container[str], kind: str, where: str, at: Location
    ) -> None:
        if name in names:
            return
        message = f"Unknown {kind} {name!r} in {where}"
        if isinstance(names, Iterable) and not isinstance(names, str):
            listed = sorted(str(item) for item in names)
            message += f"; known: {', '.join(listed) or 'none'}"
        self.fail(at, message + ".")


class _Secrets:
    """The secrets references of one flow may name, a sub-flow's outputs too."""

    def __init__(self, flow: Flow, child: Flow | None = None) -> None:
        self.flow = flow
        self.child = child
        inputs = [*flow.inputs.values()]
        for state in flow.states.values():
            inputs += state.inputs
        self.inputs = {spec.name for spec in inputs if spec.secret}
        self.data = {name for name, spec in flow.data.items() if spec.secret}
        self.outputs = set()
        if child is not None:
            self.outputs = {n for n, spec in child.outputs.items() if spec.secret}

    def with_outputs(self, child: Flow | None) -> _Secrets:
        """These secrets, and the secret outputs of the sub-flow ``child``."""
        return self if child is None else _Secrets(self.flow, child)

    def names(self, reference: Reference) -> str | None:
        """Which secret ``reference`` shows, in words; ``None`` when none."""
        root, path = reference.root, reference.path
        if root == "client":
            shows = not path or path[0] == "client_secret"
            return "the client secret" if shows else None
        kinds = {
            "inputs": (self.inputs, "secret input", ""),
            "data": (self.data, "secret data", ""),
            "output": (self.outputs, "secret output", f" of {self.child_name}"),
        }
        if root not in kinds:
            return None
        names, kind, of = kinds[root]
        if not path:
            return f"the {kind} {sorted(names)[0]!r}{of}" if names else None
        if root != "inputs" and len(path) > 1:
            # A part of secret data (the token_type of the tokens) is the
            # flow's to judge.
            return None
        return f"the {kind} {path[0]!r}{of}" if path[0] in names else None

    @property
    def child_name(self) -> str:
        return "the sub-flow" if self.child is None else repr(self.child.name)


def _back_to(
    flow: Flow, start: str, subflows: Callable[[str], Flow | None]
) -> list[str] | None:
    """The names from ``flow`` through ``start`` back to ``flow``, if runs must go so.

    Only the sub-flow states each flow's runs must pass are followed.

    Sub-flows are looked up by ``subflows``; ``flow`` itself is never
    looked up, as another flow may be known by its name.
    """
    pending = [[flow.name, start]]
    seen: set[str] = set()
    while pending:
        chain = pending.pop()
        name = chain[-1]
        if name == flow.name:
            return chain
        if name in seen:
            continue
        seen.add(name)
        child = subflows(name)
        if child is None:
            continue
        for state in child.states.values():
            if state.flow is not None and state.name in _inevitable(child):
                pending.append([*chain, state.flow])
    return None


def _inevitable(flow: Flow) -> set[str]:
    """The sub-flow states every run of ``flow`` that ends must pass.

    A state is one when no final state can be reached from ``initial``
    without it.
    """
    found = set()
    for state in flow.states.values():
        if state.flow is None:
            continue
        reached: set[str] = set()
        pending = [] if state.name == flow.initial else [flow.initial]
        while pending:
            name = pending.pop()
            if name in reached or name == state.name or name not in flow.states:
                continue
            reached.add(name)
            pending.extend(flow.states[name].targets)
        if not any(flow.states[name].final for name in reached):
            found.add(state.name)
    return found


def _near(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (the nearest is {close[0]!r})" if close else ""


def _reachable(flow: Flow) -> set[str]:
    """The states a run can be in, from ``initial`` (and ``on_expiry``)."""
    start = [flow.initial]
    if flow.on_expiry is not None:
        start.append(flow.on_expiry)
    reached: set[str] = set()
    while start:
        name = start.pop()
        if name in reached or name not in flow.states:
            continue
        reached.add(name)
        start.extend(flow.states[name].targets)
    return reached


def _can_end(flow: Flow) -> set[str]:
    """The states from which some path leads to a final state, or to expiry.

    A target that is not a state counts as one that ends: it is reported
    as missing, and what it would lead to is unknown. In a flow that
    expires, the states where a run waits end (:func:`_waiting`).
    """
    sources: dict[str, set[str]] = {name: set() for name in flow.states}
    for state in flow.states.values():
        for target in state.targets:
            sources.setdefault(target, set()).add(state.name)
    pending = [name for name in sources if name not in flow.states]
    pending += [state.name for state in flow.states.values() if state.final]
    if flow.expires_in is not None:
        pending += _waiting(flow)
    ending: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in ending:
            ending.add(name)
            pending.extend(sources.get(name, ()))
    return ending


def _waiting(flow: Flow) -> list[str]:
    """The states a run of ``flow`` may wait in: input states, delayed targets.

    XXX: a loop whose transitions set ``expires_in`` again never expires,
    yet its waiting states count as ending; see
    tests/test_validate.py::test_a_waiting_loop_that_renews_its_expiry_passes.
    """
    waiting = [state.name for state in flow.states.values() if state.kind == "input"]
    for state in flow.states.values():
        waiting += [t.target for t in state.transitions if _delays(t)]
    return waiting


def _delays(transition: Transition) -> bool:
    """Whether taking ``transition`` may make the run wait (a delay, not 0)."""
    return transition.delay is not None and transition.delay != 0


def _endings(flow: Flow) -> tuple[list[str], list[str]]:
    """The names of the final states of ``flow`` and its outcomes, in file order.

    ``expired`` is an outcome too when the flow expires with no
    ``on_expiry`` state, as a run of it then ends so.
    """
    finals = [state for state in flow.states.values() if state.final]
    outcomes = [state.outcome for state in finals]
    if flow.expires_in is not None and flow.on_expiry is None:
        outcomes.append("expired")
    return [state.name for state in finals], list(dict.fromkeys(outcomes))


def _written(reference: Reference, template: Template, place: Location) -> Location:
    """Where ``reference`` was written: itself, else its template, else ``place``."""
    if reference.line:
        return Location(place.file, reference.line, reference.column)
    if template.line:
        return Location(place.file, template.line, template.column)
    return place


def _takes_ok(state: State) -> bool:
    events = [transition.event for transition in state.transitions]
    events += [error for rule in state.catch for error in rule.errors]
    return "ok" in events or "*" in events


def _places(flow: Flow) -> Iterator[tuple[str, Location, frozenset[str], Any]]:
    """Every place that holds values, as (where, location, roots, values)."""
    at = flow.locations.get("expires_in", flow.location)
    yield "'expires_in' of the flow", at, _EVERYWHERE, flow.expires_in
    for spec in flow.inputs.values():
        where = f"input {spec.name!r}"
        yield where, spec.location, _EVERYWHERE, _input_values(spec)
    for state in flow.states.values():
        yield from _state_places(flow, state)


def _state_places(
    flow: Flow, state: State
) -> Iterator[tuple[str, Location, frozenset[str], Any]]:
    where = f"state {state.name!r}"
    call = state.call
    if call is not None:
        values = (call.url, call.query, call.form, call.json, call.headers, call.bearer)
        yield f"the call of {where}", call.location, _EVERYWHERE, values
    yield f"'with' of {where}", state.location, _EVERYWHERE, state.args
    for spec in state.inputs:
        if spec is not flow.inputs.get(spec.name):
            what = f"input {spec.name!r} of {where}"
            yield what, spec.location, _EVERYWHERE, _input_values(spec)
    roots = _EVERYWHERE | _EVENT_ROOTS[state.kind]
    for transition in state.transitions:
        what = f"transition {transition.event!r} of {where}"
        yield what, transition.location, roots, _transition_values(transition)
    for index, rule in enumerate(state.catch, 1):
        yield f"catch rule {index} of {where}", rule.location, roots, rule.save
    yield where, state.location, _EVERYWHERE, (state.output, state.message)


def _input_values(spec: InputSpec) -> tuple[Any, ...]:
    return (spec.default, spec.choices, spec.link, spec.prompt)


def _transition_values(transition: Transition) -> tuple[Any, ...]:
    return (transition.when, transition.save, transition.delay, transition.expires_in)


def _templates(value: Any) -> Iterator[Template]:
    for leaf in leaves(value):
        if isinstance(leaf, Template):
            yield leaf
        elif isinstance(leaf, Condition):
            yield from _templates(leaf.args)


def _conditions(condition: Condition | None) -> Iterator[Condition]:
    if condition is None:
        return
    yield condition
    args = condition.args
    nested = args if isinstance(args, tuple) else (args,)
    for item in nested:
        if isinstance(item, Condition):
            yield from _conditions(item)
