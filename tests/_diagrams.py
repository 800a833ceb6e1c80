"""What the tests of diagrams share: flows to draw, and a reader of Mermaid.

:func:`full_flow` has every feature a diagram shows, and secrets in every
place a value can hide; :func:`nasty_flow` has names that Mermaid, Markdown
and HTML would read as syntax.

A :class:`Diagram` is what a state diagram says: the label of each state
(its name, then its description on a line of its own), each edge with its
label, and the members of each class. Labels are plain text, as a reader
sees them: entity codes decoded, a line break for each ``<br>``.
:func:`parse` reads one from the text, strictly, for the subset of the
syntax mfaflow writes; ``test_diagram_mermaid.py`` reads one from the real
Mermaid parser. :func:`assert_shows` walks a flow's definition and a
diagram side by side.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mfaflow._model import (
    Call,
    CatchRule,
    Condition,
    DataSpec,
    Flow,
    InputSpec,
    RetryRule,
    State,
    Transition,
)
from mfaflow._template import parse as template

__all__ = [
    "CAUGHT",
    "EXPIRY",
    "NASTY",
    "SECRET",
    "STAR",
    "Diagram",
    "assert_shows",
    "decode",
    "full_flow",
    "label_items",
    "nasty_flow",
    "parse",
    "step_up_history",
    "t",
]

#: A value no diagram may show.
SECRET = "Zq7-s3cr3t-VALUE-91"

#: How a state diagram names the start and the end.
STAR = "[*]"
#: What the diagram calls the run's expiry.
EXPIRY = "run expires"
#: The title of a box naming the states that share catch rules, drawn
#: when at least SHARED states share them.
CAUGHT, SHARED = "caught in", 3

_ENTITY = re.compile(r"#(\d+);")
# A label may hold entity codes (``#58;``) but no bare ':' or ';'.
_LABEL = r"(?:#\d+;|[^:;\n])+"
_LINES = [
    ("comment", re.compile(r"%%.*")),
    ("classdef", re.compile(r"classDef (\w+) ([^;\n]+)")),
    ("class", re.compile(r"class (\w+(?:,\w+)*) (\w+)")),
    ("state", re.compile(r'state "([^"\n]*)" as (\w+)')),
    ("description", re.compile(rf"(\w+) : ({_LABEL})")),
    ("edge", re.compile(rf"(\[\*\]|\w+) --> (\[\*\]|\w+)(?: : ({_LABEL}))?")),
]
# What Markdown, HTML or KaTeX would read in a label: it must be coded.
_UNCODED = re.compile(r"[*`~$\\<>&\"%]|(?<![^\W_])_|_(?![^\W_])")


def decode(label: str) -> str:
    """A label as Mermaid shows it: ``<br>`` a line break, entity codes decoded."""
    lines = label.split("<br>")
    return "\n".join(_ENTITY.sub(lambda m: chr(int(m[1])), line) for line in lines)


@dataclass
class Diagram:
    """The states (id to label), edges and class members of a state diagram."""

    labels: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    classes: dict[str, set[str]] = field(default_factory=dict)

    def name(self, node: str) -> str:
        """The state name shown for a node id (the first line of its label)."""
        return node if node == STAR else self.labels[node].split("\n")[0]

    def named_edges(self) -> list[tuple[str, str, str]]:
        return [(self.name(s), self.name(d), label) for s, d, label in self.edges]

    def origins(self, node: str) -> list[str]:
        """The states an edge from ``node`` leaves: those a caught-in box lists."""
        if self.name(node) != CAUGHT:
            return [self.name(node)]
        return ", ".join(self.labels[node].split("\n")[1:]).split(", ")

    def named_class(self, name: str) -> set[str]:
        return {self.name(node) for node in self.classes.get(name, set())}

    def taken(self) -> set[tuple[str, str]]:
        """The (source, target) names of the edges whose label has a ✓."""
        return {
            (source, target)
            for source, target, label in self.named_edges()
            if "✓" in label
        }


def parse(text: str) -> Diagram:
    """The diagram ``text`` says, checking that every line is one mfaflow writes."""
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    diagram, styles = Diagram(), set()
    for line in lines[1:]:
        kind, match = _match(line.strip())
        if kind == "classdef":
            styles.add(match[1])
        elif kind == "class":
            assert match[2] in styles, f"class {match[2]!r} is not defined"
            diagram.classes.setdefault(match[2], set()).update(match[1].split(","))
        elif kind == "state":
            assert match[2] not in diagram.labels, f"{match[2]} is declared twice"
            diagram.labels[match[2]] = _label(match[1])
        elif kind == "description":
            assert match[1] in diagram.labels, f"{match[1]} is not declared"
            diagram.labels[match[1]] += "\n" + _label(match[2])
        elif kind == "edge":
            diagram.edges.append((match[1], match[2], _label(match[3] or "")))
    declared = {*diagram.labels, STAR}
    for source, target, _ in diagram.edges:
        assert {source, target} <= declared, f"undeclared state in {source, target}"
    for members in diagram.classes.values():
        assert members <= set(diagram.labels)
    return diagram


def _match(line: str) -> tuple[str, re.Match[str]]:
    for kind, pattern in _LINES:
        match = pattern.fullmatch(line)
        if match:
            return kind, match
    raise AssertionError(f"not a line of the state diagram subset: {line!r}")


def _label(written: str) -> str:
    raw = _ENTITY.sub(" ", written.replace("<br>", " "))
    assert not _UNCODED.search(raw), f"a label is read as Markdown or HTML: {written!r}"
    return decode(written.strip())


def label_items(line: str) -> list[str]:
    """The comma-separated items of a label's line, keeping guard arguments whole."""
    items = re.split(r",\s(?![^()]*\))", line)
    return [item.removesuffix("✓").removesuffix(" ") for item in items]


