"""The Mermaid diagrams as the real Mermaid reads and draws them.

The Mermaid is the unmodified bundle that the PyPI package ``mermaidx``
(a test dependency) vendors, loaded into a headless Chromium: one browser
for the whole module. The tests read the states, edges and classes from
Mermaid's own parser, and the text of each drawn state and edge label from
the SVG it renders, so that a label Markdown would change (``*`` lost,
``_a_`` in italics) or a self-loop Mermaid would drop shows up.

Needs Debian's ``chromium`` and ``chromium-driver``; without them the tests
are skipped, except when ``CI`` is set: there they fail.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from _chromium import chromium
from _diagrams import (
    STAR,
    Diagram,
    assert_shows,
    full_flow,
    nasty_flow,
    parse,
    step_up_history,
)
from selenium.webdriver.remote.webdriver import WebDriver

from mfaflow import load_flow, run_path, to_mermaid

pytestmark = pytest.mark.browser

SHIPPED = sorted((Path(__file__).resolve().parent.parent / "flows").glob("*.yaml"))

# Until it draws, Mermaid's parser holds the entity code #N; as this.
_PLACEHOLDER = re.compile("\ufb02\u00b0\u00b0(\\d+)\u00b6\u00df")
# mermaid.parse, the parser's data, and the text of what mermaid.render drew:
# of each state, its name and description; of each edge, its label; a line
# break for each <br>.
_DRAW = """
const [text, done] = arguments;
const shown = (element) => {
  const copy = element.cloneNode(true);
  copy.querySelectorAll("br").forEach((br) => br.replaceWith("\\n"));
  return copy.textContent;
};
(async () => {
  try {
    const parsed = await mermaid.parse(text);
    const data = (await mermaid.mermaidAPI.getDiagramFromText(text)).db.getData();
    window.drawings = (window.drawings ?? 0) + 1;
    const {svg} = await mermaid.render("drawing" + window.drawings, text);
    const box = document.createElement("div");
    box.innerHTML = svg;
    done({
      type: parsed.diagramType,
      nodes: data.nodes.map(
        (n) => [n.id, [n.label, ...(n.description ?? [])], n.cssClasses]),
      edges: data.edges.map((e) => [e.start, e.end, e.label]),
      shownStates: [...box.querySelectorAll("g.node")].map((node) => [
        node.id, [...node.querySelectorAll(".nodeLabel")].map(shown).join("\\n")]),
      shownEdges: [...box.querySelectorAll("g.edgeLabel g.label")].map(
        (label) => [label.dataset.id, shown(label)]),
      markup: [...box.querySelectorAll("em, strong, code, del, .katex")].length,
    });
  } catch (error) {
    done({error: String(error.message || error)});
  }
})();
"""


# Of each state Mermaid drew: the fill, border colour and dashes of its box
# and the colour of its text, as the browser computes them.
_LOOKS = """
const [text, done] = arguments;
(async () => {
  window.drawings = (window.drawings ?? 0) + 1;
  const {svg} = await mermaid.render("looks" + window.drawings, text);
  const box = document.createElement("div");
  document.body.appendChild(box);
  box.innerHTML = svg;
  const looks = [];
  for (const node of box.querySelectorAll("g.node")) {
    const shape = node.querySelector("rect");
    const label = node.querySelector(".nodeLabel");
    if (!shape || !label) continue;
    const style = getComputedStyle(shape);
    looks.push([node.id, style.fill, style.stroke, style.strokeDasharray,
                getComputedStyle(label).color]);
  }
  box.remove();
  done(looks);
})();
"""


def mermaid_bundle() -> str:
    """The text of mermaidx's Mermaid bundle, checked to be Mermaid 11."""
    try:
        bundle = resources.files("mermaidx") / "assets" / "mermaid.js"
        text = bundle.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        pytest.fail(
            f"The Mermaid bundle of mermaidx cannot be read ({exc}); "
            "install the test extra: pip install -e '.[test]'."
        )
    if not re.search(r'version:"11\.\d+\.\d+"', text):
        pytest.fail("mermaidx's mermaid.js does not say it is Mermaid 11.")
    return text


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """A headless Chromium with Mermaid loaded into a blank page."""
    bundle = mermaid_bundle()
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        driver.get("about:blank")
        driver.execute_script(
            "const script = document.createElement('script');"
            "script.textContent = arguments[0];"
            "document.head.appendChild(script);"
            "mermaid.initialize({startOnLoad: false, securityLevel: 'strict'});",
            bundle,
        )
        driver.set_script_timeout(60)
        yield driver


