"""``mfaflow demo``: a first sign-in with MFA, against the embedded tenant.

The demo starts the embedded tenant in this process, serves it on a
loopback port (so every request of the flows is real HTTP), adds a new
user whose policy is MFA always, and runs two shipped flows for them:

1. ``password-grant``: the tenant answers ``mfa_required``; the user has no
   authenticator, so ``mfa-challenge`` hands over to ``mfa-enroll``, which
   enrols an authenticator app (its ``otpauth://`` URI is drawn as a QR
   code) and confirms it with the app's first code;
2. ``refresh``: the refresh token of that sign-in is exchanged, and the
   tenant rotates it.

By default the demo plays the person too: it computes each code from the
enrolled secret, as an authenticator app would. With ``interactive`` a
person scans the QR code with a real app and types the codes.

Everything the demo tells goes to ``out`` (stdout for the command): the
states each run enters, the outcome of each flow and a summary in which
tokens are described by their shape only. No password, code, TOTP secret
or token is printed unless ``show_secrets`` asks for them. Runs are kept
in memory and the tenant's state too: the demo writes no file.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

import click
import jwt
import pyotp
import requests
from attrs import evolve, frozen

from ._cli_links import draw_qr, is_otpauth
from ._cli_options import Failure
from ._cli_run import Driver, Printer
from ._engine import Client, Engine
from ._run import InputRequest, RunResult, texts_in
from ._transport import RequestsTransport
from .tenant import DEMO_API, DEMO_CLIENT_ID, LoopbackServer, Tenant, default_config

__all__ = ["DemoReport", "demo", "run_demo"]

#: The flows the demo runs, in order.
DEMO_FLOWS = ("password-grant", "refresh")

#: Answers a request for input in interactive mode; the terminal by default.
Ask = Callable[[InputRequest], Any]


@frozen(repr=False)
class DemoReport:
    """What a demo did, and the secrets it handled.

    The secrets (the user's password, the enrolment's ``otpauth://`` URI,
    the codes given, the tokens in the runs' outputs) are kept so that a
    caller, a test for one, can check that none of them was printed;
    ``repr`` shows none of them.

    Attributes:
        issuer: the URL the tenant was served at.
        email: the email address of the user the demo added.
        password: that user's password (secret).
        runs: the results of the flows that ran, in order.
        barcode_uri: the ``otpauth://`` URI of the enrolment (secret).
        codes: the one-time codes given, computed or typed (secret).
    """

    issuer: str
    email: str
    password: str
    runs: tuple[RunResult, ...] = ()
    barcode_uri: str | None = None
    codes: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        """Whether every flow of the demo ran and ended with success."""
        return len(self.runs) == len(DEMO_FLOWS) and all(
            run.succeeded for run in self.runs
        )

    @property
    def rotated(self) -> bool:
        """Whether the refresh gave a refresh token other than the sign-in's."""
        if len(self.runs) < len(DEMO_FLOWS):
            return False
        signed_in, refreshed = self.runs
        old = signed_in.outputs.get("refresh_token")
        new = refreshed.outputs.get("refresh_token")
        return bool(refreshed.outputs.get("rotated")) and bool(new) and new != old

    @property
    def totp_secret(self) -> str | None:
        """The TOTP secret in :attr:`barcode_uri`."""
        return None if self.barcode_uri is None else _totp_secret(self.barcode_uri)

    def secret_values(self) -> frozenset[str]:
        """Every secret value the demo handled, each as text."""
        found = {self.password, *self.codes}
        if self.barcode_uri is not None:
            found |= {self.barcode_uri, _totp_secret(self.barcode_uri)}
        for run in self.runs:
            for name in run.secret_outputs:
                found |= set(texts_in(run.outputs.get(name)))
        return frozenset(value for value in found if value)

    def __repr__(self) -> str:
        outcomes = [f"{run.flow}: {run.outcome}" for run in self.runs]
        return f"<DemoReport {self.email} at {self.issuer} {outcomes!r}>"


@click.command()
@click.option(
    "--interactive",
    is_flag=True,
    help="Type the codes yourself: scan the QR code with an authenticator app.",
)
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print the password, the TOTP secret, the codes and the tokens.",
)
def demo(interactive: bool, show_secrets: bool) -> None:
    """Sign a new user in with MFA against the embedded tenant.

    Starts the embedded tenant on a loopback port, adds a user who must
    pass MFA, and runs the password-grant flow (which enrols an
    authenticator app and confirms its first code), then the refresh flow
    (which rotates the refresh token). Needs no input, no configuration
    and no network beyond loopback; writes no file.
    """
    report = run_demo(sys.stdout, interactive=interactive, show_secrets=show_secrets)
    if not report.succeeded:
        last = report.runs[-1]
        why = last.message or f"it ended in the state {last.state!r}."
        raise Failure([f"The demo's {last.flow} run did not succeed: {why}"])


