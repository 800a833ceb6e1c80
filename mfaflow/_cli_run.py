"""Driving runs from a terminal: prompts, waits, progress and results.

The CLI's ``run`` and ``resume`` commands hand a run to a :class:`Driver`,
which keeps resuming it until it ends: it asks a person for each input the
run waits for (hiding secret ones), sleeps through waits with a line of
progress, and re-asks for a value the run refused. Before asking, it shows
the wait's link: a URL to open on a line of its own, an ``otpauth://`` URI
as a QR code (its text, which holds the TOTP secret, only when asked). With
``interactive`` off it stops at the first wait for input instead, for the
caller to report.

:func:`report` prints where a run stands, as text or JSON, with secret
outputs and secret links left out unless asked otherwise, and says which
exit code fits.
Everything meant for a person goes to stderr; results go to stdout.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click
from click import termui

from ._cli_links import draw_qr, is_otpauth, terminal_text
from ._engine import Engine, RunEvent
from ._errors import InputError
from ._model import Flow, InputSpec
from ._run import InputRequest, RunResult

__all__ = [
    "EXIT_WAITING",
    "Driver",
    "Hint",
    "InputEnded",
    "Printer",
    "report",
    "request_for",
    "revealed_outputs",
]

#: The exit code of a run that stopped to wait for input under --no-input.
EXIT_WAITING = 3

#: Says, given an input's name, how to give it when it cannot be asked for.
Hint = Callable[[str], str]


class InputEnded(click.ClickException):
    """Standard input ran out while a value was being asked for."""

    def __init__(self, name: str, hint: str) -> None:
        super().__init__(
            f"The input ended before a value for {name!r} was given; {hint}."
        )

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class Printer:
    """What a person sees while a run goes on, on stderr.

    Args:
        quiet: print no progress (prompts and links still show).
        show_secrets: print the text of an ``otpauth://`` link too, not
            only its QR code.
    """

    def __init__(self, *, quiet: bool = False, show_secrets: bool = False) -> None:
        #: The flow the run started with; states of sub-flows are shown
        #: with their flow's name.
        self.root_flow: str | None = None
        self.quiet = quiet
        self.show_secrets = show_secrets
        self._shown_link: str | None = None

    def say(self, text: str) -> None:
        """Print a line of progress, unless quiet."""
        if not self.quiet:
            click.echo(text, err=True)

    def announce(self, event: RunEvent) -> None:
        """A hook for the engine: one line per state entered."""
        if event.kind not in ("started", "transition", "entered"):
            return
        state = event.state
        if self.root_flow is not None and event.flow != self.root_flow:
            state = f"{event.flow}/{state}"
        detail = f" ({event.event})" if event.event else ""
        self.say(f"{_arrow()} {state}{detail}")

    def show_link(self, request: InputRequest) -> None:
        """Show the link of ``request``, unless it was the last one shown.

        A URL to open goes on a line of its own. An ``otpauth://`` URI is
        drawn as a QR code to scan; its text, which holds the TOTP secret,
        is printed only with ``show_secrets``.
        """
        link = request.link
        if not link or link == self._shown_link:
            return
        self._shown_link = link
        if not is_otpauth(link):
            click.echo(f"Open: {terminal_text(link)}", err=True)
            return
        click.echo("Scan this QR code with your authenticator app:", err=True)
        draw_qr(link, sys.stderr)
        if self.show_secrets:
            click.echo(f"The QR code's text: {link}", err=True)

    def ask(self, request: InputRequest, hint: Hint) -> Any:
        """Ask for one input; ``None`` when the person gives nothing.

        The request's link is shown first (see :meth:`show_link`). A secret
        input is read without echo. When the request lists choices, the
        typed text picks the choice it spells.

        Raises:
            InputEnded: standard input ran out; ``hint(name)`` says what
                to do instead.
        """
        # click's own prompt functions (getpass for secrets), which its test
        # runner replaces. click.prompt itself is not used: it turns the end
        # of the input into the same Abort as Ctrl-C.
        self.show_link(request)
        reader = _reader(secret=request.secret)
        try:
            # Prompts go to stderr, so that stdout carries only results.
            with contextlib.redirect_stdout(sys.stderr):
                text = reader(_prompt_text(request))
        except EOFError:
            click.echo(err=True)
            raise InputEnded(request.name, hint(request.name)) from None
        except KeyboardInterrupt:
            click.echo(err=True)  # ends the prompt's line
            raise

        if not text:
            return None
        for choice in request.choices or ():
            if text == str(choice):
                return choice
        return text

    def wait_until(
        self,
        when: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Sleep until ``when``, saying so; on a terminal, count the seconds down."""
        delay = when - clock()
        if delay <= 0:
            return

        live = not self.quiet and sys.stderr.isatty()
        if not live:
            self.say(f"waiting {_duration(delay)} before polling again...")
            sleep(delay)
            return
        while delay > 0:
            click.echo(
                f"\rwaiting {_duration(delay)} before polling again... ",
                nl=False,
                err=True,
            )
            sleep(min(1.0, delay))
            delay = when - clock()
        click.echo(err=True)


