"""What the CLI prints about flows and stored runs.

Nothing here prints a secret: a secret input's default is hidden, and runs
are shown from their documents, which hold no secret values.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import click

from ._errors import DefinitionError, MfaflowError
from ._loader import load_flow
from ._model import Flow, InputSpec
from ._registry import default_registry
from ._store import RunSummary
from ._template import Reference, Template

__all__ = [
    "load_checked",
    "print_flow",
    "print_flow_list",
    "print_runs",
    "read_schema",
]


def load_checked(
    path: Path,
    flows: Collection[str],
    subflows: Callable[[str], Flow | None] | None = None,
) -> Flow:
    """Load ``path`` with every structural check, ``flows`` being the flows that exist.

    ``subflows`` gives their definitions by name (see
    :meth:`~mfaflow.Catalog.definition`), to check what they are given.

    Raises:
        DefinitionErrors: the file is broken.
    """
    registry = default_registry()
    return load_flow(
        path,
        actions=registry.action_names(),
        guards=registry.guard_names(),
        flows=flows,
        subflows=subflows,
    )


def print_flow_list(files: Mapping[str, Path]) -> None:
    """One line per flow: its name and summary (or why it cannot be read)."""
    if not files:
        click.echo("No flows found.", err=True)
        return
    width = max(map(len, files))
    for name, path in sorted(files.items()):
        try:
            summary = " ".join(load_flow(path).summary.split())
        except DefinitionError:
            summary = f"(broken; see: mfaflow validate {path})"
        click.echo(f"{name:<{width}}  {summary}".rstrip())


def print_flow(flow: Flow) -> None:
    """A flow's description, inputs (those asked for during a run too) and outputs."""
    click.echo(f"{flow.name} (version {flow.version}): {flow.source}")
    for text in (flow.summary, flow.description):
        if text.strip():
            click.echo()
            click.echo(text.strip())
    _print_inputs("Inputs", flow.inputs.values())
    asked = [spec for state in flow.states.values() for spec in state.inputs]
    _print_inputs(
        "Asked for during a run", [s for s in asked if s.name not in flow.inputs]
    )
    outputs = [
        (spec.name, "secret" if spec.secret else "", spec.description)
        for spec in flow.outputs.values()
    ]
    _print_table("Outputs", outputs)


def _print_inputs(title: str, specs: Iterable[InputSpec]) -> None:
    rows = []
    for spec in specs:
        traits = [_need(spec)]
        if spec.secret:
            traits.append("secret")
        text = spec.description or _readable(spec.prompt)
        rows.append((spec.name, ", ".join(traits), text))
    _print_table(title, rows)


def _readable(prompt: str | Template | None) -> str:
    """A prompt as a person reads it before a run: each value to come is '…'.

    A value that opens the prompt (a hint put before it) is left out.
    """
    if not isinstance(prompt, Template):
        return prompt or ""
    parts = ["…" if isinstance(part, Reference) else part for part in prompt.parts]
    text = " ".join("".join(parts).split())
    return text.lstrip("… ") or text


def _need(spec: InputSpec) -> str:
    """``required``, ``optional``, or the default (hidden when secret)."""
    if spec.required:
        return "required"
    if spec.default is None:
        return "optional"
    if spec.secret:
        return "default hidden"
    if isinstance(spec.default, Template):
        return f"default {spec.default}"
    return f"default {json.dumps(spec.default, default=str)}"


def _print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        return
    click.echo()
    click.echo(f"{title}:")
    name_width = max(len(row[0]) for row in rows)
    trait_width = max(len(row[1]) for row in rows)
    for name, traits, text in rows:
        click.echo(f"  {name:<{name_width}}  {traits:<{trait_width}}  {text}".rstrip())


def print_runs(summaries: list[RunSummary]) -> None:
    """One line per stored run: id, flow, status, last update and what it waits for."""
    if not summaries:
        click.echo("No runs are stored.", err=True)
        return
    flow_width = max(len(summary.flow) for summary in summaries)
    for summary in summaries:
        updated = _local_time(summary.updated_at)
        flow, status = f"{summary.flow:<{flow_width}}", f"{summary.status:<7}"
        line = f"{summary.id}  {flow}  {status}  {updated}"
        click.echo(f"{line}  {_waiting(summary.document)}".rstrip())


def _waiting(document: Mapping[str, Any]) -> str:
    wait = document.get("wait") or {}
    if wait.get("kind") == "input":
        return "needs " + ", ".join(
            request["name"] for request in wait.get("inputs", [])
        )
    if wait.get("kind") == "time":
        return f"polls again at {_local_time(wait['until'])}"
    return ""


def _local_time(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp).astimezone()
    return moment.isoformat(timespec="seconds")


def read_schema() -> str:
    """The JSON Schema of flow files, as shipped with the package.

    Raises:
        MfaflowError: the installation lacks it.
    """
    try:
        return (
            resources.files("mfaflow").joinpath("flow.schema.json").read_text("utf-8")
        )
    except OSError:
        raise MfaflowError(
            "This installation of mfaflow lacks flow.schema.json; reinstall mfaflow."
        ) from None
