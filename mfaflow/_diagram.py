"""Diagrams of flows and of runs: Mermaid, Graphviz DOT, SVG and PNG.

One walk over a definition builds a neutral graph: nodes (the states, a
pseudo-state for the run's expiry, and one naming the states that share
catch rules) and edges (transitions, retry rules, catch rules, the start,
and the expiry), each with its text and its look. One small emitter per
format writes that graph out, so every format shows the same things.

Only names reach a diagram (of states, events, guards, actions, sub-flows and
inputs), with literal numbers (delays, attempts), literal URL paths and, as
an SVG's tooltips, the descriptions the flow's author wrote of its states:
never a template, a ``save``, a ``with`` argument, a request body or an
input's default. So no secret can leak into one.

Output is deterministic: the same flow gives the same text, so generated
diagrams can be committed and compared with a fresh rendering.

Mermaid notes (checked with the real Mermaid 11.12, 11.16 and 11.17; GitHub
renders Mermaid 11):

- State ids are ``s_<name>`` (or ``x_<hex>`` for a name that is not a plain
  word), so no state can clash with a keyword such as ``end`` or ``note``.
- A label runs to the end of its line and stops at ``:`` or ``;``; its text
  is then read as Markdown (``*a*`` and ``_a_`` turn italic), as HTML and as
  KaTeX (between ``$$``). So every character that ends a label or means
  something there (``: ; " < > & % # * ` ~ $`` and the backslash) is
  written as an entity code such as ``#58;``, and so is an underscore that
  is not between two letters or digits (``_a_``, not ``list_factors``).
  Mermaid decodes entity codes in state and edge labels alike, after
  reading the Markdown: the diagram shows ``retry: transport.*`` as written.
- A state label of several lines (joined by ``<br>``) is read as HTML
  before Markdown, which decodes the entity codes too early; so a state's
  name is its label and what it does is its description (``s_x : ...``),
  which Mermaid draws below a divider.
- ``direction LR`` (or TB, BT, RL) anywhere in a line is read as a layout
  statement, so the space after ``direction`` is written ``#32;``.
- Mermaid draws one self-loop per state and drops the others: the
  self-loops of a state are written as one edge, their labels one per line
  (joined by ``<br>``).
- State diagrams have no ``linkStyle``: an edge a run took ends its label
  with ``✓``. Visited states and the current state get their own classes,
  which set the border's colour and width and are written after those of
  the kinds of states, so they combine with a kind's fill and dashes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, overload
from urllib.parse import urlsplit

from attrs import evolve, frozen

from ._errors import MfaflowError
from ._model import CatchRule, Condition, Flow, State, Transition, event_matches
from ._run import HistoryEntry, RunResult

__all__ = [
    "FORMATS",
    "REGENERATE_COMMAND",
    "DiagramError",
    "RunPath",
    "check_all",
    "regenerate_command",
    "render",
    "run_path",
    "to_dot",
    "to_mermaid",
    "write_all",
]

logger = logging.getLogger(__name__)

#: The formats :func:`render` knows.
FORMATS = ("mermaid", "dot", "svg", "png")


def regenerate_command(
    out_dir: str | os.PathLike[str],
    flow_dirs: Iterable[str | os.PathLike[str]] = (),
    embed: Iterable[str | os.PathLike[str]] = (),
) -> str:
    """The ``mfaflow`` command that draws the flows of ``flow_dirs`` into ``out_dir``.

    Without ``flow_dirs`` the command draws the flows shipped with mfaflow;
    with ``embed`` it also brings the diagram blocks of those files up to
    date (see :func:`write_all`). Paths are shown as :class:`~pathlib.Path`
    shows them, so ``diagrams/`` and ``diagrams`` give the same command.
    """
    flows = "".join(f" --flows {_shown(path)}" for path in flow_dirs)
    files = "".join(f" --embed {_shown(path)}" for path in embed)
    return f"mfaflow diagram --all{flows} -o {_shown(out_dir)}{files}"


def _shown(path: str | os.PathLike[str]) -> str:
    return shlex.quote(os.fspath(Path(path)))


#: The command that regenerates the committed diagrams from the flows of a
#: checkout (not those of the installed package), with the diagram the
#: project's README embeds; named in the diagrams' README.
REGENERATE_COMMAND = regenerate_command("diagrams", ["flows"], ["README.md"])

_INSTALL_DOT = "Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz"
_NO_DOT = (
    f"Graphviz's 'dot' program was not found on PATH; install it ({_INSTALL_DOT}) "
    "or draw the flow as Mermaid or DOT text, which need no program."
)
_NO_DOT_FOR_FILES = (
    "Graphviz's 'dot' program, which draws the SVG diagrams, was not found on "
    f"PATH; install it ({_INSTALL_DOT})."
)
_DIGEST = re.compile(r"mfaflow dot sha256 ([0-9a-f]{64})")
_SVG = "{http://www.w3.org/2000/svg}"
_MARKER = "drawn by mfaflow."
#: How a README that write_all wrote begins (after its title): any other
#: README.md in the folder is the user's own, and is never replaced.
_README_MARK = "Drawn by mfaflow from the flow definitions"

# Pseudo-nodes; state ids always start with "s_" or "x_", so these never clash.
_START, _END, _EXPIRY = "start", "end", "expiry"
#: The title of a pseudo-state that names the states sharing catch rules,
#: and how many states must share them for it to be drawn.
_CAUGHT, _SHARED = "caught in", 3


@frozen
class _Look:
    """How a kind of state is drawn: its fill, its border's colour and dashes.

    Each fill is far from the others and from Mermaid's own (``#ececff``),
    and dark text reads on all of them. Sub-flows and final states also
    differ by their dashes, which the highlight of a run (which sets the
    border's colour and width) leaves as they are.
    """

    fill: str
    stroke: str
    dashes: str = ""  # an SVG stroke-dasharray; none for a solid border


_LOOKS = {
    "wait": _Look("#fff1a8", "#9a6700"),
    "subflow": _Look("#8cccff", "#0550ae", "8 3"),
    "success": _Look("#aceebb", "#1a7f37", "2 2"),
    "failure": _Look("#ffc1bc", "#cf222e", "2 2"),
    "expired": _Look("#a8b0ba", "#424a53", "2 2"),
    "caught": _Look("#ffffff", "#424a53"),
}
_TEXT = "#1f2328"
_BORDER = {"visited": "#0969da", "current": "#bf3989"}
_BORDER_WIDTH = {"visited": 3, "current": 4}


class DiagramError(MfaflowError):
    """A diagram cannot be drawn, or written, or the run does not fit the flow."""


@frozen
class RunPath:
    """The path of one run through a flow, to highlight in a diagram.

    ``visited`` lists the states in the order the run entered them (a state
    entered twice is listed twice); ``current`` is the state to mark as
    where the run stands, if any; ``taken`` lists each transition taken as
    ``(source, event, target)``.
    """

    visited: tuple[str, ...] = ()
    current: str | None = None
    taken: tuple[tuple[str, str, str], ...] = ()


class _HasToDict(Protocol):
    def to_dict(self) -> Mapping[str, Any]: ...


def run_path(
    run: RunResult | Iterable[Mapping[str, Any] | _HasToDict],
    current: str | None = None,
    *,
    flow: str | None = None,
) -> RunPath:
    """The path of a run through one of its flows, from the run's history.

    ``run_path(result)`` gives the path of a :class:`RunResult` (what
    :meth:`Engine.start` and :meth:`Engine.resume` return) through the flow
    it started, and ``run_path(result, flow="mfa-challenge")`` its path
    through a sub-flow, such as the one where a login waits for a code.

    Args:
        run: a :class:`RunResult`, or the run's history entries, oldest
            first: mappings with ``flow`` (the flow of the entry),
            ``state`` (the state entered), ``from`` (the state left, or
            ``None`` for a start) and ``event`` (what led there), or objects
            with a ``to_dict()`` giving such a mapping (as stored runs and
            :attr:`RunResult.history` hold them).
        current: the state to mark as where the run stands. For a
            :class:`RunResult` it is found when not given: the state the run
            stands in within ``flow``, or none when the run has ended or
            does not stand in that flow. For history entries it is ``None``
            unless given.
        flow: only the entries of this flow count, which leaves out the
            states of the other flows run inside the same run. For a
            :class:`RunResult` it is the flow the run started unless given;
            for history entries every entry counts unless it is given.

    Raises:
        DiagramError: an entry has no state name.
    """
    if isinstance(run, RunResult):
        flow = run.flow if flow is None else flow
        if current is None and not run.ended:
            current = _standing_state(run.history, flow)
        history: Iterable[Mapping[str, Any] | _HasToDict] = run.history
    else:
        history = run

    visited: list[str] = []
    taken: list[tuple[str, str, str]] = []
    for index, raw in enumerate(_entries(history)):
        if flow is not None and raw.get("flow", flow) != flow:
            continue
        state, source, event = raw.get("state"), raw.get("from"), raw.get("event")
        if not isinstance(state, str):
            raise DiagramError(
                f"The history entry {index} has the state {state!r}; expected the "
                "name of the state the run entered."
            )
        visited.append(state)
        if source is not None:
            taken.append((str(source), "" if event is None else str(event), state))
    return RunPath(tuple(visited), current, tuple(taken))


def _entries(
    history: Iterable[Mapping[str, Any] | _HasToDict],
) -> Iterator[Mapping[str, Any]]:
    for entry in history:
        yield entry if isinstance(entry, Mapping) else entry.to_dict()


def _standing_state(history: Iterable[HistoryEntry], flow: str) -> str | None:
    """The state the run stands in within ``flow``, from its history alone.

    The history is replayed on a stack of frames: a start (an entry without
    ``from``) opens a frame, and a transition of a frame further down ends
    the frames above it (a sub-flow that finished, or a run that expired
    in an outer flow).
    """
    frames: list[tuple[str, str]] = []
    for entry in history:
        if entry.source is not None:
            while frames and frames[-1] != (entry.flow, entry.source):
                frames.pop()
            frames[-1:] = []
        frames.append((entry.flow, entry.state))
    return next((state for name, state in reversed(frames) if name == flow), None)


# -- the neutral graph ---------------------------------------------------


@frozen
class _Node:
    id: str
    title: str
    details: tuple[str, ...] = ()  # what the state does, a line each
    look: str | None = None  # a key of _LOOKS
    mark: str | None = None  # a key of _BORDER
    tooltip: str = ""  # the state's description, shown on hover in an SVG


@frozen
class _Edge:
    source: str
    target: str
    label: str
    kind: Literal["start", "on", "retry", "catch", "expiry"]
    events: tuple[str, ...] = ()
    wait: bool = False
    taken: bool = False
    # Of transitions that share an edge: the text and event of each, and the
    # events a run took along the edge, so that a label can tell which.
    parts: tuple[tuple[str, str], ...] = ()
    took: frozenset[str] = frozenset()
    # Of a catch rule drawn once for the states that share it: their ids.
    origins: tuple[str, ...] = ()

    def leaves(self, node: str) -> bool:
        """Whether the edge stands for a way out of ``node``."""
        return node == self.source or node in self.origins


@frozen
class _Graph:
    nodes: tuple[_Node, ...]
    edges: tuple[_Edge, ...]


def _node_id(state: str) -> str:
    if re.fullmatch(r"\w+", state, re.ASCII):
        return "s_" + state
    return "x_" + state.encode().hex()


def _graph(flow: Flow, run: RunPath | None) -> _Graph:
    """The nodes and edges of ``flow``, in file order, marked with ``run``.

    A final state has no edge to the end: its look says it is final. The
    catch rules that many states share are drawn once (see :func:`_shared`).
    """
    shared = _shared(flow)
    sharing = {name for names in shared for name in names}
    nodes = [_state_node(state) for state in flow.states.values()]
    edges = [_Edge(_START, _node_id(flow.initial), "", "start")]
    for state in flow.states.values():
        edges += _state_edges(state, catches=state.name not in sharing)
    for more_nodes, more_edges in (_caught(shared), _expiry(flow)):
        nodes += more_nodes
        edges += more_edges
    graph = _Graph(tuple(nodes), tuple(edges))
    return graph if run is None else _highlight(graph, flow, run)


def _caught(
    shared: Mapping[tuple[str, ...], tuple[CatchRule, ...]],
) -> tuple[list[_Node], list[_Edge]]:
    """A caught-in box for each group of states sharing catch rules, and its edges."""
    nodes, edges = [], []
    for number, (names, rules) in enumerate(shared.items(), start=1):
        box = f"caught{number}"
        nodes.append(_Node(box, _CAUGHT, _name_lines(names), "caught"))
        origins = tuple(map(_node_id, names))
        edges += [_catch_edge(box, rule, origins) for rule in rules]
    return nodes, edges


def _expiry(flow: Flow) -> tuple[list[_Node], list[_Edge]]:
    """The run's expiry and where it leads, if a run of ``flow`` can expire."""
    when = _expiry_text(flow)
    if when is None:
        return [], []
    node = _Node(_EXPIRY, "run expires", (when,) if when else (), "wait")
    target = _END if flow.on_expiry is None else _node_id(flow.on_expiry)
    return [node], [_Edge(_EXPIRY, target, "", "expiry")]


def _shared(flow: Flow) -> dict[tuple[str, ...], tuple[CatchRule, ...]]:
    """The catch rules drawn once, by the names of the states that share them.

    States whose catch rules are the same (same errors, same targets, in the
    same order) share them when there are at least :data:`_SHARED` of them:
    a pseudo-state names them, and one edge per rule leaves it. Drawn on
    every state, such rules were a quarter of a large flow's edges.
    """
    by_rules: dict[tuple[tuple[tuple[str, ...], str], ...], list[State]] = {}
    for state in flow.states.values():
        if state.catch:
            rules = tuple((rule.errors, rule.target) for rule in state.catch)
            by_rules.setdefault(rules, []).append(state)
    return {
        tuple(state.name for state in states): states[0].catch
        for states in by_rules.values()
        if len(states) >= _SHARED
    }


def _name_lines(names: tuple[str, ...], per_line: int = 3) -> tuple[str, ...]:
    return tuple(
        ", ".join(names[i : i + per_line]) for i in range(0, len(names), per_line)
    )


def _expiry_text(flow: Flow) -> str | None:
    """When a run of ``flow`` expires, in a few words; ``None`` if it never does.

    The flow's ``expires_in`` counts from the start; a transition's sets
    the expiry anew when it is taken.
    """
    by_transition = any(
        t.expires_in is not None for s in flow.states.values() for t in s.transitions
    )
    if flow.expires_in is not None:
        again = ", or as a transition resets it" if by_transition else ""
        return _after(flow.expires_in) + again
    if by_transition:
        return "as a transition sets it"
    return "" if flow.on_expiry is not None else None


def _state_node(state: State) -> _Node:
    detail, look = _kind_text(state)
    details = (detail,) if detail else ()
    return _Node(
        _node_id(state.name), state.name, details, look, tooltip=state.description
    )


def _kind_text(state: State) -> tuple[str, str | None]:
    """What entering ``state`` does, in a few words, and the look of its node."""
    if state.kind == "final":
        return state.outcome, state.outcome
    if state.kind == "input":
        names = ", ".join(spec.name for spec in state.inputs) or "input"
        return f"waits for {names}", "wait"
    if state.kind == "flow":
        return f"sub-flow {state.flow}", "subflow"
    if state.kind == "action":
        return f"action {state.action}", None
    if state.kind == "call":
        return _call_text(state), None
    return "", None


def _call_text(state: State) -> str:
    # A literal URL shows its path only: a query string or user info might
    # carry a secret. A template URL is not shown at all.
    call = state.call
    assert call is not None
    where = call.endpoint or (
        urlsplit(call.url).path if isinstance(call.url, str) else ""
    )
    return f"{call.method.upper()} {where}".strip()


def _state_edges(state: State, *, catches: bool = True) -> list[_Edge]:
    """The edges out of ``state``; its catch rules' only if ``catches``."""
    own = _node_id(state.name)
    by_target: dict[str, list[Transition]] = {}
    for transition in state.transitions:
        by_target.setdefault(transition.target, []).append(transition)

    edges = []
    for target, group in by_target.items():
        # Every transition is named, even one whose text another has: they
        # differ by what a diagram does not show (a guard's arguments).
        parts = tuple((_transition_text(t), t.event) for t in group)
        label = ", ".join(text for text, _ in parts)
        events = tuple(dict.fromkeys(t.event for t in group))
        wait = any(t.delay is not None for t in group)
        edges.append(
            _Edge(own, _node_id(target), label, "on", events, wait, parts=parts)
        )
    for rule in state.retry:
        label = f"retry: {', '.join(rule.errors)} \u00d7{rule.attempts}"
        edges.append(_Edge(own, own, label, "retry", rule.errors, wait=True))
    if catches:
        edges += [_catch_edge(own, rule) for rule in state.catch]
    return edges


def _catch_edge(source: str, rule: CatchRule, origins: tuple[str, ...] = ()) -> _Edge:
    label = f"catch: {', '.join(rule.errors)}"
    target = _node_id(rule.target)
    return _Edge(source, target, label, "catch", rule.errors, origins=origins)


def _transition_text(transition: Transition) -> str:
    text = transition.event
    if transition.when is not None:
        text += f" [{_guard_text(transition.when)}]"
    if transition.delay is not None:
        text += f" ({_after(transition.delay)})"
    if transition.expires_in is not None:
        text += f" ({_expires(transition.expires_in)})"
    return text


def _guard_text(condition: Condition) -> str:
    """The guard's name; for combinators, the names of the guards inside."""
    args = condition.args
    if isinstance(args, Condition):
        return f"{condition.guard} {_guard_text(args)}"
    if (
        isinstance(args, tuple | list)
        and args
        and all(isinstance(a, Condition) for a in args)
    ):
        return f"{condition.guard}({', '.join(_guard_text(a) for a in args)})"
    return condition.guard


def _expires(seconds: Any) -> str:
    return _seconds(seconds, "expires in {}s", "sets expiry")


def _after(seconds: Any) -> str:
    return _seconds(seconds, "after {}s", "after delay")


def _seconds(value: Any, number: str, template: str) -> str:
    """``number`` with a literal number of seconds, else ``template``'s words.

    A template's value is known only while a run goes on, and may be a
    secret: it is never drawn.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number.format(f"{value:g}")
    return template


# -- highlighting a run ----------------------------------------------------


def _highlight(graph: _Graph, flow: Flow, run: RunPath) -> _Graph:
    # A state the flow lacks among those the run entered says the flow was
    # changed since; that is checked first, as it is the likelier cause of a
    # current state the flow lacks too.
    named = [*run.visited, *(name for step in run.taken for name in step[::2])]
    for name in named:
        if name not in flow.states:
            raise DiagramError(
                f"The run names the state {name!r}, which the flow {flow.name!r} "
                "does not have; was it started from another version of the flow?"
            )
    if run.current is not None and run.current not in flow.states:
        raise DiagramError(
            f"The run stands in the state {run.current!r}, which the flow "
            f"{flow.name!r} does not have; a run waiting in a sub-flow stands in "
            "that sub-flow's state, so pass the RunResult itself to run_path, or "
            "name the sub-flow with flow= and draw that flow."
        )

    visited = {_node_id(name) for name in run.visited}
    current = None if run.current is None else _node_id(run.current)
    took: dict[int, set[str]] = {}
    for step in run.taken:
        took.setdefault(_taken_index(graph, flow, step), set()).add(step[1])
    taken = set(took)
    if run.visited and run.visited[0] == flow.initial:
        taken.add(0)  # the start edge is always the first

    def mark(node: _Node) -> str | None:
        if node.id == current:
            return "current"
        return "visited" if node.id in visited else None

    return _Graph(
        tuple(evolve(node, mark=mark(node)) for node in graph.nodes),
        tuple(
            evolve(edge, taken=i in taken, took=frozenset(took.get(i, ())))
            for i, edge in enumerate(graph.edges)
        ),
    )


def _taken_index(graph: _Graph, flow: Flow, step: tuple[str, str, str]) -> int:
    """The edge a history step went along, found as the engine would choose it."""
    source, event, target = step
    ends = (_node_id(source), _node_id(target))
    for kind in ("on", "catch", "retry"):
        for index, edge in enumerate(graph.edges):
            if (
                edge.kind == kind
                and edge.leaves(ends[0])
                and edge.target == ends[1]
                and any(event_matches(p, event) is not None for p in edge.events)
            ):
                return index
    if target == flow.on_expiry:
        return next(i for i, e in enumerate(graph.edges) if e.kind == "expiry")
    raise DiagramError(
        f"The run went from {source!r} to {target!r} on the event {event!r}, but "
        f"the flow {flow.name!r} has no such transition; was it started from "
        "another version of the flow?"
    )


# -- Mermaid -----------------------------------------------------------------

# Characters that end a Mermaid label, or mean something to Markdown, HTML or
# KaTeX, as entity codes.
_MERMAID_CODED = str.maketrans({char: f"#{ord(char)};" for char in ':;"<>&%#*`~\\$'})


def _mermaid_text(text: str) -> str:
    """``text`` as a Mermaid label shows it, on one line and as written."""
    text = re.sub(r"\s", " ", text).translate(_MERMAID_CODED)
    # An underscore between two letters or digits cannot start or end
    # emphasis, so state and event names stay readable in the source.
    text = re.sub(r"(?<![^\W_])_|_(?![^\W_])", "#95;", text)
    return re.sub(r"(?i)(direction) ", r"\1#32;", text)


def to_mermaid(flow: Flow, *, run: RunPath | None = None) -> str:
    """The flow as a Mermaid ``stateDiagram-v2``, highlighting ``run`` if given.

    Raises:
        DiagramError: ``run`` names states or transitions the flow lacks.
    """
    graph = _graph(flow, run)
    looks = [name for name in [*_LOOKS, *_BORDER] if _with_class(graph, name)]
    header = f"The flow {flow.name}, version {flow.version}, {_MARKER}"

    lines = ["stateDiagram-v2", f"    %% {_mermaid_text(header)}"]
    lines += [f"    classDef {name} {_mermaid_class(name)}" for name in looks]
    for node in graph.nodes:
        lines.append(f'    state "{_mermaid_text(node.title)}" as {node.id}')
        # Mermaid draws each description of a state on a line of its own.
        lines += [f"    {node.id} : {_mermaid_text(line)}" for line in node.details]
    lines += _mermaid_edges(graph.edges)
    lines += [
        f"    class {','.join(_with_class(graph, name))} {name}" for name in looks
    ]
    return "\n".join(lines) + "\n"


def _with_class(graph: _Graph, name: str) -> list[str]:
    return [node.id for node in graph.nodes if name in (node.look, node.mark)]


def _mermaid_class(name: str) -> str:
    if name in _LOOKS:
        look = _LOOKS[name]
        dashes = f",stroke-dasharray:{look.dashes}" if look.dashes else ""
        return f"fill:{look.fill},stroke:{look.stroke}{dashes},color:{_TEXT}"
    # Written after the looks, so that its border wins over theirs.
    return f"stroke:{_BORDER[name]},stroke-width:{_BORDER_WIDTH[name]}px"


def _mermaid_edges(edges: tuple[_Edge, ...]) -> list[str]:
    """One line per edge, but one for all the self-loops of a state."""
    loops: dict[str, list[_Edge]] = {}
    for edge in edges:
        if edge.source == edge.target:
            loops.setdefault(edge.source, []).append(edge)

    lines = []
    for edge in edges:
        if edge.source != edge.target:
            lines.append(_mermaid_edge(edge.source, edge.target, [edge]))
        elif edge is loops[edge.source][0]:
            lines.append(_mermaid_edge(edge.source, edge.source, loops[edge.source]))
    return lines


def _mermaid_edge(source: str, target: str, group: list[_Edge]) -> str:
    ends = ["[*]" if node in (_START, _END) else node for node in (source, target)]
    shown = [_taken_text(edge) for edge in group]
    label = "<br>".join(_mermaid_text(text) for text in shown if text)
    line = f"    {ends[0]} --> {ends[1]}"
    return f"{line} : {label}" if label else line


def _taken_text(edge: _Edge) -> str:
    """The edge's label, with ✓ after what the run took along it."""
    if not edge.taken:
        return edge.label
    ticked = [
        (text, any(event_matches(pattern, e) is not None for e in edge.took))
        for text, pattern in edge.parts
    ]
    if not any(tick for _, tick in ticked):
        return " ".join(part for part in (edge.label, "✓") if part)
    # Transitions on the same event differ by their guards, which a run's
    # history does not record: each of them gets the mark.
    return ", ".join(text + (" ✓" if tick else "") for text, tick in ticked)


# -- Graphviz ----------------------------------------------------------------


_FONT = 'fontname="Helvetica"'
_POINT = 'style="filled", fillcolor="#1f2328", label=""'


def to_dot(flow: Flow, *, run: RunPath | None = None) -> str:
    """The flow as a Graphviz ``digraph``, highlighting ``run`` if given.

    Raises:
        DiagramError: ``run`` names states or transitions the flow lacks.
    """
    graph = _graph(flow, run)
    title = _dot_quote(_dot_label(_dot_title(flow)))
    lines = [
        f"digraph {_dot_quote(flow.name)} {{",
        f'  graph [{_FONT}, label={title}, labelloc="t"];',
        f'  node [{_FONT}, fontsize="11", shape="box", style="rounded,filled", '
        'fillcolor="#ffffff"];',
        f'  edge [{_FONT}, fontsize="10"];',
        f'  "{_START}" [shape="circle", {_POINT}, width="0.2"];',
    ]
    if _ends(graph):
        lines.append(f'  "{_END}" [shape="doublecircle", {_POINT}, width="0.15"];')
    lines += [
        f"  {_dot_quote(n.id)} [{_dot_attrs(_dot_node(n))}];" for n in graph.nodes
    ]
    for edge in graph.edges:
        ends = f"{_dot_quote(edge.source)} -> {_dot_quote(edge.target)}"
        attrs = _dot_attrs(_dot_edge(edge))
        lines.append(f"  {ends} [{attrs}];" if attrs else f"  {ends};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_title(flow: Flow) -> str:
    return f"{flow.name} v{flow.version}"


def _ends(graph: _Graph) -> bool:
    """Whether an edge of ``graph`` leads to the end, which is then drawn."""
    return any(edge.target == _END for edge in graph.edges)


#: The shape of each look in DOT; a final state's (any other) has two borders.
_DOT_SHAPES: dict[str | None, dict[str, str]] = {
    None: {},
    "subflow": {"shape": "component", "style": "filled"},
    "wait": {"style": "rounded,filled,dashed"},
    "caught": {"shape": "note", "style": "filled"},
}


def _dot_node(node: _Node) -> dict[str, str]:
    attrs = {"label": "\n".join((node.title, *node.details))}
    attrs |= _DOT_SHAPES.get(node.look, {"peripheries": "2"})
    if node.look is not None:
        attrs |= {
            "fillcolor": _LOOKS[node.look].fill,
            "color": _LOOKS[node.look].stroke,
        }
    if node.mark is not None:
        attrs |= {
            "color": _BORDER[node.mark],
            "penwidth": str(_BORDER_WIDTH[node.mark]),
        }
    if node.tooltip:
        attrs["tooltip"] = node.tooltip
    return attrs


def _dot_edge(edge: _Edge) -> dict[str, str]:
    attrs = {"label": edge.label} if edge.label else {}
    if edge.wait:
        attrs["style"] = "dashed"
    if edge.taken:
        color = _BORDER["visited"]
        attrs |= {"color": color, "fontcolor": color, "penwidth": "2.5"}
    return attrs


def _dot_attrs(attrs: Mapping[str, str]) -> str:
    return ", ".join(
        f"{key}={_dot_quote(_dot_label(value))}" for key, value in attrs.items()
    )


def _dot_label(text: str) -> str:
    # Graphviz decodes HTML entities in a label (and a tooltip): '&amp;' of
    # a URL path would be drawn '&'. Every '&' is written as an entity.
    return text.replace("&", "&amp;")


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


# -- rendering ---------------------------------------------------------------


@overload
def render(
    flow: Flow,
    format: Literal["mermaid", "dot"],
    *,
    run: RunPath | None = None,
    timeout: float = 30.0,
) -> str: ...
@overload
def render(
    flow: Flow,
    format: Literal["svg", "png"],
    *,
    run: RunPath | None = None,
    timeout: float = 30.0,
) -> bytes: ...
@overload
def render(
    flow: Flow, format: str, *, run: RunPath | None = None, timeout: float = 30.0
) -> str | bytes: ...
def render(
    flow: Flow, format: str, *, run: RunPath | None = None, timeout: float = 30.0
) -> str | bytes:
    """The flow drawn in ``format``: text for mermaid and dot, bytes for svg and png.

    SVG and PNG come from Graphviz's ``dot`` program, given at most
    ``timeout`` seconds. An SVG carries the SHA-256 of the DOT text it was
    drawn from in a comment, which :func:`check_all` reads.

    Raises:
        DiagramError: the format is unknown, ``dot`` is missing, fails or
            takes too long, or ``run`` does not fit the flow.
    """
    if format == "mermaid":
        return to_mermaid(flow, run=run)
    if format == "dot":
        return to_dot(flow, run=run)
    if format in ("svg", "png"):
        return _graphviz(_with_digest(to_dot(flow, run=run)), format, timeout, _NO_DOT)
    raise DiagramError(
        f"Unknown diagram format {format!r}; expected one of "
        f"{', '.join(map(repr, FORMATS))}."
    )


def _digest(dot: str) -> str:
    return hashlib.sha256(dot.encode()).hexdigest()


def _with_digest(dot: str) -> str:
    # Graphviz copies the graph's comment into the SVG as an XML comment.
    head, _, body = dot.partition("\n")
    return f'{head}\n  comment="mfaflow dot sha256 {_digest(dot)}";\n{body}'


def _graphviz(dot: str, format: str, timeout: float, missing: str) -> bytes:
    """What ``dot`` draws of ``dot``; ``missing`` says what to do without it."""
    program = shutil.which("dot")
    if program is None:
        raise DiagramError(missing)

    logger.debug("drawing %s with %s", format, program)
    try:
        # The program is Graphviz found on PATH; the input is our own DOT text.
        done = subprocess.run(  # noqa: S603
            [program, f"-T{format}"],
            input=dot.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DiagramError(
            f"Graphviz's 'dot' did not finish within {timeout:g} seconds."
        ) from exc
    except OSError as exc:
        raise DiagramError(
            f"Graphviz's 'dot' program at {program!r} could not be run: "
            f"{exc.strerror or exc}."
        ) from exc

    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[0].rstrip(".") if lines else "it printed no message"
        raise DiagramError(
            f"Graphviz's 'dot' failed with exit status {done.returncode}: {reason}."
        )
    return done.stdout


# -- committed diagrams --------------------------------------------------------

#: Where a file names a diagram to embed: the ``mermaid`` block below the line.
_EMBEDDED = re.compile(
    r"^<!-- diagram: (?P<name>\S+) -->\r?\n```mermaid\r?\n(?P<text>.*?)^```(?=\r?$)",
    re.M | re.S,
)

_Paths = Iterable[str | os.PathLike[str]]


def write_all(
    flows: Iterable[Flow],
    out_dir: str | os.PathLike[str],
    *,
    flow_dirs: _Paths | None = None,
    embed: _Paths = (),
) -> list[Path]:
    """Write ``<name>.mmd`` and ``<name>.svg`` for each flow, and a README.md.

    The README embeds each diagram as a ``mermaid`` block and links its SVG.
    Only files that are missing or out of date (as :func:`check_all` sees
    them) are written, so an SVG is not redrawn, and does not change, merely
    because another version of Graphviz is installed. Diagrams drawn by
    mfaflow for flows no longer given are removed.

    Args:
        flows: the flows to draw.
        out_dir: the folder to draw them in.
        flow_dirs: the folders the flows were read from, for the README's
            title and the command it gives to draw them again (see
            :func:`regenerate_command`); empty for the shipped flows. When
            not given the README names no command.
        embed: files (such as a project's README) whose diagram blocks are
            brought up to date too: each ``mermaid`` block right below a
            line ``<!-- diagram: NAME -->`` becomes the diagram of the flow
            ``NAME``; the rest of the file is kept as it is.

    Returns:
        The paths written or removed, in order.

    Raises:
        DiagramError: two flows share a name, a name cannot name a file, the
            folder holds a README.md that mfaflow did not write, a file to
            embed in has no diagram block or names a flow not given, an SVG
            is due and ``dot`` is missing or fails, or a file cannot be
            written.
    """
    folder = _Folder.of(flows, out_dir, flow_dirs, embed)
    # Draw everything before writing anything: a missing or failing Graphviz
    # then leaves the folder as it was.
    due = {name: folder.expected(name) for name in folder.due()}
    try:
        folder.out.mkdir(parents=True, exist_ok=True)
        for name, content in due.items():
            if content is None:
                (folder.out / name).unlink()
            else:
                (folder.out / name).write_bytes(content)
    except OSError as exc:
        raise DiagramError(
            f"Cannot write the diagrams to {str(folder.out)!r}: {exc.strerror or exc}."
        ) from exc
    return [folder.out / name for name in due]


def check_all(
    flows: Iterable[Flow],
    out_dir: str | os.PathLike[str],
    *,
    flow_dirs: _Paths | None = None,
    embed: _Paths = (),
) -> list[str]:
    """The files that :func:`write_all` would write or remove, given the same arguments.

    Files of ``out_dir`` are named relative to it, files to embed in by
    their absolute paths. A ``.mmd`` file, the README and a file to embed
    in must equal a fresh rendering byte for byte. An SVG is current when
    the digest in its comment is the SHA-256 of the flow's DOT text now,
    and it parses as an SVG document whose nodes, edges and lines of text
    are those of the DOT text: the check needs no Graphviz and does not
    depend on its version.
    Diagrams drawn by mfaflow for flows not given are listed too, as due
    for removal.

    Raises:
        DiagramError: two flows share a name, a name cannot name a file, the
            folder holds a README.md that mfaflow did not write, or a file
            to embed in cannot be read, has no diagram block or names a
            flow not given.
    """
    return _Folder.of(flows, out_dir, flow_dirs, embed).due()


@frozen
class _Folder:
    """A folder of diagrams of ``flows``, and how its README says to redraw it."""

    flows: Mapping[str, Flow]
    out: Path
    flow_dirs: tuple[Path, ...] | None
    embed: tuple[Path, ...]

    @classmethod
    def of(
        cls,
        flows: Iterable[Flow],
        out_dir: str | os.PathLike[str],
        flow_dirs: _Paths | None,
        embed: _Paths,
    ) -> _Folder:
        dirs = None if flow_dirs is None else tuple(map(Path, flow_dirs))
        folder = cls(_by_name(flows), Path(out_dir), dirs, tuple(map(Path, embed)))
        _refuse_foreign_readme(folder.out / "README.md")
        return folder

    def due(self) -> list[str]:
        """The files to write or remove, named as :func:`check_all` names them."""
        names = [f"{flow}.{kind}" for flow in self.flows for kind in ("mmd", "svg")]
        names += ["README.md"]
        due = [name for name in names if not self._current(name)]
        due += _orphans(self.flows, self.out)
        embedded = [os.path.abspath(path) for path in self.embed]
        return due + [name for name in embedded if not self._current(name)]

    def expected(self, name: str) -> bytes | None:
        """The content ``name`` should have; ``None`` when it should not exist."""
        if os.path.isabs(name):
            return _embedded(self.flows, Path(name)).encode()
        if name == "README.md":
            return _readme(self).encode()
        stem, _, suffix = name.rpartition(".")
        if stem not in self.flows:
            return None
        if suffix == "svg":
            dot = _with_digest(to_dot(self.flows[stem]))
            return _graphviz(dot, "svg", 30.0, _NO_DOT_FOR_FILES)
        return to_mermaid(self.flows[stem]).encode()

    def _current(self, name: str) -> bool:
        try:
            stored = (self.out / name).read_bytes()
        except OSError:
            if os.path.isabs(name):
                _embedded(self.flows, Path(name))  # raises, saying why
            return False
        if name.endswith(".svg") and not os.path.isabs(name):
            return _svg_current(self.flows[name.removesuffix(".svg")], stored)
        return stored == self.expected(name)


def _by_name(flows: Iterable[Flow]) -> dict[str, Flow]:
    chosen: dict[str, Flow] = {}
    for flow in flows:
        if not re.fullmatch(r"\w[\w.-]*", flow.name, re.ASCII):
            raise DiagramError(
                f"The flow name {flow.name!r} cannot name a diagram file; expected "
                "letters, digits, '-', '_' and '.'."
            )
        if flow.name in chosen:
            raise DiagramError(
                f"Two flows are named {flow.name!r} ({chosen[flow.name].source!r} and "
                f"{flow.source!r}); a diagram folder holds one of each name."
            )
        chosen[flow.name] = flow
    return dict(sorted(chosen.items()))


def _refuse_foreign_readme(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # missing, or unreadable: writing it says what is wrong
    if not re.match(rf"# [^\n]*\n\n{re.escape(_README_MARK)}", text):
        raise DiagramError(
            f"The folder {str(path.parent)!r} holds a README.md that mfaflow did "
            "not write; move it, or draw the diagrams into another folder."
        )


def _svg_current(flow: Flow, stored: bytes) -> bool:
    """Whether ``stored`` is a whole SVG that Graphviz drew from the DOT text now.

    It must carry the digest of that text, parse as XML with an ``<svg>``
    root, and draw exactly the nodes, the edges and the texts of the DOT
    text: a file cut short or edited by hand is due, even with the right
    digest.
    """
    found = _DIGEST.search(stored.decode(errors="replace"))
    if found is None or found.group(1) != _digest(to_dot(flow)):
        return False
    try:
        # Expat, as Python 3.11 and later ship it, refuses entity expansion
        # attacks; the file is only read for its titles and texts.
        root = ElementTree.fromstring(stored)  # noqa: S314
    except ElementTree.ParseError:
        return False
    return root.tag == f"{_SVG}svg" and _svg_drawing(root) == _dot_drawing(flow)


#: What an SVG drawing shows: the titles of its nodes, of its edges, and its
#: lines of text, each sorted.
_Drawing = tuple[list[str], list[str], list[str]]


def _svg_drawing(root: ElementTree.Element) -> _Drawing:
    titles: dict[str, list[str]] = {"node": [], "edge": []}
    for group in root.iter(f"{_SVG}g"):
        kind = group.get("class")
        if kind in titles:
            titles[kind].append(group.findtext(f"{_SVG}title") or "")
    # Graphviz writes a run of spaces with no-break spaces, to keep them.
    texts = [
        " ".join("".join(text.itertext()).replace("\u00a0", " ").split())
        for text in root.iter(f"{_SVG}text")
    ]
    return sorted(titles["node"]), sorted(titles["edge"]), sorted(texts)


def _dot_drawing(flow: Flow) -> _Drawing:
    """What Graphviz draws of the flow's DOT text, found without Graphviz."""
    graph = _graph(flow, None)
    nodes = [_START, *([_END] if _ends(graph) else []), *(n.id for n in graph.nodes)]
    edges = [f"{edge.source}->{edge.target}" for edge in graph.edges]
    labels = [_dot_title(flow), *(_dot_node(node)["label"] for node in graph.nodes)]
    labels += [edge.label for edge in graph.edges]
    texts = [" ".join(line.split()) for label in labels for line in label.split("\n")]
    return sorted(nodes), sorted(edges), sorted(text for text in texts if text)


def _orphans(flows: Mapping[str, Flow], out: Path) -> list[str]:
    """Our diagrams (Mermaid files carrying our marker) of flows not given."""
    found: list[str] = []
    for mermaid in sorted(out.glob("*.mmd")):
        if mermaid.stem in flows or _MARKER not in mermaid.read_text(errors="replace"):
            continue
        found.append(mermaid.name)
        if (out / f"{mermaid.stem}.svg").exists():
            found.append(f"{mermaid.stem}.svg")
    return found


def _embedded(flows: Mapping[str, Flow], path: Path) -> str:
    """The text of ``path`` with each diagram block holding its flow's diagram now."""
    try:
        # Bytes, decoded as they are: the file's own line ends are kept.
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise DiagramError(
            f"Cannot read {str(path)!r} to embed diagrams in: {reason or exc}."
        ) from exc
    names = [found["name"] for found in _EMBEDDED.finditer(text)]
    if not names:
        raise DiagramError(
            f"{str(path)!r} has no line '<!-- diagram: NAME -->' right above a "
            "mermaid block, so no diagram can be embedded in it."
        )
    for name in names:
        if name not in flows:
            raise DiagramError(
                f"{str(path)!r} embeds the diagram of the flow {name!r}, which is "
                f"not among the flows drawn ({', '.join(map(repr, flows))})."
            )

    def current(found: re.Match[str]) -> str:
        above = found[0][: found.start("text") - found.start()]
        return f"{above}{to_mermaid(flows[found['name']])}```"

    return _EMBEDDED.sub(current, text)


def _readme(folder: _Folder) -> str:
    parts = [*_readme_head(folder), _LEGEND]
    for flow in folder.flows.values():
        summary = " ".join(flow.summary.split())
        parts += [f"## {flow.name}\n", *([f"{summary}\n"] if summary else [])]
        parts.append(f"[SVG]({flow.name}.svg) · [Mermaid source]({flow.name}.mmd)\n")
        parts.append(f"```mermaid\n{to_mermaid(flow)}```\n")
        parts.append(f"![{flow.name}, drawn by Graphviz]({flow.name}.svg)\n")
    return "\n".join(parts)


def _readme_head(folder: _Folder) -> list[str]:
    """The README's title, and how to draw its diagrams again."""
    if folder.flow_dirs is None:
        return [
            "# Flow diagrams\n",
            f"{_README_MARK}; do not edit them by hand, but draw them again.\n",
        ]
    shown = " and ".join(f"`{os.fspath(path)}/`" for path in folder.flow_dirs)
    command = regenerate_command(folder.out, folder.flow_dirs, folder.embed)
    return [
        f"# Diagrams of {f'the flows in {shown}' if shown else 'the shipped flows'}\n",
        f"{_README_MARK}; do not edit them by hand. Regenerate them with:\n",
        f"    {command}\n",
    ]


_LEGEND = (
    "Yellow states wait for input (and the yellow *run expires* stands for "
    "the run's expiry); blue states with a dashed border run a sub-flow; "
    "green, red and grey states with a dotted border are final, and end in "
    "success, failure and expiry. A white *caught in* box names the states "
    "that share the catch rules whose edges leave it. A state that polls, "
    "such as `poll_push`, is not yellow; the transitions that wait before "
    "they are taken say for how long (`after 5s`, or `after delay` when the "
    "server sets it) or, for a retry, how many attempts (`\u00d72`), and the SVGs "
    "draw them dashed.\n"
)