class Drawn:
    """What the real Mermaid made of a diagram's text."""

    def __init__(self, browser: WebDriver, text: str) -> None:
        found: dict[str, Any] = browser.execute_async_script(_DRAW, text)
        assert "error" not in found, found.get("error")
        self.type: str = found["type"]
        self.markup: int = found["markup"]
        self.diagram = _diagram(found)
        self.shown_states = {
            _state_id(node): text for node, text in found["shownStates"]
        }
        # How Mermaid names the label of an edge changes from version to
        # version, so the texts are compared as a whole: an edge it did not
        # draw (such as a second self-loop) is a label missing.
        self.shown_edges = sorted(text for _, text in found["shownEdges"] if text)
        self.edge_labels = sorted(label for _, _, label in self.diagram.edges if label)


def _diagram(found: dict[str, Any]) -> Diagram:
    """The parser's states, edges and classes as a Diagram, labels as shown."""
    ends = {"root_start": STAR, "root_end": STAR}
    diagram = Diagram()
    for node, lines, classes in found["nodes"]:
        if node in ends:
            continue
        diagram.labels[node] = "\n".join(map(_plain, lines))
        for name in classes.split():
            if name != "statediagram-state":
                diagram.classes.setdefault(name, set()).add(node)
    diagram.edges = [
        (ends.get(source, source), ends.get(target, target), _plain(label or ""))
        for source, target, label in found["edges"]
    ]
    return diagram


def _plain(label: str) -> str:
    decoded = _PLACEHOLDER.sub(lambda match: chr(int(match[1])), label)
    return decoded.replace("<br>", "\n")


def _state_id(element_id: str) -> str:
    found = re.fullmatch(r"(?:.*?-)?state-(.+)-\d+", element_id)
    assert found, element_id
    return found[1]


def assert_drawn_as_written(drawn: Drawn) -> None:
    """Every state and every edge is drawn, with the text its label says."""
    shown = {node: drawn.shown_states.get(node) for node in drawn.diagram.labels}
    assert shown == drawn.diagram.labels
    assert drawn.shown_edges == drawn.edge_labels
    assert drawn.markup == 0


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_real_mermaid_reads_and_draws_the_shipped_flow(
    browser: WebDriver, path: Path
) -> None:
    """Mermaid reads every state and transition, and draws each label as written."""
    flow = load_flow(path)
    text = to_mermaid(flow)

    drawn = Drawn(browser, text)

    assert drawn.type == "stateDiagram"
    assert_shows(flow, drawn.diagram)
    assert drawn.diagram.classes == parse(text).classes
    assert_drawn_as_written(drawn)


def test_real_mermaid_draws_any_name_as_written(browser: WebDriver) -> None:
    """Names Markdown, HTML, KaTeX or Mermaid would read as syntax are drawn as is."""
    text = to_mermaid(nasty_flow())

    drawn = Drawn(browser, text)

    assert drawn.diagram.labels == parse(text).labels
    assert drawn.diagram.edges == parse(text).edges
    assert_drawn_as_written(drawn)


