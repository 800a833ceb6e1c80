"""``mfaflow diagram``: draw a flow, the path of a stored run, or every shipped flow."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from ._catalog import Catalog, shipped_flows_dir
from ._cli_options import (
    FLOWS_OPTION,
    KEY_OPTION,
    STORE_OPTION,
    Failure,
    flow_target,
    service_kind,
    shown_store,
    stored_document,
    stored_runs,
)
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
from ._model import Flow

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
@click.option(
    "--embed",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --all (or --check), also bring up to date (or check) the "
    "mermaid block below each '<!-- diagram: NAME -->' line of FILE, such as "
    "a project's README; repeatable.",
)
@FLOWS_OPTION
@STORE_OPTION
@KEY_OPTION
def diagram(
    flow: str | None,
    fmt: str,
    output: Path | None,
    run_id: str | None,
    draw_all: bool,
    check_dir: Path | None,
    embed: tuple[Path, ...],
    flow_dirs: tuple[Path, ...],
    store: str | None,
    key_file: Path | None,
) -> None:
    """Draw a flow as a diagram.

    FLOW is a flow's name or file. With --run, the path of the stored run
    RUN_ID is highlighted; FLOW may then be left out (the flow the run
    started) or name any flow the run entered, such as the sub-flow a
    login waits in. With --all -o DIR, draw every flow (Mermaid and SVG,
    with a README): the flows of the --flows folders when given, else the
    shipped flows; with --embed FILE, also the diagram blocks of FILE.
    With --check DIR, tell whether all of these are up to date.
    """
    catalog = Catalog(flow_dirs)
    if check_dir is not None:
        _refuse_with("--check", flow=flow, run=run_id, all=draw_all, output=output)
        _check(_every_flow(flow_dirs), check_dir, flow_dirs, embed)
    elif draw_all:
        _refuse_with("--all", flow=flow, run=run_id)
        if output is None:
            raise click.UsageError(
                "--all needs -o DIR, the folder to draw the diagrams in."
            )
        _write_all(_every_flow(flow_dirs), output, flow_dirs, embed)
    elif embed:
        raise click.UsageError("--embed needs --all or --check.")
    elif run_id is None:
        if flow is None:
            raise click.UsageError("Give FLOW, --run RUN_ID, --all or --check DIR.")
        _emit(render(_load(flow, catalog), fmt), fmt, output)
    else:
        document = _stored_run(store, key_file, run_id)
        chosen = _load(_run_flow(document, flow or document["flow"]), catalog)
        _emit(render(chosen, fmt, run=_run_path(document, chosen)), fmt, output)
        _tell_where_it_stands(document, chosen, (store, key_file, flow_dirs))


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


def _check(
    flows: list[Flow],
    folder: Path,
    flow_dirs: tuple[Path, ...],
    embed: tuple[Path, ...],
) -> None:
    stale = check_all(flows, folder, flow_dirs=flow_dirs, embed=embed)
    for name in stale:
        click.echo(folder / name)
    if stale:
        command = regenerate_command(folder, flow_dirs, embed)
        raise Failure([f"{len(stale)} diagram files are out of date; run: {command}"])
    click.echo(f"ok: the diagrams in {folder} are up to date")


def _write_all(
    flows: list[Flow],
    folder: Path,
    flow_dirs: tuple[Path, ...],
    embed: tuple[Path, ...],
) -> None:
    changed = write_all(flows, folder, flow_dirs=flow_dirs, embed=embed)
    for path in changed:
        click.echo(f"{'wrote' if path.exists() else 'removed'} {path}")
    if not changed:
        click.echo(f"The diagrams in {folder} are up to date.", err=True)


def _stored_run(
    store: str | None, key_file: Path | None, run_id: str
) -> dict[str, Any]:
    """The document of the stored run ``run_id``, loaded as ``resume`` loads it.

    Neither a store nor a key file is created for it.
    """
    if store == "memory":
        raise click.UsageError(
            "--run needs the store the run is kept in; a memory store keeps no "
            "runs from one command to the next."
        )
    return stored_document(stored_runs(store, key_file), key_file, run_id)


def _run_flow(document: dict[str, Any], name: str) -> str:
    """The file the run took the flow ``name`` from, if still there; else ``name``."""
    for frame in document["frames"]:
        source = frame.get("source")
        if frame["flow"] == name and source and Path(source).is_file():
            return str(source)
    return name


def _load(flow: str, catalog: Catalog) -> Flow:
    path, folders = flow_target(flow, catalog)
    return load_checked(path, catalog.names() | {path.stem} | _names(folders))


def _names(folders: list[Path]) -> frozenset[str]:
    return Catalog(folders, shipped=False).names()


def _run_path(document: dict[str, Any], flow: Flow) -> RunPath:
    """The path of the stored run through ``flow``, one of the flows it entered."""
    entered = dict.fromkeys(entry.get("flow") for entry in document["history"])
    if flow.name not in entered:
        names = ", ".join(repr(name) for name in entered)
        raise Failure(
            [
                f"The run {document['id']} never entered the flow {flow.name!r}; "
                f"it entered {names}."
            ]
        )
    frames = [frame for frame in document["frames"] if frame["flow"] == flow.name]
    ended = document["status"] == "ended"
    current = frames[-1]["state"] if frames and not ended else None
    path = run_path(document["history"], current, flow=flow.name)
    for name in [*path.visited, *([current] if current else [])]:
        if name not in flow.states:
            raise Failure(
                [
                    f"The run {document['id']} entered the state {name!r}, which "
                    f"the flow {flow.name!r} in {flow.source} does not have; was "
                    "the file changed since the run started?"
                ]
            )
    return path


def _tell_where_it_stands(
    document: dict[str, Any],
    drawn: Flow,
    options: tuple[str | None, Path | None, tuple[Path, ...]],
) -> None:
    """Say on stderr which sub-flow the run stands in, if not the one drawn."""
    innermost = document["frames"][-1]
    if document["status"] == "ended" or innermost["flow"] == drawn.name:
        return
    where = " > ".join(f"{f['flow']} at {f['state']}" for f in document["frames"])
    command = _diagram_command(innermost["flow"], document["id"], *options)
    click.echo(
        f"The run {document['id']} stands in the sub-flow {innermost['flow']!r} "
        f"({where}); draw that part of it with: {command}{_hidden(options[0])}",
        err=True,
    )


def _hidden(store: str | None) -> str:
    """What to do about a store's password, when the command shows it as ***."""
    shown = shown_store(store)
    if service_kind(store) is None or shown is None or shown == store:
        return ""
    return (
        " (with the store's password in place of ***, or with --store left out "
        "and the store's URL in MFAFLOW_STORE)"
    )


def _diagram_command(
    flow: str,
    run_id: str,
    store: str | None,
    key_file: Path | None,
    flow_dirs: tuple[Path, ...],
) -> str:
    words = ["mfaflow", "diagram", flow, "--run", run_id]
    shown = shown_store(store)
    if shown:
        words += ["--store", shown]
    if key_file is not None:
        words += ["--key-file", str(key_file)]
    for folder in flow_dirs:
        words += ["--flows", str(folder)]
    return shlex.join(words)


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
