"""Diagrams of flows and runs: Mermaid, DOT, SVG/PNG, and the committed diagrams."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from _code_login import (
    CLIENT_ID,
    FLOW,
    FLOW_NAME,
    OTP,
    PASSWORD,
    USERNAME,
    token_endpoint,
)
from _diagrams import (
    CAUGHT,
    NASTY,
    SECRET,
    Diagram,
    assert_shows,
    full_flow,
    nasty_flow,
    parse,
    step_up_history,
    t,
)
from attrs import evolve

from mfaflow import MfaflowError
from mfaflow._diagram import (
    REGENERATE_COMMAND,
    DiagramError,
    RunPath,
    check_all,
    render,
    run_path,
    to_dot,
    to_mermaid,
    write_all,
)
from mfaflow._engine import Client, Engine
from mfaflow._loader import load_flow, parse_flow
from mfaflow._model import (
    CatchRule,
    Condition,
    Flow,
    RetryRule,
    State,
)
from mfaflow._run import HistoryEntry, RunResult
from mfaflow._template import parse as template
from mfaflow._transport import MockTransport, Response, WSGITransport
from mfaflow.tenant import DEMO_EMAIL, DEMO_PASSWORD

REPO = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"),
    reason="Graphviz's 'dot' is not installed (apt-get install graphviz)",
)


def small_flow(name: str, target: str = "done") -> Flow:
    """A two-state flow, for the tests of committed diagrams."""
    states = {
        "start_here": State("start_here", "pass", transitions=(t("ok", target),)),
        target: State(target, "final"),
    }
    return Flow(name=name, initial="start_here", states=states, summary=f"The {name}.")


# -- Mermaid -------------------------------------------------------------------


def test_mermaid_names_every_state_and_transition() -> None:
    """The Mermaid text parses and shows every state and transition, and no other."""
    flow = full_flow()

    diagram = parse(to_mermaid(flow))

    assert_shows(flow, diagram)
    assert ("[*]", "make_pkce", "") in diagram.named_edges()
    assert ("run expires", "expired", "") in diagram.named_edges()


def test_mermaid_labels_show_guards_delays_retries_and_catches() -> None:
    """Edge labels name guards, delays, retried errors with attempts, caught errors."""
    labels = {
        (s, d): label for s, d, label in parse(to_mermaid(full_flow())).named_edges()
    }

    assert labels[("request_token", "locked")] == "invalid_grant [equals]"
    assert labels[("request_token", "unavailable")] == "http.5xx, transport.*"
    assert labels[("ask_code", "note")] == "ok [all(present, not equals)]"
    assert labels[("request_token", "rejected")] == "catch: *"
    assert labels[("poll", "poll")] == (
        "authorization_pending (after 5s), slow_down (after delay)"
    )
    assert labels[("request_token", "request_token")] == (
        "retry: http.5xx, transport.timeout \u00d73"
    )


def test_a_transition_that_sets_the_expiry_says_so() -> None:
    """A transition's expires_in is on its label, and draws the run's expiry."""
    later = Flow(
        name="later",
        initial="a",
        states={
            "a": State("a", "pass", transitions=(t("ok", "b", expires_in=300),)),
            "b": State("b", "input", transitions=(t("ok", "c"),)),
            "c": State("c", "final"),
        },
    )

    diagram = parse(to_mermaid(later))
    full = parse(to_mermaid(full_flow()))

    assert_shows(later, diagram)
    assert ("a", "b", "ok (expires in 300s)") in diagram.named_edges()
    assert diagram.labels["expiry"] == "run expires\nas a transition sets it"
    assert ("run expires", "[*]", "") in diagram.named_edges()
    assert ("request_token", "step_up", "mfa_required (expires in 600s)") in (
        full.named_edges()
    )
    assert full.labels["expiry"] == (
        "run expires\nafter 900s, or as a transition resets it"
    )


def test_mermaid_draws_the_self_loops_of_a_state_as_one_edge() -> None:
    """A state's retries and transitions to itself share one edge, a line each."""
    flow = evolve(
        full_flow(),
        states={
            **full_flow().states,
            "poll": evolve(
                full_flow().states["poll"],
                retry=(RetryRule(("http.5xx",), attempts=2),),
                catch=(CatchRule(("transport.*",), "poll"),),
            ),
        },
    )

    diagram = parse(to_mermaid(flow))

    loops = [label for s, d, label in diagram.named_edges() if s == d == "poll"]
    assert loops == [
        "authorization_pending (after 5s), slow_down (after delay)\n"
        "retry: http.5xx \u00d72\n"
        "catch: transport.*"
    ]
    assert_shows(flow, diagram)
    _, dot_edges = dot_graph(to_dot(flow))
    assert [(s, d) for s, d, _ in dot_edges].count(("s_poll", "s_poll")) == 3


def test_mermaid_marks_waits_subflows_and_outcomes() -> None:
    """Input states and expiry are waits, sub-flows are marked, finals show outcomes."""
    diagram = parse(to_mermaid(full_flow()))

    assert diagram.named_class("wait") == {"ask_code", "run expires"}
    assert diagram.named_class("subflow") == {"step_up"}
    assert diagram.named_class("success") == {"end"}
    assert diagram.named_class("failure") == {"rejected", "locked", "unavailable"}
    assert diagram.named_class("expired") == {"expired"}
    assert diagram.labels["s_step_up"] == "step_up\nsub-flow mfa-challenge"
    assert diagram.labels["s_ask_code"] == "ask_code\nwaits for otp"
    assert diagram.labels["s_expired"] == "expired\nexpired"


def relabelled(diagram: Diagram, old: str, new: str) -> Diagram:
    """``diagram`` with ``old`` in its edge labels written ``new``."""
    edges = [(s, d, label.replace(old, new)) for s, d, label in diagram.edges]
    assert edges != diagram.edges, f"no edge label holds {old!r}"
    return dataclasses.replace(diagram, edges=edges)