def test_real_mermaid_highlights_exactly_the_run(browser: WebDriver) -> None:
    """A run's diagram marks its visited and current states and the edges it took."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:3], "step_up", flow=flow.name)

    drawn = Drawn(browser, to_mermaid(flow, run=run))

    assert_shows(flow, drawn.diagram)
    assert drawn.diagram.named_class("visited") == {"make_pkce", "request_token"}
    assert drawn.diagram.named_class("current") == {"step_up"}
    assert drawn.diagram.taken() == {
        (STAR, "make_pkce"),
        ("make_pkce", "request_token"),
        ("request_token", "step_up"),
    }
    assert_drawn_as_written(drawn)


@dataclass(frozen=True)
class Look:
    """How Mermaid drew one state: fill, border colour and dashes, text colour."""

    fill: tuple[int, ...]
    stroke: tuple[int, ...]
    dashes: str
    text: tuple[int, ...]


def looks(browser: WebDriver, text: str) -> dict[str, Look]:
    """The look of each state Mermaid drew of ``text``, by state id."""
    found = browser.execute_async_script(_LOOKS, text)
    return {
        _state_id(node): Look(_rgb(fill), _rgb(stroke), dashes, _rgb(colour))
        for node, fill, stroke, dashes, colour in found
    }


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", css)[:3])


#: sRGB (D65) to CIE XYZ, each row scaled by the white point's.
_XYZ = (
    ((0.4124, 0.3576, 0.1805), 0.95047),
    ((0.2126, 0.7152, 0.0722), 1.0),
    ((0.0193, 0.1192, 0.9505), 1.08883),
)


def _xyz(rgb: tuple[int, ...]) -> list[float]:
    linear = [
        ((c / 255 + 0.055) / 1.055) ** 2.4 if c / 255 > 0.04045 else c / 255 / 12.92
        for c in rgb
    ]
    return [
        sum(w * c for w, c in zip(row, linear, strict=True)) / white
        for row, white in _XYZ
    ]


def colour_difference(one: tuple[int, ...], other: tuple[int, ...]) -> float:
    """CIE76 ΔE: about 2 is just noticeable, 20 and more is another colour."""

    def lab(rgb: tuple[int, ...]) -> tuple[float, float, float]:
        fx, fy, fz = (
            v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in _xyz(rgb)
        )
        return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)

    return math.dist(lab(one), lab(other))


def contrast(one: tuple[int, ...], other: tuple[int, ...]) -> float:
    """The WCAG contrast ratio of two colours, from 1 to 21."""
    high, low = sorted((_xyz(one)[1], _xyz(other)[1]), reverse=True)
    return (high + 0.05) / (low + 0.05)


#: A state of full_flow() of each kind.
KINDS = {
    "ordinary": "s_make_pkce",
    "wait": "s_ask_code",
    "subflow": "s_step_up",
    "success": "s_end",
    "failure": "s_rejected",
    "expired": "s_expired",
}


def test_real_mermaid_draws_each_kind_of_state_apart(browser: WebDriver) -> None:
    """Waits, sub-flows and each outcome get fills of their own under dark text."""
    drawn = looks(browser, to_mermaid(full_flow()))

    kind = {name: drawn[node] for name, node in KINDS.items()}
    for one, other in itertools.combinations(KINDS, 2):
        difference = colour_difference(kind[one].fill, kind[other].fill)
        assert difference >= 20, f"{one} and {other} look alike: ΔE {difference:.1f}"
    for name, look in kind.items():
        assert contrast(look.text, look.fill) >= 7, f"{name}'s text is pale"
    assert kind["ordinary"].dashes == kind["wait"].dashes == "none"
    finals = {kind[name].dashes for name in ("success", "failure", "expired")}
    assert len(finals) == 1
    assert finals.isdisjoint({"none", kind["subflow"].dashes})
    assert kind["subflow"].dashes != "none"


def test_real_mermaid_keeps_a_kind_s_dashes_on_the_path_of_a_run(
    browser: WebDriver,
) -> None:
    """A run's highlight sets the border's colour; the dashes of its kind stay."""
    flow = full_flow()
    run = run_path(step_up_history(flow)[:3], "step_up", flow=flow.name)

    plain = looks(browser, to_mermaid(flow))["s_step_up"]
    current = looks(browser, to_mermaid(flow, run=run))["s_step_up"]

    assert current.dashes == plain.dashes
    assert current.fill == plain.fill
    assert current.stroke == (0xBF, 0x39, 0x89)


def test_real_mermaid_shows_the_outcome_of_a_final_state_named_after_it(
    browser: WebDriver,
) -> None:
    """A final state named like its outcome (expired) still shows the outcome."""
    drawn = Drawn(browser, to_mermaid(full_flow()))

    assert drawn.shown_states["s_expired"] == "expired\nexpired"
    assert drawn.shown_states["s_end"] == "end\nsuccess"
