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

import re
from collections.abc import Iterator
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