def twice_guarded_flow() -> Flow:
    """Two transitions of one state to one target, on one event, guards alike."""
    guard = Condition("equals", (template("${inputs.kind}"), "otp"))
    twice = (t("ok", "b", when=guard), t("ok", "b", when=evolve(guard, args=("x",))))
    states = {"a": State("a", "pass", transitions=twice), "b": State("b", "final")}
    return Flow(name="twice", initial="a", states=states)


@pytest.mark.parametrize(
    ("flow", "old", "new"),
    [
        (full_flow(), "invalid_grant [equals]", "invalid_grant"),
        (full_flow(), "slow_down (after delay)", "slow_down"),
        (full_flow(), "transport.timeout \u00d73", "transport.timeout \u00d72"),
        (full_flow(), "http.5xx, transport.*", "http.5xx, transport.*, http.5xx"),
        (twice_guarded_flow(), "ok [equals], ok [equals]", "ok [equals]"),
    ],
    ids=["guard", "delay", "attempts", "repeated", "same-text"],
)
def test_the_walk_notices_a_label_that_says_too_little_or_too_much(
    flow: Flow, old: str, new: str
) -> None:
    """The side-by-side walk fails on a guard, delay, attempt or transition amiss."""
    diagram = parse(to_mermaid(flow))
    assert_shows(flow, diagram)

    with pytest.raises(AssertionError):
        assert_shows(flow, relabelled(diagram, old, new))


def test_the_walk_notices_an_expiry_leading_elsewhere() -> None:
    """The side-by-side walk fails when the run's expiry leads to another state."""
    flow = full_flow()
    diagram = parse(to_mermaid(flow))
    edges = [
        (s, "s_rejected" if s == "expiry" else d, label)
        for s, d, label in diagram.edges
    ]

    with pytest.raises(AssertionError):
        assert_shows(flow, dataclasses.replace(diagram, edges=edges))


def test_a_final_state_has_no_edge_to_the_end() -> None:
    """Only the start and an expiry without a state of its own reach [*]."""
    flow = full_flow()
    bare = evolve(flow, on_expiry=None, states=dict(flow.states))

    ends = [
        (s, d) for s, d, _ in parse(to_mermaid(flow)).named_edges() if "[*]" in (s, d)
    ]
    bare_ends = [
        (s, d) for s, d, _ in parse(to_mermaid(bare)).named_edges() if d == "[*]"
    ]

    assert ends == [("[*]", "make_pkce")]
    assert bare_ends == [("run expires", "[*]")]


def sharing_flow(sharing: int) -> Flow:
    """Calls of which ``sharing`` share two catch rules, and one that has its own."""
    rules = (CatchRule(("transport.*",), "unreachable"), CatchRule(("*",), "failed"))
    names = [f"call_{n}" for n in range(1, sharing + 1)]
    calls = {
        name: State(name, "pass", transitions=(t("ok", after),), catch=rules)
        for name, after in zip(names, [*names[1:], "other"], strict=True)
    }
    other = State(
        "other",
        "pass",
        transitions=(t("ok", "done"),),
        catch=(CatchRule(("*",), "failed"),),
    )
    finals = {
        "done": State("done", "final"),
        "unreachable": State("unreachable", "final", outcome="failure"),
        "failed": State("failed", "final", outcome="failure"),
    }
    states = {**calls, "other": other, **finals}
    return Flow(name="sharing", initial="call_1", states=states)


def test_catch_rules_many_states_share_are_drawn_once() -> None:
    """Three or more states with the same catch rules share a box, an edge a rule."""
    flow = sharing_flow(4)

    diagram = parse(to_mermaid(flow))

    assert_shows(flow, diagram)
    assert diagram.labels["caught1"] == "caught in\ncall_1, call_2, call_3\ncall_4"
    catches = [
        (s, d, label) for s, d, label in diagram.named_edges() if "catch" in label
    ]
    assert catches == [
        ("other", "failed", "catch: *"),
        ("caught in", "unreachable", "catch: transport.*"),
        ("caught in", "failed", "catch: *"),
    ]
    _, dot_edges = dot_graph(to_dot(flow))
    assert [(s, d) for s, d, _ in dot_edges if s == "caught1"] == [
        ("caught1", "s_unreachable"),
        ("caught1", "s_failed"),
    ]


def test_catch_rules_two_states_share_are_drawn_on_each() -> None:
    """Two states with the same catch rules each keep their own edges."""
    flow = sharing_flow(2)

    diagram = parse(to_mermaid(flow))

    assert_shows(flow, diagram)
    assert "caught in" not in {diagram.name(node) for node in diagram.labels}


def test_a_run_caught_by_a_shared_rule_marks_that_rule() -> None:
    """A run a shared catch rule took is marked on the rule's edge from the box."""
    history = [
        {"state": "call_1", "from": None, "event": None},
        {"state": "call_2", "from": "call_1", "event": "ok"},
        {"state": "unreachable", "from": "call_2", "event": "transport.timeout"},
    ]

    diagram = parse(to_mermaid(sharing_flow(3), run=run_path(history)))

    assert diagram.taken() == {
        ("[*]", "call_1"),
        ("call_1", "call_2"),
        ("caught in", "unreachable"),
    }
    assert diagram.named_class("visited") == {"call_1", "call_2", "unreachable"}


@pytest.mark.parametrize("name", ["mfa-challenge", "mfa-enroll"])
def test_a_large_shipped_flow_draws_each_catch_rule_once(name: str) -> None:
    """The catch rules every call of a large shipped flow has are drawn once each."""
    diagram = parse(to_mermaid(load_flow(REPO / "flows" / f"{name}.yaml")))
    shared = "catch: http.5xx, temporarily_unavailable, transport.*, response.*"

    boxed = [
        label
        for source, _, label in diagram.named_edges()
        if source == CAUGHT and label.startswith("catch")
    ]
    catches = [label for _, _, label in diagram.edges if label.startswith("catch")]

    assert boxed == [shared, "catch: *"]
    assert catches.count(shared) == 1


