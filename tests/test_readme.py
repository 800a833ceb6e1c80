"""The README stays true to the code and to CI."""

from __future__ import annotations

import re
from pathlib import Path

import mfaflow
from mfaflow._diagram import REGENERATE_COMMAND

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_gives_exactly_two_commands() -> None:
    """The README has one command for the demo and one for the tests."""
    demo, tests = commands()
    assert demo.endswith("mfaflow demo")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls the README's test command as written."""
    assert commands()[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_diagram_is_the_current_rendering() -> None:
    """The diagram shown in the README is that of the shipped password-grant."""
    found = re.search(
        r"<!-- diagram: ([a-z-]+) -->\n```mermaid\n(.+?)\n```", README, re.S
    )
    assert found is not None
    name, shown = found.groups()
    flow = mfaflow.load_flow(mfaflow.shipped_flows_dir() / f"{name}.yaml")
    assert shown == mfaflow.to_mermaid(flow).rstrip("\n"), (
        f"The README's diagram of {name} is out of date; run: {REGENERATE_COMMAND}"
    )


def test_readme_lists_every_shipped_flow() -> None:
    """Each shipped flow has a row in the README's table of flows."""
    names = {path.stem for path in mfaflow.shipped_flows_dir().glob("*.yaml")}
    assert names
    for name in names:
        assert f"| `{name}` |" in README


#: One flow's entry in the README's list of inputs and outputs.
_FLOW_IO = re.compile(r"^- `([a-z-]+)`\n  - in: (.+)\n  - out: (.+)$", re.M)
#: A name in that list: bold when required, 🔒 when secret.
_IO_NAME = re.compile(r"(\*\*)?`(\w+)`(?:\*\*)?( 🔒)?")


def _described(line: str) -> list[tuple[str, bool, bool]]:
    """The names of one in: or out: line, each with whether it is bold and secret."""
    bare = re.sub(r"\([^()]*\)", "", line)
    return [
        (found.group(2), found.group(1) is not None, found.group(3) is not None)
        for found in _IO_NAME.finditer(bare)
    ]


def test_readme_lists_each_flows_inputs_and_outputs() -> None:
    """The README names exactly the inputs and outputs of each shipped flow,
    required inputs in bold and secrets marked, each with a description."""
    listed = {name: (ins, outs) for name, ins, outs in _FLOW_IO.findall(README)}
    shipped = sorted(path.stem for path in mfaflow.shipped_flows_dir().glob("*.yaml"))
    assert sorted(listed) == shipped

    for name, (ins, outs) in listed.items():
        flow = mfaflow.load_flow(mfaflow.shipped_flows_dir() / f"{name}.yaml")
        for line in (ins, outs):
            assert line.endswith(")"), f"{name}: the last names are undescribed"
        assert _described(ins) == [
            (spec.name, spec.required, spec.secret) for spec in flow.inputs.values()
        ], name
        assert _described(outs) == [
            (spec.name, False, spec.secret) for spec in flow.outputs.values()
        ], name