def edges_of_model(flow: Flow) -> Counter[tuple[str, str, str]]:
    """Every edge the definition calls for, as (source, target, its label's text).

    A transition's text is its event, its guards' names in brackets and its
    delay in parentheses; a retry rule's and a catch rule's text is their
    label. Each transition counts once, even when another has the same text.
    """
    edges = Counter([(STAR, flow.initial, "")])
    for state in flow.states.values():
        edges.update((state.name, t.target, _text(t)) for t in state.transitions)
        for rule in state.retry:
            retried = f"retry: {', '.join(rule.errors)} \u00d7{rule.attempts}"
            edges[(state.name, state.name, retried)] += 1
        for catch in state.catch:
            edges[(state.name, catch.target, f"catch: {', '.join(catch.errors)}")] += 1
    if expires(flow):
        edges[(EXPIRY, flow.on_expiry or STAR, "")] += 1
    return edges


def expires(flow: Flow) -> bool:
    """Whether a run of ``flow`` can expire: by the flow's or a transition's say."""
    set_on_the_way = [t.expires_in for s in flow.states.values() for t in s.transitions]
    return (
        flow.on_expiry is not None
        or flow.expires_in is not None
        or any(value is not None for value in set_on_the_way)
    )


def _text(transition: Transition) -> str:
    """What the label says of one transition, from the definition alone."""
    words = [transition.event]
    if transition.when is not None:
        words.append(f"[{_guard_names(transition.when)}]")
    if transition.delay is not None:
        words.append(f"({_seconds(transition.delay, 'after {}s', 'after delay')})")
    if transition.expires_in is not None:
        expiry = _seconds(transition.expires_in, "expires in {}s", "sets expiry")
        words.append(f"({expiry})")
    return " ".join(words)