def test_mermaid_ids_avoid_keywords() -> None:
    """States named like Mermaid keywords (end, note) get ids that are not keywords."""
    diagram = parse(to_mermaid(full_flow()))

    keywords = {"end", "note", "state", "class", "classDef", "direction", "default"}
    assert not keywords & set(diagram.labels)
    assert diagram.name("s_end") == "end"


def test_mermaid_labels_show_any_text_as_written() -> None:
    """Every character that ends a label or is Markdown is coded, and reads back."""
    text = to_mermaid(nasty_flow())

    diagram = parse(text)  # every line parses, and no label is read as Markdown

    one_line = NASTY.replace("\n", " ")
    assert diagram.labels["s__x_"] == f"_x_\nPOST {one_line}"
    assert [label for _, _, label in diagram.edges if label] == [one_line, "ok"]
    assert "\n    x_" in text  # the name with '-' became a plain-word id
    assert "direction#32;LR" in text


def test_mermaid_is_deterministic() -> None:
    """The same flow, built twice, gives the same Mermaid text."""
    assert to_mermaid(full_flow()) == to_mermaid(full_flow())


# -- DOT, SVG and PNG ---------------------------------------------------------

_DOT_NODE = re.compile(r'  "(\w+)" \[(.*)\];')
_DOT_EDGE = re.compile(r'  "(\w+)" -> "(\w+)"(?: \[(.*)\])?;')
_DOT_ATTR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def dot_graph(
    text: str,
) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """The nodes (id to attributes) and edges of the DOT text the module writes."""
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    for line in text.splitlines():
        if match := _DOT_EDGE.fullmatch(line):
            edges.append((match[1], match[2], dict(_DOT_ATTR.findall(match[3] or ""))))
        elif match := _DOT_NODE.fullmatch(line):
            nodes[match[1]] = dict(_DOT_ATTR.findall(match[2]))
    return nodes, edges


def test_dot_shows_the_same_states_and_edges_as_mermaid() -> None:
    """The DOT text has the same states, edges and labels as the Mermaid text."""
    flow = full_flow()
    mermaid = parse(to_mermaid(flow))

    nodes, edges = dot_graph(to_dot(flow))

    assert set(nodes) >= set(mermaid.labels)
    assert set(nodes) - set(mermaid.labels) == {"start"}  # expiry leads to a state
    star = {"start": "[*]", "end": "[*]"}
    shown = [(star.get(s, s), star.get(d, d), a.get("label", "")) for s, d, a in edges]
    assert shown == mermaid.edges
    assert nodes["s_step_up"]["shape"] == "component"
    assert nodes["s_ask_code"]["style"] == "rounded,filled,dashed"
    assert nodes["s_end"]["peripheries"] == "2"
    assert nodes["s_request_token"]["label"] == "request_token\\nPOST /oauth/token"
    waits = {(s, d) for s, d, a in edges if a.get("style") == "dashed"}
    assert waits == {("s_poll", "s_poll"), ("s_request_token", "s_request_token")}


def quoted_flow() -> Flow:
    """A flow with an event of quotes, a backslash and a line break."""
    return Flow(
        name="quoted",
        initial="a",
        states={
            "a": State("a", "pass", transitions=(t('say "hi" \\ bye\nnow', "b"),)),
            "b": State("b", "final"),
        },
    )


def test_dot_escapes_quotes_and_backslashes() -> None:
    """Quotes, backslashes and newlines in names stay inside their DOT string."""
    _, edges = dot_graph(to_dot(quoted_flow()))

    assert edges[1][2]["label"] == 'say \\"hi\\" \\\\ bye\\nnow'


@needs_dot
def test_svg_shows_quotes_and_backslashes_as_written() -> None:
    """Graphviz draws the quoted name as written, its line break as a new line."""
    svg = ET.fromstring(render(quoted_flow(), "svg"))

    texts = [node.text for node in svg.iter(f"{SVG}text")]
    first = texts.index('say "hi" \\ bye')
    assert texts[first + 1] == "now"


@needs_dot
def test_svg_is_valid_and_names_every_state() -> None:
    """Graphviz renders the flow to an SVG document whose nodes are its states."""
    flow = full_flow()

    svg = render(flow, "svg")

    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    titles = {
        g.findtext(f"{SVG}title")
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "node"
    }
    assert titles == {*(f"s_{name}" for name in flow.states), "start", "expiry"}


@needs_dot
def test_png_has_the_png_signature() -> None:
    """Graphviz renders the flow to PNG bytes."""
    assert render(full_flow(), "png").startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_svg_is_deterministic() -> None:
    """The same flow renders to the same SVG bytes."""
    assert render(full_flow(), "svg") == render(full_flow(), "svg")


def test_missing_dot_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without Graphviz, SVG fails with an install hint; text formats still work."""
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(DiagramError) as caught:
        render(full_flow(), "svg")

    assert isinstance(caught.value, MfaflowError)
    assert str(caught.value) == (
        "Graphviz's 'dot' program was not found on PATH; install it "
        "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz) "
        "or draw the flow as Mermaid or DOT text, which need no program."
    )
    assert render(full_flow(), "mermaid").startswith("stateDiagram-v2")
    assert render(full_flow(), "dot").startswith('digraph "every-feature"')


@needs_dot
def test_dot_failure_shows_its_first_line() -> None:
    """When dot rejects its input, the error quotes the first line dot printed."""
    from mfaflow._diagram import _graphviz

    with pytest.raises(
        DiagramError,
        match=r"^Graphviz's 'dot' failed with exit status 1: .*syntax error.*\.$",
    ):
        _graphviz("digraph {\n  a -> \n", "svg", 10.0, "no dot")


def test_slow_dot_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A dot program that does not finish in time is stopped with a clear error."""
    slow = tmp_path / "dot"
    slow.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n")
    slow.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(DiagramError, match=r"did not finish within 0\.5 seconds\.$"):
        render(full_flow(), "svg", timeout=0.5)