class Driver:
    """Keeps a run going until it ends, or until it waits for input.

    Args:
        engine: the engine the run belongs to.
        printer: where prompts and progress go.
        interactive: ask for inputs; when false, stop at a wait for input.
        resume_command: the command that resumes a run, given its id;
            ``None`` when the run cannot be resumed later (it is kept in
            memory).
    """

    def __init__(
        self,
        engine: Engine,
        printer: Printer,
        *,
        interactive: bool,
        resume_command: Callable[[str], str] | None = "mfaflow resume {}".format,
    ) -> None:
        self.engine = engine
        self.printer = printer
        self.interactive = interactive
        self.resume_command = resume_command
        #: The id of the run being driven, once known.
        self.run_id: str | None = None

    def start(self, flow: Flow, given: Mapping[str, Any]) -> RunResult:
        """Start a run of ``flow`` with the ``given`` inputs; ask for missing ones."""
        requests = {name: request_for(spec) for name, spec in flow.inputs.items()}
        missing = [
            requests[spec.name]
            for spec in flow.inputs.values()
            if spec.required and spec.name not in given
        ]
        self.printer.root_flow = flow.name

        def hint(name: str) -> str:
            return f"give it with --input {name}=VALUE"

        result = self._until_accepted(
            lambda values: self.engine.start(flow, values),
            requests,
            given,
            missing,
            hint,
        )
        self.run_id = result.run_id
        return self.finish(result)

    def resume(self, run_id: str, given: Mapping[str, Any]) -> RunResult:
        """Continue the stored run ``run_id``; ``given`` answers its first wait."""
        self.run_id = run_id
        result = self.engine.get(run_id)
        self.printer.root_flow = result.flow
        if not result.waiting_for:
            result = self.engine.resume(run_id, given or None)
        else:
            result = self._answer(result, given)
        return self.finish(result)

    def finish(self, result: RunResult) -> RunResult:
        """Resume the run until it ends, or (when not interactive) waits for input."""
        while not result.ended:
            if result.waiting_for:
                if not self.interactive:
                    return result
                result = self._answer(result, {})
            else:
                if result.resume_at is not None:
                    self.printer.wait_until(result.resume_at, clock=self.engine.clock)
                result = self.engine.resume(result.run_id)
        return result

    def _answer(self, result: RunResult, given: Mapping[str, Any]) -> RunResult:
        requests = {request.name: request for request in result.waiting_for}
        missing = [
            request for request in result.waiting_for if request.name not in given
        ]
        if missing and not self.interactive:
            return result
        later = self.resume_command

        def hint(name: str) -> str:
            if later is None:
                return "keep the run in a file (--store PATH) to give it later"
            return (
                "run with --no-input to stop there, then give it with "
                f"{later(result.run_id)} --input {name}=VALUE"
            )

        return self._until_accepted(
            lambda values: self.engine.resume(result.run_id, values),
            requests,
            given,
            missing,
            hint,
        )

    def _until_accepted(
        self,
        call: Callable[[dict[str, Any]], RunResult],
        requests: Mapping[str, InputRequest],
        given: Mapping[str, Any],
        missing: Sequence[InputRequest],
        hint: Hint,
    ) -> RunResult:
        """Ask for ``missing`` values, then ``call``; ask again for a refused value."""
        values = dict(given)
        pending = list(missing) if self.interactive else []
        while True:
            for request in pending:
                values[request.name] = self.printer.ask(request, hint)
            try:
                return call(values)
            except InputError as exc:
                if not self.interactive or exc.name not in requests:
                    raise
                click.echo(terminal_text(str(exc)), err=True)
                pending = [requests[exc.name]]


def request_for(spec: InputSpec) -> InputRequest:
    """The request a person is shown for one of a flow's own inputs."""
    choices = spec.choices if isinstance(spec.choices, list | tuple) else None
    return InputRequest.from_spec(spec, choices)