def _guard_names(condition: Condition) -> str:
    match condition.args:
        case Condition() as inner:
            return f"{condition.guard} {_guard_names(inner)}"
        case [Condition(), *_] as inner if all(isinstance(c, Condition) for c in inner):
            return f"{condition.guard}({', '.join(map(_guard_names, inner))})"
    return condition.guard


def _seconds(value: object, number: str, otherwise: str) -> str:
    return number.format(f"{value:g}") if isinstance(value, int | float) else otherwise


def edges_of_diagram(diagram: Diagram) -> Counter[tuple[str, str, str]]:
    """The diagram's edges, one per transition or rule named in each label."""
    edges: Counter[tuple[str, str, str]] = Counter()
    for source, target, label in diagram.edges:
        items = [item for line in label.split("\n") for item in _line_items(line)]
        for origin in diagram.origins(source):
            edges.update((origin, diagram.name(target), item) for item in items)
    return edges


def _line_items(line: str) -> list[str]:
    if line.startswith(("retry: ", "catch: ")):
        return [line.removesuffix("✓").removesuffix(" ")]
    return label_items(line)


def shared_catches(flow: Flow) -> list[list[str]]:
    """The states drawn in one caught-in box: :data:`SHARED` or more whose
    catch rules have the same errors and targets, in the same order."""
    groups: dict[tuple[tuple[tuple[str, ...], str], ...], list[str]] = {}
    for state in flow.states.values():
        rules = tuple((rule.errors, rule.target) for rule in state.catch)
        if rules:
            groups.setdefault(rules, []).append(state.name)
    return [names for names in groups.values() if len(names) >= SHARED]


def edge_count(flow: Flow) -> int:
    """How many edges the diagram of ``flow`` draws.

    Transitions of one state to one target share an edge; each retry rule,
    catch rule and the expiry has its own; all the self-loops of a state
    share one; a catch rule of a caught-in box has one for all its states.
    """
    shared = shared_catches(flow)
    sharing = {name for names in shared for name in names}
    count = 1 + expires(flow)
    count += sum(len(flow.states[names[0]].catch) for names in shared)
    for state in flow.states.values():
        targets = {t.target for t in state.transitions}
        catches = [] if state.name in sharing else [c.target for c in state.catch]
        looped = state.name in targets or state.name in catches or bool(state.retry)
        count += len(targets - {state.name}) + looped
        count += len([target for target in catches if target != state.name])
    return count


def assert_shows(flow: Flow, diagram: Diagram) -> None:
    """Check that ``diagram`` shows each state and transition of ``flow``, no other."""
    shown = [diagram.name(node) for node in diagram.labels]
    states = [name for name in shown if name != CAUGHT]
    expiry = [EXPIRY] if expires(flow) else []
    assert sorted(states) == sorted([*flow.states, *expiry])
    assert shown.count(CAUGHT) == len(shared_catches(flow))
    assert edges_of_diagram(diagram) == edges_of_model(flow)  # as multisets
    assert len(diagram.edges) == edge_count(flow)


# -- flows to draw ---------------------------------------------------------------


def t(event: str, target: str, **kwargs: Any) -> Transition:
    return Transition(event, target, **kwargs)