def test_unknown_format_lists_the_choices() -> None:
    """An unknown format is refused with the list of formats."""
    with pytest.raises(
        DiagramError,
        match=r"^Unknown diagram format 'jpeg'; expected one of 'mermaid', 'dot', "
        r"'svg', 'png'\.$",
    ):
        render(full_flow(), "jpeg")


# -- secrets -------------------------------------------------------------------


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        assert SECRET not in text
        assert "${" not in text
        assert "issuer.example" not in text


def test_no_secret_reaches_any_diagram() -> None:
    """No default, template, save, with, body, URL secret or output is drawn."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:2], "request_token")

    texts = [
        to_mermaid(flow),
        to_dot(flow),
        to_mermaid(flow, run=run),
        to_dot(flow, run=run),
    ]

    assert_no_secret(texts)
    assert "GET /poll" in texts[0]


@needs_dot
def test_no_secret_reaches_an_svg_or_the_committed_files(tmp_path: Path) -> None:
    """Neither an SVG of a run nor any file write_all writes shows a secret."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:2], "request_token")

    svg = render(flow, "svg", run=run).decode()
    write_all([flow], tmp_path)

    written = [path.read_text() for path in sorted(tmp_path.iterdir())]
    assert len(written) == 3
    assert_no_secret([svg, *written])
    assert "GET /poll" in svg


@needs_dot
def test_an_svg_shows_each_state_s_description_on_hover_as_documented() -> None:
    """An SVG's tooltips are the states' descriptions, as the guide says."""
    svg = ET.fromstring(render(full_flow(), "svg"))
    guide = " ".join((REPO / "docs" / "diagrams.md").read_text().split())

    titles = {
        link.get("{http://www.w3.org/1999/xlink}title") for link in svg.iter(f"{SVG}a")
    }

    assert "Asks for tokens with the password grant." in titles
    assert "in an SVG, each state's `description`" in guide


# -- runs ------------------------------------------------------------------------


def test_run_path_reads_the_history() -> None:
    """A run's path lists states entered and transitions taken, not sub-flow states."""
    flow = full_flow()

    path = run_path(step_up_history(flow), "end", flow=flow.name)

    assert path == RunPath(
        visited=("make_pkce", "request_token", "step_up", "end"),
        current="end",
        taken=(
            ("make_pkce", "ok", "request_token"),
            ("request_token", "mfa_required", "step_up"),
            ("step_up", "success", "end"),
        ),
    )


def test_run_path_accepts_entries_with_to_dict() -> None:
    """History entries may be objects with a to_dict() method, as the engine's are."""

    class Entry:
        def __init__(self, raw: dict[str, Any]) -> None:
            self.raw = raw

        def to_dict(self) -> dict[str, Any]:
            return self.raw

    flow = full_flow()
    entries = [Entry(raw) for raw in step_up_history(flow)]

    assert run_path(entries, "end", flow=flow.name) == run_path(
        step_up_history(flow), "end", flow=flow.name
    )


def test_run_path_refuses_an_entry_without_a_state() -> None:
    """A history entry without a state name is refused with its index."""
    with pytest.raises(
        DiagramError, match=r"^The history entry 1 has the state None; .*\.$"
    ):
        run_path([{"state": "a"}, {"from": "a", "event": "ok"}])


def test_mermaid_highlights_exactly_the_run() -> None:
    """A run's diagram marks exactly its visited states, current state, taken edges."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:3], "step_up", flow=flow.name)

    diagram = parse(to_mermaid(flow, run=run))

    assert diagram.named_class("visited") == {"make_pkce", "request_token"}
    assert diagram.named_class("current") == {"step_up"}
    taken = {(s, d) for s, d, label in diagram.named_edges() if label.endswith("✓")}
    assert taken == {
        ("[*]", "make_pkce"),
        ("make_pkce", "request_token"),
        ("request_token", "step_up"),
    }
    plain = parse(to_mermaid(flow))
    assert [(s, d) for s, d, _ in diagram.edges] == [(s, d) for s, d, _ in plain.edges]


def test_mermaid_highlights_an_ended_run() -> None:
    """An ended run marks its final state and the edge that led there."""
    flow = full_flow()
    run = run_path(step_up_history(flow), None, flow=flow.name)

    diagram = parse(to_mermaid(flow, run=run))

    assert diagram.named_class("visited") == {
        "make_pkce",
        "request_token",
        "step_up",
        "end",
    }
    assert "current" not in diagram.classes
    taken = {(s, d) for s, d, label in diagram.named_edges() if label.endswith("✓")}
    assert ("step_up", "end") in taken


def test_dot_highlights_exactly_the_run() -> None:
    """In DOT exactly the visited and current states and taken edges are coloured."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:3], "step_up", flow=flow.name)

    nodes, edges = dot_graph(to_dot(flow, run=run))

    coloured = {
        node: attrs["color"] for node, attrs in nodes.items() if "penwidth" in attrs
    }
    assert coloured == {
        "s_make_pkce": "#0969da",
        "s_request_token": "#0969da",
        "s_step_up": "#bf3989",
    }
    thick = {(s, d) for s, d, attrs in edges if "penwidth" in attrs}
    assert thick == {
        ("start", "s_make_pkce"),
        ("s_make_pkce", "s_request_token"),
        ("s_request_token", "s_step_up"),
    }