def report(
    result: RunResult,
    *,
    as_json: bool,
    show_secrets: bool,
    resume_hint: str | None,
    resume_note: str | None = None,
) -> int:
    """Print where ``result`` stands and return the exit code that fits it.

    0 for a run that succeeded, 1 for one that failed or expired (its
    message on stderr), :data:`EXIT_WAITING` for one that waits for input.
    ``resume_hint`` is the command that resumes a waiting run (``None``
    when none can), ``resume_note`` what that command cannot say. Secret
    outputs are masked and secret links left out, unless ``show_secrets``;
    outputs the flow marks ``reveal`` (recovery codes) are printed in any
    case, with a line saying to keep them: the caller then has the store
    forget them.
    """
    outputs = dict(result.outputs) if show_secrets else result.visible_outputs()
    revealed = revealed_outputs(result)
    outputs.update(revealed)
    if as_json:
        document = _document(result, outputs, show_secrets=show_secrets)
        click.echo(json.dumps(document, indent=2, default=str))
    elif result.waiting_for:
        _print_waiting(result, show_secrets=show_secrets)
        _print_resume(result, resume_hint, resume_note)
    elif result.ended:
        _print_ended(result, outputs)
    if revealed:
        click.echo(
            f"Keep {', '.join(sorted(revealed))} somewhere safe: shown this once, "
            "and not kept with the run.",
            err=True,
        )

    if result.waiting_for:
        return EXIT_WAITING
    if result.succeeded:
        return 0
    if as_json:
        click.echo(f"{result.outcome}: {terminal_text(_ending(result))}", err=True)
    return 1


def revealed_outputs(result: RunResult) -> dict[str, Any]:
    """The outputs ``result`` must show once in clear; absent ones left out."""
    return {
        name: result.outputs[name]
        for name in result.revealed_outputs
        if result.outputs.get(name) not in (None, "", [])
    }


def _print_waiting(result: RunResult, *, show_secrets: bool) -> None:
    click.echo(f"run {result.run_id} waits in {result.state!r} for:")
    for request in result.waiting_for:
        kind = "secret" if request.secret else "text"
        click.echo(f"  {request.name} ({kind}): {terminal_text(request.prompt)}")
        if request.choices:
            choices = ", ".join(map(str, request.choices))
            click.echo(f"    choices: {terminal_text(choices)}")
        if request.link and (show_secrets or not request.link_is_secret):
            click.echo(f"    link: {terminal_text(request.link)}")
        elif request.link:
            click.echo("    link: secret (--show-secrets prints it)")


def _print_resume(result: RunResult, hint: str | None, note: str | None) -> None:
    if hint is None:
        return
    names = " ".join(f"--input {request.name}=VALUE" for request in result.waiting_for)
    click.echo(f"resume with: {hint} {names}")
    if note:
        click.echo(note)


def _print_ended(result: RunResult, outputs: Mapping[str, Any]) -> None:
    """The ending and the outputs, as text a terminal shows as it is."""
    ending = terminal_text(_ending(result))
    if result.succeeded:
        click.echo(ending)
    else:
        click.echo(f"{result.outcome}: {ending}", err=True)
    for name, value in outputs.items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        click.echo(f"  {name}: {terminal_text(shown)}")


def _ending(result: RunResult) -> str:
    if result.message:
        return result.message
    state, outcome = result.state, result.outcome
    return f"The run ended in the state {state!r} with the outcome {outcome!r}."


def _document(
    result: RunResult, outputs: Mapping[str, Any], *, show_secrets: bool
) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "flow": result.flow,
        "status": result.status,
        "state": result.state,
        "outcome": result.outcome,
        "outputs": dict(outputs),
        "message": result.message,
        "waiting_for": [
            _request_document(request, show_secrets=show_secrets)
            for request in result.waiting_for
        ],
        "resume_at": result.resume_at,
    }


def _request_document(request: InputRequest, *, show_secrets: bool) -> dict[str, Any]:
    """What a request waits for, as JSON; a secret link only with ``show_secrets``."""
    document = request.to_dict()
    if request.link_is_secret and not show_secrets:
        del document["link"]
    return document


def _reader(*, secret: bool) -> Callable[[str], str]:
    """How to read one value: hidden on a terminal, a plain line from a pipe.

    Python's getpass warns that it cannot hide what is typed when standard
    input is not a terminal; but nothing is echoed there to hide.
    """
    if not secret:
        return termui.visible_prompt_func
    if sys.stdin.isatty():
        return termui.hidden_prompt_func
    return _read_line


def _read_line(prompt: str) -> str:
    """Write ``prompt`` and read one line of standard input, without its end.

    Raises:
        EOFError: the input has ended.
    """
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    # Ends the prompt's line, as the echo of the typed newline would have.
    sys.stdout.write("\n")
    return line.rstrip("\r\n")


def _prompt_text(request: InputRequest) -> str:
    """The prompt, its choices, and ': ' unless it ends in ':' or '?' already."""
    label = request.prompt.strip()
    if label.endswith(".") and not label.endswith(".."):
        label = label[:-1]
    if request.choices:
        label += f" ({', '.join(map(str, request.choices))})"
    return terminal_text(label) + (" " if label.endswith((":", "?")) else ": ")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.1f}s"
    return f"{math.ceil(seconds)}s"


def _arrow() -> str:
    """A right arrow, or ``->`` where stderr cannot encode one."""
    encoding = getattr(sys.stderr, "encoding", None) or "ascii"
    try:
        "→".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "→"