def full_flow(name: str = "every-feature") -> Flow:
    """A flow with every kind of state, retry, catch, delays, guards, a
    sub-flow, expiry, state names that are Mermaid keywords, and secrets in
    every place a value can hide."""
    secret = template("${inputs.password}")
    states = [
        State(
            "make_pkce",
            "action",
            action="pkce",
            args={"method": "S256", "salt": SECRET},
            transitions=(t("ok", "request_token", save={"verifier": SECRET}),),
        ),
        State(
            "request_token",
            "call",
            description="Asks for tokens with the password grant.",
            call=Call(
                "POST",
                url="/oauth/token",
                form={"password": secret, "client_secret": SECRET},
                headers={"X-Key": SECRET},
            ),
            transitions=(
                t("ok", "end", save={"tokens": template("${response.body}")}),
                t("mfa_required", "step_up", expires_in=600),
                t(
                    "invalid_grant",
                    "locked",
                    when=Condition("equals", (template("${error.code}"), SECRET)),
                ),
                t("invalid_grant", "ask_code"),
                t("http.5xx", "unavailable"),
                t("transport.*", "unavailable"),
            ),
            retry=(RetryRule(("http.5xx", "transport.timeout"), attempts=3),),
            catch=(CatchRule(("*",), "rejected", save={"why": SECRET}),),
        ),
        State(
            "ask_code",
            "input",
            inputs=(InputSpec("otp", secret=True, default=SECRET, prompt=SECRET),),
            transitions=(
                t(
                    "ok",
                    "note",
                    when=Condition(
                        "all",
                        (
                            Condition("present", template("${inputs.otp}")),
                            Condition("not", Condition("equals", ("a", SECRET))),
                        ),
                    ),
                ),
            ),
        ),
        State("note", "pass", transitions=(t("ok", "poll"),)),
        State(
            "poll",
            "call",
            call=Call(
                "GET",
                url=f"https://user:{SECRET}@issuer.example/poll?secret={SECRET}",
                bearer=secret,
            ),
            transitions=(
                t("authorization_pending", "poll", delay=5),
                t("slow_down", "poll", delay=template("${data.interval}")),
                t("ok", "end"),
            ),
        ),
        State(
            "step_up",
            "flow",
            flow="mfa-challenge",
            args={"mfa_token": secret, "hint": SECRET},
            transitions=(
                t("success", "end"),
                t("failure", "rejected"),
                t("expired", "expired"),
            ),
        ),
        State(
            "discover",
            "call",
            call=Call("POST", endpoint="token_endpoint", json={"k": SECRET}),
            transitions=(t("ok", "end"),),
        ),
        State("end", "final", output={"access_token": SECRET}, message=SECRET),
        State("rejected", "final", outcome="failure", message=secret),
        State("locked", "final", outcome="failure"),
        State("unavailable", "final", outcome="failure"),
        State("expired", "final", outcome="expired"),
    ]
    return Flow(
        name=name,
        initial="make_pkce",
        states={state.name: state for state in states},
        inputs={
            "password": InputSpec("password", secret=True, default=SECRET),
            "scope": InputSpec("scope", default=SECRET),
        },
        data={"tokens": DataSpec("tokens", secret=True)},
        expires_in=900,
        on_expiry="expired",
    )


#: Text that would end a Mermaid line or label, or that Markdown, HTML or
#: KaTeX would read, if written as it is.
NASTY = (
    'go:on;now #1 #35; "x" <b>&%% direction LR\nnext *a* _b_ __c__ '
    "`d` ~~e~~ $$f$$ \\g snake_case_name"
)


def nasty_flow() -> Flow:
    """A flow whose state names, event and endpoint are all of :data:`NASTY`."""
    return Flow(
        name="nasty",
        initial="_x_",
        states={
            "_x_": State(
                "_x_",
                "call",
                call=Call("POST", endpoint=NASTY),
                transitions=(t(NASTY, "a-b"),),
            ),
            "a-b": State("a-b", "pass", transitions=(t("ok", "c"),)),
            "c": State("c", "final"),
        },
    )


def step_up_history(flow: Flow) -> list[dict[str, Any]]:
    """What the engine records for a run that stepped up through a sub-flow."""
    steps = [
        (flow.name, "make_pkce", None, None),
        (flow.name, "request_token", "make_pkce", "ok"),
        (flow.name, "step_up", "request_token", "mfa_required"),
        ("mfa-challenge", "challenge", None, None),
        ("mfa-challenge", "done", "challenge", "ok"),
        (flow.name, "end", "step_up", "success"),
    ]
    return [
        {"flow": name, "state": state, "from": source, "event": event, "at": float(at)}
        for at, (name, state, source, event) in enumerate(steps)
    ]