@needs_dot
def test_svg_of_a_run_colours_the_visited_states() -> None:
    """Graphviz draws the visited states of a run with the highlight colour."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:3], "step_up", flow=flow.name)

    root = ET.fromstring(render(flow, "svg", run=run))

    strokes = {
        g.findtext(f"{SVG}title"): {
            shape.get("stroke") for shape in g.iter() if shape.get("stroke")
        }
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "node"
    }
    highlighted = {
        title for title, colours in strokes.items() if colours & {"#0969da", "#bf3989"}
    }
    assert highlighted == {"s_make_pkce", "s_request_token", "s_step_up"}


def test_run_highlights_pattern_events_and_expiry() -> None:
    """An event a pattern key took marks that edge; an expiry marks the expiry edge."""
    flow = full_flow()
    history: list[dict[str, Any]] = [
        {"state": "make_pkce", "from": None, "event": None},
        {"state": "request_token", "from": "make_pkce", "event": "ok"},
        {"state": "unavailable", "from": "request_token", "event": "http.503"},
    ]
    expiry: list[dict[str, Any]] = [
        {"state": "make_pkce", "from": None, "event": None},
        {"state": "expired", "from": "make_pkce", "event": "expired"},
    ]

    by_pattern = parse(to_mermaid(flow, run=run_path(history)))
    by_expiry = parse(to_mermaid(flow, run=run_path(expiry)))

    assert (
        "request_token",
        "unavailable",
        "http.5xx ✓, transport.*",
    ) in by_pattern.named_edges()
    assert ("run expires", "expired", "✓") in by_expiry.named_edges()


def test_a_shared_edge_marks_the_transitions_the_run_could_have_taken() -> None:
    """On an edge of several transitions, ✓ follows each that the event fits."""
    flow = Flow(
        name="shared",
        initial="a",
        states={
            "a": State(
                "a",
                "pass",
                transitions=(
                    t("ok", "b", when=Condition("absent", template("${data.x}"))),
                    t("ok", "b"),
                    t("skip", "b"),
                ),
            ),
            "b": State("b", "final"),
        },
    )
    history = [
        {"state": "a", "from": None, "event": None},
        {"state": "b", "from": "a", "event": "ok"},
    ]

    drawn = parse(to_mermaid(flow, run=run_path(history)))

    assert ("a", "b", "ok [absent] ✓, ok ✓, skip") in drawn.named_edges()
    assert_shows(flow, drawn)


def test_run_that_does_not_fit_the_flow_is_refused() -> None:
    """A run naming an unknown state, or a transition the flow lacks, is refused.

    A state the run entered that the flow lacks is the cause given, even
    when the run stands in it: the flow was changed since the run began.
    """
    flow = full_flow()

    with pytest.raises(
        DiagramError,
        match=r"^The run names the state 'nowhere', which the flow 'every-feature' "
        r"does not have; was it started from another version of the flow\?$",
    ):
        to_mermaid(flow, run=RunPath(visited=("make_pkce", "nowhere")))
    with pytest.raises(DiagramError, match=r"another version of the flow\?$"):
        to_mermaid(flow, run=RunPath(("make_pkce", "nowhere"), current="nowhere"))
    with pytest.raises(
        DiagramError,
        match=r"from 'make_pkce' to 'end' on the event 'ok', but the flow "
        r"'every-feature' has no such transition; was it started from another "
        r"version of the flow\?$",
    ):
        to_dot(flow, run=RunPath(taken=(("make_pkce", "ok", "end"),)))


# -- committed diagrams ---------------------------------------------------------


@needs_dot
def test_write_all_writes_diagrams_and_readme(tmp_path: Path) -> None:
    """write_all writes .mmd and .svg per flow, and a README embedding them all."""
    flows = [small_flow("beta"), full_flow("alpha")]

    written = write_all(flows, tmp_path / "diagrams")

    out = tmp_path / "diagrams"
    assert [path.name for path in written] == [
        "alpha.mmd",
        "alpha.svg",
        "beta.mmd",
        "beta.svg",
        "README.md",
    ]
    assert (out / "alpha.mmd").read_text() == to_mermaid(flows[1])
    assert ET.fromstring((out / "beta.svg").read_bytes()).tag == f"{SVG}svg"
    readme = (out / "README.md").read_text()
    assert readme.startswith(
        "# Flow diagrams\n\nDrawn by mfaflow from the flow definitions; do not "
        "edit them by hand, but draw them again.\n"
    )
    assert "mfaflow diagram" not in readme
    assert f"```mermaid\n{to_mermaid(flows[0])}```" in readme
    assert "[SVG](alpha.svg)" in readme
    assert "\n![alpha, drawn by Graphviz](alpha.svg)\n" in readme
    assert readme.index("## alpha") < readme.index("## beta")
    assert check_all(flows, out) == []
    assert write_all(flows, out) == []


@needs_dot
@pytest.mark.parametrize(
    ("flow_dirs", "title", "command"),
    [
        ((), "the shipped flows", "mfaflow diagram --all -o out"),
        (
            ("my flows/", "more"),
            "the flows in `my flows/` and `more/`",
            "mfaflow diagram --all --flows 'my flows' --flows more -o out",
        ),
    ],
)
def test_the_readme_names_the_folders_drawn_and_the_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flow_dirs: tuple[str, ...],
    title: str,
    command: str,
) -> None:
    """The README's title and command name the folders the flows came from."""
    monkeypatch.chdir(tmp_path)

    write_all([small_flow("one")], "out", flow_dirs=flow_dirs)

    readme = (tmp_path / "out" / "README.md").read_text()
    assert readme.startswith(
        f"# Diagrams of {title}\n\nDrawn by mfaflow from the flow definitions; do "
        f"not edit them by hand. Regenerate them with:\n\n    {command}\n\n"
    )
    assert check_all([small_flow("one")], "out", flow_dirs=flow_dirs) == []
    assert check_all([small_flow("one")], "out") == ["README.md"]


EMBEDDING = """\
# My project

<!-- diagram: one -->
```mermaid
stateDiagram-v2
    old
```

Text kept as it is.

<!-- diagram: two -->
```mermaid
```
"""