def run_demo(
    out: TextIO,
    interactive: bool = False,
    *,
    show_secrets: bool = False,
    ask: Ask | None = None,
) -> DemoReport:
    """Run the demo, telling ``out`` what happens; return what it did.

    Args:
        out: where the demo's lines and the QR code go.
        interactive: let a person give the codes instead of computing them.
        show_secrets: print the secrets instead of masking them.
        ask: in interactive mode, how a person's answer is read (the
            terminal by default); it gets the request without its
            ``otpauth://`` link unless ``show_secrets``.

    Returns:
        The report; ``succeeded`` is false when a flow did not end with
        success (the demo stops at the first that does not).

    Raises:
        MfaflowError: a run stopped on an error.
        InputEnded: in interactive mode, the input ended before a code.
        Failure: without ``interactive``, a run asked for something other
            than the code of the enrolled app.
    """
    email = f"demo-{secrets.token_hex(3)}@example.test"
    password = secrets.token_urlsafe(12)
    person = _Person(out, interactive=interactive, show_secrets=show_secrets, ask=ask)
    printer = _DemoPrinter(out, person)

    with _served_tenant() as server, _loopback_transport() as transport:
        server.tenant.add_user(email, password, mfa="always", name="Demo User")
        printer.say(f"mfaflow demo: the embedded tenant serves {server.url}")
        printer.say(
            f"A new user, {email}, must pass MFA and has no authenticator yet "
            f"(password: {_secret(password, show_secrets)})."
        )
        client = Client(server.url, DEMO_CLIENT_ID, audience=DEMO_API)
        engine = Engine(client, transport=transport, hooks=[printer.announce])
        driver = Driver(engine, printer, interactive=True)

        given = {"username": email, "password": password, "factor": "otp"}
        runs = [_run_flow(driver, printer, "password-grant", given)]
        if runs[0].succeeded:
            old_token = runs[0].outputs["refresh_token"]
            runs.append(
                _run_flow(driver, printer, "refresh", {"refresh_token": old_token})
            )
            if runs[1].outputs.get("refresh_token") not in (None, old_token):
                printer.say(
                    "The refresh token changed: the tenant rotated it, and the old "
                    "one must not be used again."
                )

    report = DemoReport(
        issuer=server.url,
        email=email,
        password=password,
        runs=tuple(runs),
        barcode_uri=person.barcode_uri,
        codes=tuple(person.codes),
    )
    _print_summary(printer, report, show_secrets=show_secrets)
    return report


# -- the person at the terminal ---------------------------------------------


class _Person:
    """Answers the runs' requests: computes each code, or lets a person type it.

    Shows the enrolment's ``otpauth://`` URI as a QR code the first time a
    request carries it as its link, and remembers the URI and the codes
    given.
    """

    def __init__(
        self, out: TextIO, *, interactive: bool, show_secrets: bool, ask: Ask | None
    ) -> None:
        self.out = out
        self.interactive = interactive
        self.show_secrets = show_secrets
        self.ask = ask
        self.barcode_uri: str | None = None
        self.codes: list[str] = []

    def answer(self, request: InputRequest, say: Callable[[str], None]) -> Any:
        """The value for ``request``; ``None`` when a person gives nothing."""
        link = request.link
        if link and is_otpauth(link) and link != self.barcode_uri:
            self.barcode_uri = link
            self._show_enrolment(link, say)
        if request.name != "otp" or self.barcode_uri is None:
            if not self.interactive:
                raise Failure(
                    [f"The demo was not expecting the request for {request.name!r}."]
                )
            return self._typed(request)
        code = self._typed(request) if self.interactive else self._computed(say)
        if isinstance(code, str):
            self.codes.append(code)
        return code

    def _show_enrolment(self, uri: str, say: Callable[[str], None]) -> None:
        say("")
        say(
            "The tenant answered mfa_required and the user has no authenticator, "
            "so an authenticator app is enrolled."
        )
        say(
            "Scan this QR code with an authenticator app (it holds the otpauth:// "
            "URI of the new TOTP secret):"
        )
        draw_qr(uri, self.out)
        if self.show_secrets:
            say(f"otpauth URI: {uri}")

    def _computed(self, say: Callable[[str], None]) -> str:
        assert self.barcode_uri is not None  # set before a code is computed
        code: str = pyotp.TOTP(_totp_secret(self.barcode_uri)).now()
        if self.show_secrets:
            say(f"(computed the code {code} from the enrolled secret, as an app would)")
        else:
            say(
                "(computed the 6-digit code from the enrolled secret, "
                "as an authenticator app would)"
            )
        return code

    def _typed(self, request: InputRequest) -> Any:
        if self.ask is not None:
            return self.ask(
                request if self.show_secrets else evolve(request, link=None)
            )
        # The link is drawn above already, as a QR code.
        return Printer().ask(evolve(request, link=None), _interactive_hint)


