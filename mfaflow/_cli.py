"""The ``mfaflow`` command.

Exit codes: 0 success; 1 a failure, told in one line on stderr (``error:
...``; a broken flow file gives one line per problem); 2 a usage error;
3 a run that stopped to wait for input under ``--no-input``; 130 an
interrupt (Ctrl-C). Results go to stdout; prompts, progress and errors go
to stderr. No secret is ever printed, except secret outputs when
``--show-secrets`` asks for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from ._catalog import Catalog
from ._cli_demo import demo
from ._cli_diagram import diagram
from ._cli_options import (
    FLOWS_OPTION,
    STORE_OPTION,
    Failure,
    Output,
    Setup,
    flow_files,
    flow_target,
    output_options,
    resume_options,
    service_store,
    setup_options,
    store_path,
    stored_document,
    stored_runs,
)
from ._cli_run import Driver, Printer, report, revealed_outputs
from ._cli_serve import serve
from ._cli_show import (
    load_checked,
    print_flow,
    print_flow_list,
    print_runs,
    read_schema,
)
from ._engine import Client
from ._errors import DefinitionError, MfaflowError, RunError
from ._loader import load_flow
from ._run import RunResult
from ._store import SQLiteStore, Store
from ._version import __version__

__all__ = ["cli", "main"]


class _Interrupted(click.ClickException):
    """Ctrl-C: one short line, then how to go on when a stored run waits."""

    exit_code = 130

    def __init__(self, hint: str | None = None) -> None:
        super().__init__("Interrupted.")
        self.hint = hint

    def show(self, file: Any = None) -> None:
        click.echo("Interrupted.", err=True)
        if self.hint:
            click.echo(self.hint, err=True)


class _Group(click.Group):
    """Turns mfaflow's errors and Ctrl-C into lines on stderr and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefinitionError as exc:
            problems = getattr(exc, "errors", [exc])
            raise Failure([_located(problem) for problem in problems]) from exc
        except MfaflowError as exc:
            raise Failure([str(exc)]) from exc
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise Failure([f"{exc.strerror or exc}{where}."]) from exc
        except KeyboardInterrupt:
            raise _Interrupted() from None


def _located(problem: DefinitionError) -> str:
    """``file:line:column: message``, or the message alone when it has no place."""
    if problem.file == "<string>" and not problem.line:
        return problem.msg
    return str(problem)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="mfaflow")
@click.option(
    "-v", "--verbose", count=True, help="Log to stderr; twice for more detail."
)
def cli(verbose: int) -> None:
    """Run authentication flows written as YAML state machines."""
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        # urllib3 logs whole URLs, query strings (and the codes and tokens
        # in them) included; transitions logs a dozen lines per transition,
        # of which mfaflow's own line says all.
        for library in ("urllib3", "transitions"):
            logging.getLogger(library).setLevel(logging.WARNING)


def main() -> NoReturn:
    """The entry point of the ``mfaflow`` console script."""
    cli.main(prog_name="mfaflow")


cli.add_command(demo)
cli.add_command(diagram)
cli.add_command(serve)


@cli.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check flow files, or folders of them: one line per problem.

    Sub-flows may name the shipped flows and the flows of the files given.
    """
    files = [file for path in paths for file in flow_files(path)]
    if not files:
        shown = ", ".join(str(path) for path in paths)
        raise Failure([f"No flow files (*.yaml, *.yml) are in {shown}."])

    catalog = Catalog(files)
    problems: list[str] = []
    for file in files:
        try:
            load_checked(file, catalog.names(), catalog.definition)
        except DefinitionError as exc:
            problems += [str(problem) for problem in getattr(exc, "errors", [exc])]
    for problem in problems:
        click.echo(problem)
    if problems:
        counted = f"{_count(len(problems), 'problem')} in "
        click.echo(f"{counted}{_count(len(files), 'flow file')}.", err=True)
        ctx.exit(1)
    click.echo(f"ok: {_count(len(files), 'flow file')}")


def _count(number: int, noun: str) -> str:
    """``1 problem``, ``2 problems``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@cli.command()
@click.argument("name", required=False)
@FLOWS_OPTION
def flows(name: str | None, flow_dirs: tuple[Path, ...]) -> None:
    """List the flows with their summaries, or describe the flow NAME."""
    catalog = Catalog(flow_dirs)
    if name is None:
        print_flow_list(catalog.files())
        return
    path, _ = flow_target(name, catalog)
    print_flow(load_flow(path))


@cli.command()
def schema() -> None:
    """Print the JSON Schema of flow files, for editors."""
    click.echo(read_schema(), nl=False)


@cli.command()
@click.argument("flow")
@setup_options
@output_options
@click.pass_context
def run(
    ctx: click.Context, flow: str, setup: Setup, inputs: dict[str, str], output: Output
) -> None:
    """Run a flow, asking for what it needs.

    FLOW is the name of a flow (see: mfaflow flows) or a flow file.
    """
    target, folders = flow_target(flow, Catalog(setup.flow_dirs))
    store = setup.open_store()
    driver = _driver(ctx, setup, store, output, after=folders)
    with _run_told(driver, setup, store):
        result = driver.start(driver.engine.flow(target), inputs)
    if result.waiting and setup.store == "memory":
        click.echo(
            "The run was kept in memory and ends with this command; "
            "give --store a file to resume it later.",
            err=True,
        )
    ctx.exit(_report(result, setup, driver, output))