@needs_dot
def test_write_all_brings_embedded_diagrams_up_to_date(tmp_path: Path) -> None:
    """Each mermaid block below a diagram line becomes that flow's diagram; no more."""
    notes = tmp_path / "notes.md"
    notes.write_text(EMBEDDING)
    flows = [small_flow("one"), small_flow("two", "finished")]

    stale = check_all(flows, tmp_path / "out", embed=[notes])
    written = write_all(flows, tmp_path / "out", embed=[notes])

    assert stale[-1] == str(notes)
    assert written[-1] == notes
    assert notes.read_text() == (
        EMBEDDING.replace("stateDiagram-v2\n    old\n", to_mermaid(flows[0])).replace(
            "```mermaid\n```", f"```mermaid\n{to_mermaid(flows[1])}```"
        )
    )
    assert check_all(flows, tmp_path / "out", embed=[notes]) == []
    assert write_all(flows, tmp_path / "out", embed=[notes]) == []


def test_a_file_to_embed_in_must_name_flows_drawn(tmp_path: Path) -> None:
    """A file to embed in that is missing, names no diagram or an unknown flow fails."""
    plain, unknown = tmp_path / "plain.md", tmp_path / "unknown.md"
    plain.write_text("# Nothing to embed\n")
    unknown.write_text(EMBEDDING)
    out = tmp_path / "out"

    cases = {
        tmp_path / "missing.md": r"^Cannot read '.*missing\.md' to embed diagrams in: "
        r"No such file or directory\.$",
        plain: r"^'.*plain\.md' has no line '<!-- diagram: NAME -->' right above a "
        r"mermaid block, so no diagram can be embedded in it\.$",
        unknown: r"^'.*unknown\.md' embeds the diagram of the flow 'two', which is "
        r"not among the flows drawn \('one'\)\.$",
    }
    for path, message in cases.items():
        with pytest.raises(DiagramError, match=message):
            write_all([small_flow("one")], out, embed=[path])

    assert not out.exists()
    assert unknown.read_text() == EMBEDDING


@needs_dot
def test_check_all_finds_stale_missing_and_orphaned_files(tmp_path: Path) -> None:
    """check_all names changed, missing, outdated and orphaned files, and the README."""
    write_all([small_flow("one"), small_flow("two"), small_flow("gone")], tmp_path)
    (tmp_path / "one.mmd").write_text("stateDiagram-v2\n")
    (tmp_path / "mine.mmd").write_text("stateDiagram-v2\n")  # not drawn by mfaflow
    (tmp_path / "two.svg").unlink()

    stale = check_all([small_flow("one"), small_flow("two")], tmp_path)

    assert stale == ["one.mmd", "two.svg", "README.md", "gone.mmd", "gone.svg"]
    assert check_all([small_flow("one", "finished")], tmp_path)[:2] == [
        "one.mmd",
        "one.svg",
    ]
    write_all([small_flow("one"), small_flow("two")], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md",
        "mine.mmd",
        "one.mmd",
        "one.svg",
        "two.mmd",
        "two.svg",
    ]


@needs_dot
def test_svg_check_ignores_the_graphviz_version(tmp_path: Path) -> None:
    """An SVG drawn from the same DOT text by another Graphviz is still current."""
    flows = [small_flow("one")]
    write_all(flows, tmp_path)
    svg = tmp_path / "one.svg"
    svg.write_text(
        re.sub(r"graphviz version [^\n]*", "graphviz version 99.0", svg.read_text())
    )

    assert check_all(flows, tmp_path) == []


