"""Reading the states of a flow file: one method per element of a state.

:class:`StateReader` turns the node of one state into a
:class:`~mfaflow._model.State`: its kind, its call, its inputs, its
transitions and conditions, its retry and catch rules. Like every
:class:`~mfaflow._fields.FieldReader` it records each problem it finds and
goes on. ``docs/flow-format.md`` describes what it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Literal, TypeVar, cast

from ._fields import (
    MAX_BACKOFF,
    MAX_SECONDS,
    FieldReader,
    is_one_reference,
    sentence,
)
from ._model import (
    Call,
    CatchRule,
    Condition,
    InputSpec,
    Location,
    RetryRule,
    State,
    StateKind,
    Transition,
    Value,
)
from ._template import Template
from ._yaml import Node

__all__ = ["EMPTY", "StateReader"]

_Rule = TypeVar("_Rule", RetryRule, CatchRule)

Outcome = Literal["success", "failure", "expired"]
Jitter = Literal["none", "full"]

#: A read-only empty mapping, the default of mapping fields.
EMPTY: Mapping[str, Value] = MappingProxyType({})

_KINDS = ("call", "action", "input", "flow", "final")
_STATE_KEYS = (
    *_KINDS,
    *("with", "on", "retry", "catch", "outcome", "message", "output", "description"),
)
_FINAL_ONLY = ("outcome", "message", "output")
_NOT_IN_FINAL = ("on", "retry", "catch")
_INPUT_KEYS = (
    *("description", "required", "default", "secret", "pattern", "prompt"),
    *("choices", "link"),
)
_CALL_KEYS = (
    *("method", "url", "endpoint", "query", "form", "json", "headers", "bearer"),
    *("client_auth", "timeout"),
)
_TRANSITION_KEYS = ("to", "when", "save", "delay", "expires_in")
_RETRY_KEYS = ("errors", "interval", "backoff", "attempts", "max_delay", "jitter")
_CATCH_KEYS = ("errors", "to", "save")
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_OUTCOMES = ("success", "failure", "expired")
_JITTERS = ("none", "full")
#: How a link starts: a URL scheme (``https:``, ``otpauth:``), or a reference.
_LINK_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LINK = (
    "a URL such as 'https://...' or 'otpauth://...', "
    "or text that starts with a reference"
)
#: Built-in guards whose argument is a list of two values.
_PAIR_GUARDS = ("equals", "not_equals", "matches", "one_of")


class StateReader(FieldReader):
    """Reads states, and the input specs that flows and states share."""

    def named(
        self, node: Node, where: str, noun: str
    ) -> Iterator[tuple[str, Node, Location]]:
        """The entries of a mapping whose keys name inputs, data, outputs or states."""
        for name, child, at in self.entries(node, where):
            self.check_name(name, at, noun, "name")
            yield name, child, at

    def input_spec(
        self, name: str, node: Node, at: Location, owner: str = ""
    ) -> InputSpec:
        where = f"input {name!r}" + (f" of {owner}" if owner else "")
        entries = self.fields(node, where, _INPUT_KEYS, nullable=True)
        has_default = "default" in entries
        return InputSpec(
            name=name,
            description=self.optional(entries, "description", where, self.text, ""),
            required=self.optional(
                entries, "required", where, self.flag, not has_default
            ),
            default=self.optional(entries, "default", where, self.value, None),
            secret=self.optional(entries, "secret", where, self.flag, False),
            pattern=self.optional(entries, "pattern", where, self.regex, None),
            prompt=self.optional(entries, "prompt", where, self.text_value, None),
            choices=self.optional(entries, "choices", where, self.choices, None),
            link=self.optional(entries, "link", where, self.link, None),
            location=at,
        )

    def choices(self, node: Node, where: str) -> Value:
        if node.is_list:
            return tuple(self.value(item, where) for item in self.items(node, where))
        expected = "a list or one reference such as '${data.factors}'"
        return self.reference(node, where, expected)

    def link(self, node: Node, where: str) -> Value:
        """A URL to open or scan: literal, or a template that starts with one."""
        reported = len(self.errors)
        value = self.text_value(node, where)
        if len(self.errors) > reported:
            return None  # not text, or a broken template: already reported
        start = value.parts[0] if isinstance(value, Template) else value
        if isinstance(start, str) and not _LINK_START.match(start):
            self.wrong(node, where, _LINK)
            return None
        return value

    # A state and its kind.

    def state(
        self, name: str, node: Node, at: Location, inputs: Mapping[str, InputSpec]
    ) -> State:
        """The state ``name``; ``inputs`` are the flow's, for ``input: [...]``."""
        where = f"state {name!r}"
        entries = self.fields(node, where, _STATE_KEYS)
        kind = self.kind(node, entries, where)
        self.check_placement(node, entries, kind, where)

        def asked(node: Node, field: str) -> tuple[InputSpec, ...]:
            return self.state_inputs(node, field, where, inputs)

        return State(
            name=name,
            kind=kind,
            description=self.optional(entries, "description", where, self.text, ""),
            call=self.optional(entries, "call", where, self.call, None),
            action=self.optional(entries, "action", where, self.registered, None),
            flow=self.optional(entries, "flow", where, self.flow_name, None),
            args=self.optional(entries, "with", where, self.named_values, EMPTY),
            inputs=self.optional(entries, "input", where, asked, ()),
            transitions=self.part(entries, "on", where, self.transitions, ()),
            retry=self.part(entries, "retry", where, self.retry_rules, ()),
            catch=self.part(entries, "catch", where, self.catch_rules, ()),
            outcome=self.optional(entries, "outcome", where, self.outcome, "success"),
            output=self.optional(entries, "output", where, self.named_values, EMPTY),
            message=self.optional(entries, "message", where, self.text_value, None),
            location=at,
            locations={key: child.location for key, child in entries.items()},
            arg_locations=dict(entries["with"].keys) if "with" in entries else {},
            event_locations=dict(entries["on"].keys) if "on" in entries else {},
        )

    def kind(self, node: Node, entries: dict[str, Node], where: str) -> StateKind:
        present = [key for key in _KINDS if key in entries]
        for extra in present[1:]:
            self.fail(
                node.keys[extra],
                f"{sentence(where)} has both {present[0]!r} and {extra!r}; "
                "a state has at most one of call, action, input, flow and final.",
            )
        return cast(StateKind, present[0]) if present else "pass"

    def check_placement(
        self, node: Node, entries: dict[str, Node], kind: StateKind, where: str
    ) -> None:
        final = entries.get("final")
        if final is not None and final.value is not True:
            expected = "true (leave 'final' out of a state that is not final)"
            self.wrong(final, f"'final' of {where}", expected)
        if "with" in entries and kind not in ("action", "flow"):
            message = f"'with' in {where} is allowed only beside 'action' or 'flow'."
            self.fail(node.keys["with"], message)
        for key in _FINAL_ONLY:
            if key in entries and kind != "final":
                message = f"{key!r} in {where} is allowed only in final states."
                self.fail(node.keys[key], message)
        for key in _NOT_IN_FINAL:
            if key in entries and kind == "final":
                message = f"{sentence(where)} is final, so it cannot have {key!r}."
                self.fail(node.keys[key], message)

    # Input states.

    def state_inputs(
        self, node: Node, where: str, state: str, inputs: Mapping[str, InputSpec]
    ) -> tuple[InputSpec, ...]:
        if node.is_list:
            return self.listed_inputs(node, where, inputs)
        if node.is_mapping and node.value:
            return tuple(
                self.input_spec(name, child, at, state)
                for name, child, at in self.named(node, where, "an input")
            )
        self.wrong(node, where, "a mapping of inputs or a list of the flow's inputs")
        return ()

    def listed_inputs(
        self, node: Node, where: str, inputs: Mapping[str, InputSpec]
    ) -> tuple[InputSpec, ...]:
        # The list form asks for inputs the flow declares, with their specs.
        specs: list[InputSpec] = []
        for item in self.items(node, where):
            name = self.name(item, f"an input named in {where}")
            if any(spec.name == name for spec in specs):
                self.fail(item, f"{sentence(where)} names the input {name!r} twice.")
            elif name and name not in inputs:
                self.fail(
                    item,
                    f"{sentence(where)} names {name!r}, "
                    "which is not declared in the flow's inputs.",
                )
            specs.append(inputs.get(name) or InputSpec(name, location=item.location))
        return tuple(specs)

    # Call states.

    def call(self, node: Node, where: str) -> Call:
        entries = self.fields(node, where, _CALL_KEYS)
        self.check_call(node, entries, where)
        reported = len(self.errors)
        call = Call(
            method=self.optional(entries, "method", where, self.method, "GET"),
            url=self.optional(entries, "url", where, self.text_value, None),
            endpoint=self.optional(entries, "endpoint", where, self.name, None),
            query=self.optional(entries, "query", where, self.values, EMPTY),
            form=self.optional(entries, "form", where, self.values, None),
            json=self.optional(entries, "json", where, self.value, None),
            headers=self.optional(entries, "headers", where, self.values, EMPTY),
            bearer=self.optional(entries, "bearer", where, self.text_value, None),
            client_auth=self.optional(entries, "client_auth", where, self.flag, False),
            timeout=self.optional(entries, "timeout", where, self.duration, None),
            location=node.location,
        )
        if call.client_auth and len(self.errors) == reported:
            self.check_client_auth(node, entries, call, where)
        return call

    def check_call(self, node: Node, entries: dict[str, Node], where: str) -> None:
        if "url" in entries and "endpoint" in entries:
            message = f"{sentence(where)} has both 'url' and 'endpoint'; give one."
            self.fail(node.keys["endpoint"], message)
        elif node.is_mapping and "url" not in entries and "endpoint" not in entries:
            self.fail(node, f"{sentence(where)} needs a 'url' or an 'endpoint'.")
        if "form" in entries and "json" in entries:
            body = "a request has one body"
            message = f"{sentence(where)} has both 'form' and 'json'; {body}."
            self.fail(node.keys["json"], message)

    def check_client_auth(
        self, node: Node, entries: dict[str, Node], call: Call, where: str
    ) -> None:
        """A call that authenticates as the client needs a body for the credentials.

        Called only when the call read without a problem, so that a broken
        body is not reported twice.
        """
        body = call.form if call.form is not None else call.json
        if body is None:
            message = (
                f"{sentence(where)} has 'client_auth' but no 'form' or 'json' body, "
                "which a client that authenticates in the body needs."
            )
            self.fail(node.keys["client_auth"], message)
        elif not isinstance(body, Mapping) and not _one_reference(body):
            message = (
                f"'json' in {where} must be an object, or one reference "
                "giving one, to carry the client's credentials ('client_auth')."
            )
            self.fail(entries["json"], message)
        elif isinstance(body, Mapping) and "client_secret" in body:
            key = "form" if call.form is not None else "json"
            message = (
                f"{sentence(where)} has 'client_auth' and writes 'client_secret' "
                f"in its {key!r}; leave it out, as the credentials are added the "
                "way the client is configured."
            )
            self.fail(entries[key].keys["client_secret"], message)

    # Transitions and conditions.

    def transitions(self, node: Node, where: str) -> tuple[Transition, ...]:
        found: list[Transition] = []
        for event, child, at in self.entries(node, f"'on' of {where}"):
            self.check_name(event, at, f"an event in {where}", "event")
            label = f"transition {event!r} of {where}"
            if not child.is_list:
                found.append(self.transition(event, child, label))
                continue
            for index, item in enumerate(self.items(child, label), 1):
                found.append(self.transition(event, item, f"{label} (item {index})"))
        return tuple(found)

    def transition(self, event: str, node: Node, where: str) -> Transition:
        if isinstance(node.value, str):
            target = self.name(node, f"the target of {where}")
            return Transition(event, target, location=node.location)
        if not node.is_mapping:
            self.wrong(node, where, "a state name or a mapping with 'to'")
            return Transition(event, "", location=node.location)

        entries = self.fields(node, where, _TRANSITION_KEYS, ("to",))
        return Transition(
            event=event,
            target=self.optional(entries, "to", where, self.name, ""),
            when=self.optional(entries, "when", where, self.condition, None),
            save=self.optional(entries, "save", where, self.named_values, EMPTY),
            delay=self.optional(entries, "delay", where, self.delay, None),
            expires_in=self.optional(entries, "expires_in", where, self.lifetime, None),
            location=node.location,
        )

    def condition(self, node: Node, where: str) -> Condition:
        if node.is_mapping and len(node.value) > 1:
            names = ", ".join(node.value)
            message = (
                f"{sentence(where)} has {len(node.value)} guards ({names}); "
                "write one, or combine them with 'all' or 'any'."
            )
            self.fail(node, message)
            return Condition("", location=node.location)
        if not node.is_mapping or len(node.value) != 1:
            self.wrong(node, where, "a mapping with one key, the name of a guard")
            return Condition("", location=node.location)

        ((guard, argument),) = node.value.items()
        self.check_name(guard, node.keys[guard], f"a guard in {where}", "registered")
        args = self.guard_args(guard, argument, f"{guard!r} in {where}")
        return Condition(guard, args, node.location)

    def guard_args(self, guard: str, node: Node, where: str) -> Value:
        if guard in ("all", "any"):
            conditions = self.items(node, where)
            return tuple(self.condition(item, where) for item in conditions)
        if guard == "not":
            return self.condition(node, where)
        if guard in _PAIR_GUARDS and not (node.is_list and len(node.value) == 2):
            self.wrong(node, where, "a list of two values")
        elif guard == "matches":
            self.literal_pattern(node.value[1], f"the pattern of {where}")
        return self.value(node, where)

    def literal_pattern(self, node: Node, where: str) -> None:
        """Check a pattern written out in the file; one filled in waits for the run."""
        if isinstance(node.value, str) and "${" not in node.value:
            self.regex(node, where)

    # Retry and catch rules.

    def retry_rules(self, node: Node, where: str) -> tuple[RetryRule, ...]:
        return self._rules(node, "retry", where, self.retry_rule)

    def retry_rule(self, node: Node, where: str) -> RetryRule:
        entries = self.fields(node, where, _RETRY_KEYS, ("errors",))
        return RetryRule(
            errors=self.optional(entries, "errors", where, self.events, ()),
            interval=self.optional(entries, "interval", where, self.wait, 1.0),
            backoff=self.optional(entries, "backoff", where, self.factor, 2.0),
            attempts=self.optional(entries, "attempts", where, self.count, 3),
            max_delay=self.optional(entries, "max_delay", where, self.wait, None),
            jitter=self.optional(entries, "jitter", where, self.jitter, "none"),
            location=node.location,
        )

    def catch_rules(self, node: Node, where: str) -> tuple[CatchRule, ...]:
        return self._rules(node, "catch", where, self.catch_rule)

    def catch_rule(self, node: Node, where: str) -> CatchRule:
        entries = self.fields(node, where, _CATCH_KEYS, ("errors", "to"))
        return CatchRule(
            errors=self.optional(entries, "errors", where, self.events, ()),
            target=self.optional(entries, "to", where, self.name, ""),
            save=self.optional(entries, "save", where, self.named_values, EMPTY),
            location=node.location,
        )

    def _rules(
        self, node: Node, key: str, where: str, read: Callable[[Node, str], _Rule]
    ) -> tuple[_Rule, ...]:
        """The list ``key`` of ``where``, each rule read and named by its number."""
        rules = enumerate(self.items(node, f"{key!r} of {where}"), 1)
        return tuple(
            read(rule, f"{key} rule {index} of {where}") for index, rule in rules
        )

    # Single values, by the rule each field follows.

    def events(self, node: Node, where: str) -> tuple[str, ...]:
        items = self.items(node, where)
        return tuple(self.name(item, f"an event in {where}", "event") for item in items)

    def named_values(self, node: Node, where: str) -> Mapping[str, Value]:
        return self.values(node, where, names=True)

    def flow_name(self, node: Node, where: str) -> str:
        return self.name(node, where, "flow")

    def registered(self, node: Node, where: str) -> str:
        return self.name(node, where, "registered")

    def method(self, node: Node, where: str) -> str:
        return self.choice(node, where, _METHODS)

    def outcome(self, node: Node, where: str) -> Outcome:
        return cast(Outcome, self.choice(node, where, _OUTCOMES))

    def jitter(self, node: Node, where: str) -> Jitter:
        return cast(Jitter, self.choice(node, where, _JITTERS))

    def positive(self, node: Node, where: str) -> int:
        return self.integer(node, where, 1)

    def count(self, node: Node, where: str) -> int:
        return self.integer(node, where, 0)

    def factor(self, node: Node, where: str) -> float:
        return self.number(node, where, 1, maximum=MAX_BACKOFF)

    def wait(self, node: Node, where: str) -> float:
        return self.number(node, where, 0, maximum=MAX_SECONDS)

    def duration(self, node: Node, where: str) -> float:
        return self.number(node, where, 0, exclusive=True, maximum=MAX_SECONDS)

    def delay(self, node: Node, where: str) -> Value:
        return self.seconds(node, where, exclusive=False)

    def lifetime(self, node: Node, where: str) -> Value:
        return self.seconds(node, where, exclusive=True)


def _one_reference(value: Value) -> bool:
    return isinstance(value, Template) and is_one_reference(value)