@cli.command()
@click.argument("run_id")
@resume_options
@output_options
@click.pass_context
def resume(
    ctx: click.Context,
    run_id: str,
    setup: Setup,
    inputs: dict[str, str],
    output: Output,
) -> None:
    """Continue a stored run, giving it the inputs it waits for.

    The run's id is enough: the issuer, the client id and how the client
    authenticates are those the run recorded, unless given; the client
    secret comes from --client-secret or the environment, as when the run
    started.
    """
    store = stored_runs(setup.store, setup.key_file)
    document = stored_document(store, setup.key_file, run_id)
    driver = _driver(
        ctx,
        setup,
        store,
        output,
        client=setup.client_for(document),
        before=_run_sources(document),
    )
    with _run_told(driver, setup, store):
        result = driver.resume(run_id, inputs)
    ctx.exit(_report(result, setup, driver, output))


@cli.command()
@STORE_OPTION
@click.option(
    "--purge-expired", is_flag=True, help="First delete the runs that have expired."
)
def runs(store: str | None, purge_expired: bool) -> None:
    """List the stored runs; never their secrets."""
    if store == "memory":
        click.echo(
            "A memory store keeps no runs from one command to the next.", err=True
        )
        return
    # Listing and purging read no secrets, so the store needs no key.
    kept = service_store(store, None)
    if kept is None:
        path = store_path(store)
        if not path.exists():
            click.echo(f"No runs are stored in {path}.", err=True)
            return
        kept = SQLiteStore(path)
    try:
        if purge_expired:
            purged = kept.expire(time.time())
            click.echo(f"Deleted {len(purged)} expired runs.", err=True)
        print_runs(kept.list())
    finally:
        close = getattr(kept, "close", None)
        if close is not None:
            close()


def _driver(
    ctx: click.Context,
    setup: Setup,
    store: Store,
    output: Output,
    *,
    client: Client | None = None,
    before: Iterable[Path] = (),
    after: Iterable[Path] = (),
) -> Driver:
    """A driver whose engine tells each state entered (unless ``output.quiet``).

    With ``output.show_secrets`` the text of an ``otpauth://`` link is
    printed beside its QR code.
    """
    printer = Printer(quiet=output.quiet, show_secrets=output.show_secrets)
    hooks = [printer.announce]
    engine = setup.engine(ctx, store, hooks, client=client, before=before, after=after)
    return Driver(
        engine,
        printer,
        interactive=not output.no_input,
        resume_command=_resume_command(setup),
    )


def _resume_command(setup: Setup) -> Callable[[str], str] | None:
    """How to resume a run later; ``None`` when it is kept in memory."""
    return None if setup.store == "memory" else setup.resume_command


def _report(result: RunResult, setup: Setup, driver: Driver, output: Output) -> int:
    """Print ``result``; once revealed outputs are shown, the store forgets them."""
    command = _resume_command(setup)
    code = report(
        result,
        as_json=output.as_json,
        show_secrets=output.show_secrets,
        resume_hint=command(result.run_id) if command else None,
        resume_note=setup.resume_note(),
    )
    if revealed_outputs(result):
        driver.engine.forget_revealed(result.run_id)
    return code


def _run_sources(document: Mapping[str, Any]) -> list[Path]:
    """The files the run's flows were read from, where they still exist.

    Searching them first finds the very flows the run was started with.
    """
    frames = document.get("frames", [])
    sources = [Path(frame["source"]) for frame in frames if frame.get("source")]
    return [source for source in sources if source.is_file()]


@contextmanager
def _run_told(driver: Driver, setup: Setup, store: Store) -> Iterator[None]:
    """Say how to go on with a run that Ctrl-C or an error stopped."""
    with _interruptible(driver, setup), _failed_run_told(setup, store):
        yield


@contextmanager
def _failed_run_told(setup: Setup, store: Store) -> Iterator[None]:
    """Add to an error that stopped a run the run's id, and how to go on."""
    try:
        yield
    except RunError as exc:
        told = _stopped_run(exc, setup, store)
        if told is None:
            raise
        raise Failure([str(exc), told]) from exc


def _stopped_run(exc: RunError, setup: Setup, store: Store) -> str | None:
    """What to say of the run ``exc`` stopped, if it was kept as failed."""
    if exc.run_id is None:
        return None
    try:
        stored = store.load(exc.run_id)
    except MfaflowError:
        return None
    if stored.status != "failed":
        return None
    if setup.store == "memory":
        return f"The run {exc.run_id} was kept in memory and ends with this command."
    command = setup.resume_command(exc.run_id)
    return (
        f"The run {exc.run_id} is stored as failed in the state {exc.state!r}; "
        f"{command} tries that state again."
    )


@contextmanager
def _interruptible(driver: Driver, setup: Setup) -> Iterator[None]:
    """Turn Ctrl-C during a run into :class:`_Interrupted`, saying how to go on."""
    try:
        yield
    except KeyboardInterrupt:
        hint = None
        if driver.run_id and setup.store != "memory":
            command = setup.resume_command(driver.run_id)
            hint = f"The run is stored; go on with: {command}"
            note = setup.resume_note()
            hint += f"\n{note}" if note else ""
        raise _Interrupted(hint) from None