def _interactive_hint(name: str) -> str:
    return "run mfaflow demo without --interactive to have the codes computed"


class _DemoPrinter(Printer):
    """The CLI's printer, telling ``out`` and answering through a :class:`_Person`."""

    def __init__(self, out: TextIO, person: _Person) -> None:
        super().__init__()
        self.out = out
        self.person = person

    def say(self, text: str) -> None:
        self.out.write(_fitted(text, self.out) + "\n")
        self.out.flush()

    def ask(self, request: InputRequest, hint: Callable[[str], str]) -> Any:
        return self.person.answer(request, self.say)


# -- running the flows ------------------------------------------------------


@contextmanager
def _served_tenant() -> Iterator[LoopbackServer]:
    """The demo tenant, in memory, served on a loopback port."""
    with Tenant(default_config()) as tenant, LoopbackServer(tenant) as server:
        yield server


@contextmanager
def _loopback_transport() -> Iterator[RequestsTransport]:
    """A transport that ignores proxy settings: the tenant is on loopback."""
    session = requests.Session()
    session.trust_env = False
    try:
        with RequestsTransport(session=session) as transport:
            yield transport
    finally:
        session.close()


def _run_flow(
    driver: Driver, printer: _DemoPrinter, name: str, given: Mapping[str, Any]
) -> RunResult:
    flow = driver.engine.flow(name)
    printer.say("")
    printer.say(f"{name}: {flow.summary}")
    result = driver.start(flow, given)
    printer.say(f"{name} ended in {result.state}: {result.outcome}. {result.message}")
    return result


# -- the summary ------------------------------------------------------------


def _print_summary(
    printer: _DemoPrinter, report: DemoReport, *, show_secrets: bool
) -> None:
    say = printer.say
    say("")
    say("Summary:")
    for run in report.runs:
        say(f"  {run.flow:<15} {run.outcome:<8} {_what_happened(run, report)}")
    if not report.succeeded:
        return

    signed_in, refreshed = report.runs
    tokens = (
        ("access token", refreshed.outputs.get("access_token")),
        ("ID token", refreshed.outputs.get("id_token")),
        ("refresh token", refreshed.outputs.get("refresh_token")),
    )
    for label, token in tokens:
        say(f"  {label + ':':<15} {_token(token, show_secrets)}")
    codes = signed_in.outputs.get("recovery_codes") or []
    say(f"  {'recovery codes:':<15} {_recovery_codes(codes, show_secrets)}")
    if not show_secrets:
        say(
            "Secrets are masked: --show-secrets prints them; --interactive lets you "
            "scan the QR code with your own app and type the codes."
        )


def _what_happened(run: RunResult, report: DemoReport) -> str:
    if not run.succeeded:
        return f"{run.state}: {run.message}"
    if run.flow == "refresh":
        rotation = "rotated" if report.rotated else "not rotated"
        return f"{run.state}: new tokens; the refresh token was {rotation}"
    if _entered(run, "mfa-enroll", "enrolled"):
        return (
            f"{run.state}: mfa_required, an authenticator app enrolled, "
            "its first code accepted"
        )
    return f"{run.state}: {run.message}"


def _entered(run: RunResult, flow: str, state: str) -> bool:
    return any(entry.flow == flow and entry.state == state for entry in run.history)


def _token(token: Any, show_secrets: bool) -> str:
    """A token's shape (kind, length), or the token itself when asked."""
    if not isinstance(token, str) or not token:
        return "(none)"
    if show_secrets:
        return token
    try:
        algorithm = jwt.get_unverified_header(token).get("alg", "unsigned")
    except jwt.DecodeError:
        return f"(opaque, {len(token)} chars, masked)"
    return f"{token[:3]}\u2026 ({algorithm} JWT, {len(token)} chars, masked)"


def _recovery_codes(codes: Any, show_secrets: bool) -> str:
    listed = list(texts_in(codes))
    if show_secrets:
        return ", ".join(listed) or "(none)"
    # The demo's user and tenant end with the demo: its codes are not shown
    # in clear as mfaflow run shows a real user's.
    return f"{len(listed)} (masked; --show-secrets prints them)"


# -- small helpers ----------------------------------------------------------


def _secret(value: str, show_secrets: bool) -> str:
    return value if show_secrets else "generated, masked"


def _totp_secret(uri: str) -> str:
    return parse_qs(urlsplit(uri).query).get("secret", [""])[0]


def _encoding(out: TextIO) -> str:
    return getattr(out, "encoding", None) or "utf-8"


def _fitted(text: str, out: TextIO) -> str:
    """``text`` with what ``out`` cannot encode spelled in ASCII."""
    encoding = _encoding(out)
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.replace("\u2192", "->").replace("\u2026", "...")
        return text.encode("ascii", "replace").decode("ascii")
    return text
