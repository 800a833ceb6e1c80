"""``mfaflow diagram``: draw a flow, the path of a stored run, or every shipped flow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._catalog import Catalog, shipped_flows_dir
from ._cli_options import FLOWS_OPTION, STORE_OPTION, Failure, flow_target, store_path
from ._cli_show import load_checked
from ._diagram import (
    FORMATS,
    RunPath,
    check_all,
    regenerate_command,
    render,
    run_path,
    write_all,
)
from ._errors import RunNotFound
from ._model import Flow
from ._store import SQLiteStore

__all__ = ["diagram"]


@click.command()
@click.argument("flow", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="mermaid",
    show_default=True,
    help="svg and png need Graphviz's dot program.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="The file to write (a folder with --all); stdout by default.",
)
@click.option(
    "--run", "run_id", metavar="RUN_ID", help="Highlight the path of this stored run."
)
@click.option(
    "--all",
    "draw_all",
    is_flag=True,
    help="Draw every flow into the folder -o names: those of the --flows "
    "folders if given, else the shipped ones.",
)
@click.option(
    "--check",
    "check_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Exit 1 listing the diagrams in DIR that --all would change.",
)
@FLOWS_OPTION
@STORE_OPTION
def diagram(
    flow: str | None,
    fmt: str,
    output: Path | None,
    run_id: str | None,
    draw_all: bool,
    check_dir: Path | None,
    flow_dirs: tuple[Path, ...],
    store: str | None,
) -> None:
    """Draw a flow as a diagram.

    FLOW is a flow's name or file; with --run, the path of the stored run
    RUN_ID is highlighted, and FLOW may be left out. With --all -o DIR,
    draw every flow (Mermaid and SVG, with a README): the flows of the
    --flows folders when given, else the shipped flows. With --check DIR,
    tell whether such a folder is up to date.
    """
    catalog = Catalog(flow_dirs)
    if check_dir is not None:
        _refuse_with("--check", flow=flow, run=run_id, all=draw_all, output=output)
        _check(_every_flow(flow_dirs), check_dir, flow_dirs)
    elif draw_all:
        _refuse_with("--all", flow=flow, run=run_id)
        if output is None:
            raise click.UsageError(
                "--all needs -o DIR, the folder to draw the diagrams in."
            )
        _write_all(_every_flow(flow_dirs), output)
    else:
        document = _stored_run(store, run_id) if run_id else None
        chosen = _chosen_flow(flow, document, catalog)
        path = _run_path(document, chosen) if document else None
        _emit(render(chosen, fmt, run=path), fmt, output)


def _refuse_with(option: str, **given: Any) -> None:
    clashing = [name for name, value in given.items() if value]
    if clashing:
        names = ", ".join(
            "FLOW" if name == "flow" else f"--{name}" for name in clashing
        )
        raise click.UsageError(f"{option} cannot be combined with {names}.")


def _every_flow(flow_dirs: tuple[Path, ...]) -> list[Flow]:
    """The flows of ``flow_dirs``, or the shipped flows when none is given."""
    known = Catalog(flow_dirs).names()
    files = Catalog(flow_dirs or (shipped_flows_dir(),), shipped=False).files()
    if not files:
        raise Failure(["No flows were found to draw."])
    return [load_checked(path, known) for path in files.values()]


def _check(flows: list[Flow], folder: Path, flow_dirs: tuple[Path, ...]) -> None:
    stale = check_all(flows, folder)
    for name in stale:
        click.echo(folder / name)
    if stale:
        command = regenerate_command(folder, flow_dirs)
        raise Failure(
            [f"{len(stale)} diagram files in {folder} are out of date; run: {command}"]
        )
    click.echo(f"ok: the diagrams in {folder} are up to date")


def _write_all(flows: list[Flow], folder: Path) -> None:
    changed = write_all(flows, folder)
    for path in changed:
        click.echo(f"{'wrote' if path.exists() else 'removed'} {path}")
    if not changed:
        click.echo(f"The diagrams in {folder} are up to date.", err=True)


def _stored_run(store: str | None, run_id: str) -> dict[str, Any]:
    """The document of a stored run; its secrets are neither read nor needed."""
    path = store_path(store)
    if store != "memory" and path.exists():
        for summary in SQLiteStore(path).list():
            if summary.id == run_id:
                return summary.document
    raise RunNotFound(
        f"No run with the id {run_id!r} is stored in {path}.", run_id=run_id
    )


def _chosen_flow(
    flow: str | None, document: dict[str, Any] | None, catalog: Catalog
) -> Flow:
    if flow is None and document is None:
        raise click.UsageError("Give FLOW, --run RUN_ID, --all or --check DIR.")
    if flow is None:
        assert document is not None
        source = document["frames"][0].get("source")
        name: str = document["flow"]
        flow = source if source and Path(source).is_file() else name
    path, folders = flow_target(flow, catalog)
    return load_checked(path, catalog.names() | {path.stem} | _names(folders))


def _names(folders: list[Path]) -> frozenset[str]:
    return Catalog(folders, shipped=False).names()


def _run_path(document: dict[str, Any], flow: Flow) -> RunPath:
    if document["flow"] != flow.name:
        run, found = document["id"], document["flow"]
        raise Failure([f"The run {run} is of the flow {found!r}, not {flow.name!r}."])
    ended = document["status"] == "ended"
    current = document["final_state"] if ended else document["frames"][0]["state"]
    return run_path(document["history"], current, flow=flow.name)


def _emit(drawn: str | bytes, fmt: str, output: Path | None) -> None:
    if output is not None:
        if isinstance(drawn, bytes):
            output.write_bytes(drawn)
        else:
            output.write_text(drawn, encoding="utf-8")
        return
    if isinstance(drawn, str):
        click.echo(drawn, nl=not drawn.endswith("\n"))
        return
    if fmt == "png" and sys.stdout.isatty():
        raise click.UsageError(
            "A PNG is binary: write it to a file with -o FILE, or redirect the output."
        )
    sys.stdout.flush()
    sys.stdout.buffer.write(drawn)
    sys.stdout.buffer.flush()