@needs_dot
def test_svg_cut_short_or_edited_is_redrawn(tmp_path: Path) -> None:
    """An SVG with the right digest that is cut short or lacks a node is redrawn."""
    flows = [small_flow("one"), small_flow("two")]
    write_all(flows, tmp_path)
    whole = (tmp_path / "one.svg").read_bytes()
    (tmp_path / "one.svg").write_bytes(whole[: len(whole) // 2])
    edited = re.sub(
        r'<g id="node\d+" class="node">\s*<title>s_done</title>.*?</g>',
        "",
        (tmp_path / "two.svg").read_text(),
        flags=re.S,
    )
    (tmp_path / "two.svg").write_text(edited)

    assert check_all(flows, tmp_path) == ["one.svg", "two.svg"]
    assert write_all(flows, tmp_path) == [tmp_path / "one.svg", tmp_path / "two.svg"]
    assert (tmp_path / "one.svg").read_bytes() == whole
    assert check_all(flows, tmp_path) == []


@needs_dot
def test_svg_with_an_edge_or_a_text_edited_is_redrawn(tmp_path: Path) -> None:
    """An SVG with the right digest but edges removed or a label changed is redrawn."""
    flows = [full_flow("one"), full_flow("two")]
    write_all(flows, tmp_path)
    one, two = tmp_path / "one.svg", tmp_path / "two.svg"
    edge = r'<g id="edge\d+" class="edge">.*?</g>\n'
    one.write_text(re.sub(edge, "", one.read_text(), count=3, flags=re.S))
    two.write_text(two.read_text().replace(">catch: *<", ">catch: http.*<"))

    assert check_all(flows, tmp_path) == ["one.svg", "two.svg"]


@needs_dot
def test_svg_shows_an_ampersand_as_written() -> None:
    """A URL path holding '&amp;' is drawn as written, not decoded to '&'."""
    flow = parse_flow(
        "mfaflow: 1\nname: amp\ninitial: a\nstates:\n  a:\n    call: "
        "{method: POST, url: '/x&amp;y'}\n    on: {ok: done}\n  done: {final: true}\n",
        "amp.yaml",
    )

    svg = ET.fromstring(render(flow, "svg"))

    texts = ["".join(text.itertext()) for text in svg.iter(f"{SVG}text")]
    assert "POST /x&amp;y" in texts


def test_write_all_without_dot_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without Graphviz, write_all fails with an install hint and writes nothing."""
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    out = tmp_path / "diagrams"

    with pytest.raises(DiagramError) as caught:
        write_all([small_flow("one")], out)

    assert str(caught.value) == (
        "Graphviz's 'dot' program, which draws the SVG diagrams, was not found on "
        "PATH; install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew "
        "install graphviz)."
    )

    assert not out.exists()


@needs_dot
def test_write_all_into_a_file_fails_clearly(tmp_path: Path) -> None:
    """An output folder that cannot be made is reported with its path."""
    blocker = tmp_path / "diagrams"
    blocker.write_text("a file, not a folder")

    with pytest.raises(
        DiagramError, match=r"^Cannot write the diagrams to '.*diagrams'"
    ):
        write_all([small_flow("one")], blocker)

    assert blocker.read_text() == "a file, not a folder"


def test_write_all_keeps_a_readme_it_did_not_write(tmp_path: Path) -> None:
    """A README.md of the user's own stops write_all and check_all; none is written."""
    (tmp_path / "README.md").write_text("# notes\n\nMine.\n")

    for call in (write_all, check_all):
        with pytest.raises(
            DiagramError,
            match=r"^The folder '.*' holds a README\.md that mfaflow did not write; "
            r"move it, or draw the diagrams into another folder\.$",
        ):
            call([small_flow("one")], tmp_path)

    assert [path.name for path in tmp_path.iterdir()] == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "# notes\n\nMine.\n"


def test_write_all_refuses_clashing_or_unsafe_names(tmp_path: Path) -> None:
    """Two flows with one name, or a name that is not a plain file name, are refused."""
    with pytest.raises(DiagramError, match=r"^Two flows are named 'one'"):
        check_all([small_flow("one"), small_flow("one")], tmp_path)
    with pytest.raises(
        DiagramError, match=r"^The flow name '\.\./x' cannot name a diagram file"
    ):
        write_all([small_flow("../x")], tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- flow files ----------------------------------------------------------------

SHIPPED = sorted((REPO / "flows").glob("*.yaml"))

FULL_YAML = """\
mfaflow: 1
name: from-yaml
inputs:
  username: {}
  password: {secret: true, default: Zq7-s3cr3t-VALUE-91}
data:
  mfa_token: {secret: true}
expires_in: 600
on_expiry: expired
initial: request_token
states:
  request_token:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: password
        username: '${inputs.username}'
        password: '${inputs.password}'
    on:
      ok: done
      mfa_required: {to: step_up, save: {mfa_token: '${response.body.mfa_token}'}}
      authorization_pending: {to: request_token, delay: 5}
      invalid_grant:
        - {to: rejected, when: {equals: ['${error.description}', 'Too many attempts.']}}
        - {to: ask_code}
    retry: [{errors: [http.5xx, transport.timeout], attempts: 3}]
    catch: [{errors: ['transport.*'], to: rejected}]
  ask_code:
    input:
      otp: {secret: true, pattern: '^[0-9]{6}$'}
    on: {ok: request_token}
  step_up:
    flow: from-yaml
    with: {mfa_token: '${data.mfa_token}'}
    on: {success: done, failure: rejected}
  done: {final: true}
  rejected: {final: true, outcome: failure}
  expired: {final: true, outcome: expired}
"""


def test_flow_parsed_from_yaml_is_drawn_whole() -> None:
    """A flow read from YAML is drawn with every state and transition, no secret."""
    flow = parse_flow(FULL_YAML, "from-yaml.yaml")

    assert_shows(flow, parse(to_mermaid(flow)))
    assert SECRET not in to_mermaid(flow) + to_dot(flow)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_shipped_flow_is_drawn_whole(path: Path) -> None:
    """Each shipped flow gives a diagram with every state and transition."""
    flow = load_flow(path)

    assert_shows(flow, parse(to_mermaid(flow)))


def test_committed_diagrams_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """The diagrams in diagrams/, and the one README.md embeds, match the flows."""
    assert SHIPPED, "flows/ holds no flow"
    monkeypatch.chdir(REPO)

    stale = check_all(
        [load_flow(path) for path in SHIPPED],
        "diagrams",
        flow_dirs=["flows"],
        embed=["README.md"],
    )

    assert stale == [], f"stale diagrams {stale}; run: {REGENERATE_COMMAND}"


@pytest.mark.parametrize(
    "path", sorted((REPO / "diagrams").glob("*.svg")), ids=lambda path: path.stem
)
def test_committed_svg_is_a_whole_drawing(path: Path) -> None:
    """Each committed SVG parses as SVG and draws exactly the DOT text's nodes."""
    nodes, _ = dot_graph(to_dot(load_flow(REPO / "flows" / f"{path.stem}.yaml")))

    root = ET.fromstring(path.read_bytes())

    assert root.tag == f"{SVG}svg"
    titles = [
        g.findtext(f"{SVG}title")
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "node"
    ]
    assert sorted(map(str, titles)) == sorted(nodes)


def test_the_regeneration_command_is_documented() -> None:
    """The READMEs and the diagrams guide name the command the check names."""
    assert REGENERATE_COMMAND == (
        "mfaflow diagram --all --flows flows -o diagrams --embed README.md"
    )
    for doc in ("README.md", "diagrams/README.md", "docs/diagrams.md"):
        assert REGENERATE_COMMAND in (REPO / doc).read_text(encoding="utf-8")


def test_a_run_of_the_engine_is_drawn() -> None:
    """The history the engine records draws as the path the run took."""
    flow = parse_flow(FLOW, f"{FLOW_NAME}.yaml")
    client = Client("https://tenant.example.test/", CLIENT_ID)
    runner = Engine(client, transport=WSGITransport(token_endpoint))

    waiting = runner.start(flow, {"username": USERNAME, "password": PASSWORD})
    halfway = parse(to_mermaid(flow, run=run_path(waiting.history, waiting.state)))
    ended = runner.resume(waiting.run_id, {"otp": OTP})
    whole = parse(to_mermaid(flow, run=run_path(ended.history, flow=flow.name)))

    assert halfway.named_class("visited") == {"request_token"}
    assert halfway.named_class("current") == {"ask_code"}
    assert whole.named_class("visited") == {
        "request_token",
        "ask_code",
        "verify",
        "done",
    }
    taken = {(s, d) for s, d, label in whole.named_edges() if label.endswith("✓")}
    assert taken == {
        ("[*]", "request_token"),
        ("request_token", "ask_code"),
        ("ask_code", "verify"),
        ("verify", "done"),
    }


OUTER_FLOW = """\
mfaflow: 1
name: outer
initial: request_token
states:
  request_token:
    call: {method: POST, url: /oauth/token, form: {grant_type: password}}
    on: {ok: done, mfa_required: step_up}
  step_up:
    flow: inner
    on: {success: done, failure: rejected}
  done: {final: true}
  rejected: {final: true, outcome: failure}
"""
INNER_FLOW = """\
mfaflow: 1
name: inner
initial: ask_code
states:
  ask_code:
    input: {otp: {secret: true}}
    on: {ok: verify}
  verify:
    call: {method: POST, url: /oauth/token, form: {otp: '${inputs.otp}'}}
    on: {ok: verified, invalid_grant: rejected}
  verified: {final: true}
  rejected: {final: true, outcome: failure}
"""


def step_up_engine(folder: Path) -> Engine:
    """An engine for OUTER_FLOW and INNER_FLOW in ``folder``: a step-up, then tokens."""
    (folder / "outer.yaml").write_text(OUTER_FLOW)
    (folder / "inner.yaml").write_text(INNER_FLOW)
    bodies = iter([(403, {"error": "mfa_required"}), (200, {"access_token": SECRET})])

    def answer(request: Any) -> Any:
        status, body = next(bodies)
        headers = {"Content-Type": "application/json"}
        return Response(status, headers, json.dumps(body).encode())

    client = Client("https://tenant.example.test/", "app")
    return Engine(client, transport=MockTransport(answer), flow_paths=[folder])


def test_run_path_of_a_run_result_marks_where_it_stands_in_each_flow(
    tmp_path: Path,
) -> None:
    """A RunResult waiting in a sub-flow gives each flow its own part of the run."""
    engine = step_up_engine(tmp_path)
    outer, inner = (load_flow(tmp_path / f"{n}.yaml") for n in ("outer", "inner"))

    waiting = engine.start("outer", {})

    assert waiting.state == "ask_code"
    assert run_path(waiting) == RunPath(
        visited=("request_token", "step_up"),
        current="step_up",
        taken=(("request_token", "mfa_required", "step_up"),),
    )
    assert run_path(waiting, flow="inner") == RunPath(("ask_code",), "ask_code")
    drawn = parse(to_mermaid(outer, run=run_path(waiting)))
    assert drawn.named_class("current") == {"step_up"}
    assert drawn.named_class("visited") == {"request_token"}
    inside = parse(to_mermaid(inner, run=run_path(waiting, flow="inner")))
    assert inside.named_class("current") == {"ask_code"}


def test_run_path_of_an_ended_run_result_marks_no_current_state(
    tmp_path: Path,
) -> None:
    """An ended RunResult's path has every state it entered and no current state."""
    engine = step_up_engine(tmp_path)
    waiting = engine.start("outer", {})

    ended = engine.resume(waiting.run_id, {"otp": "123456"})

    assert run_path(ended) == RunPath(
        visited=("request_token", "step_up", "done"),
        taken=(
            ("request_token", "mfa_required", "step_up"),
            ("step_up", "success", "done"),
        ),
    )
    assert run_path(ended, flow="inner").visited == ("ask_code", "verify", "verified")
    assert run_path(ended, flow="inner").current is None


def test_run_path_of_a_run_result_out_of_a_finished_sub_flow() -> None:
    """Once a sub-flow has ended, a run standing in its parent stands nowhere in it."""
    history = [
        HistoryEntry("outer", "request_token", None, None, 0.0),
        HistoryEntry("outer", "step_up", "request_token", "mfa_required", 1.0),
        HistoryEntry("inner", "ask_code", None, None, 2.0),
        HistoryEntry("outer", "ask_again", "step_up", "expired", 3.0),
    ]
    result = RunResult("r1", "outer", "waiting", "ask_again", history=tuple(history))

    assert run_path(result).current == "ask_again"
    assert run_path(result, flow="inner") == RunPath(("ask_code",))


def test_a_sub_flow_state_given_as_current_is_refused_with_the_way_out(
    tmp_path: Path,
) -> None:
    """The innermost state of a run, given for its outer flow, is refused clearly."""
    engine = step_up_engine(tmp_path)
    waiting = engine.start("outer", {})
    outer = load_flow(tmp_path / "outer.yaml")

    with pytest.raises(
        DiagramError,
        match=r"^The run stands in the state 'ask_code', which the flow 'outer' "
        r"does not have; .* pass the RunResult itself to run_path, .*\.$",
    ):
        to_mermaid(outer, run=run_path(waiting.history, waiting.state, flow="outer"))


@needs_dot
def test_the_python_example_of_the_diagrams_guide_runs(
    mfaflow_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/diagrams.md's example draws a flow, both parts of a login, a folder."""
    guide = (REPO / "docs" / "diagrams.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"^```python\n(.*?)^```$", guide, re.M | re.S)
    scope = {"engine": mfaflow_engine, "email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    monkeypatch.chdir(tmp_path)

    exec(compile(example, "docs/diagrams.md", "exec"), scope)

    assert scope["inner"] == "mfa-enroll"
    assert parse(scope["outer_part"]).named_class("current") == {"step_up"}
    assert parse(scope["inner_part"]).named_class("current") == {"ask_factor"}
    assert ET.fromstring(scope["svg"]).tag == f"{SVG}svg"
    assert [path.name for path in scope["changed"]] == [
        "password-grant.mmd",
        "password-grant.svg",
        "README.md",
    ]
