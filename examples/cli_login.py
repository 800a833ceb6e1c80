"""Sign in from a terminal with a password and MFA, using mfaflow's password-grant.

Copy this file into your own command-line tool. It runs the shipped
``password-grant`` flow against an Auth0 tenant (or mfaflow's embedded one),
asks for whatever the run waits for (a one-time code, a choice of
authenticator, the first code of a new authenticator app, whose QR code it
draws) and prints the outcome with every token masked. Recovery codes (of a
first enrolment, or the replacement of one just used) are printed once, in
full: the tenant shows them nowhere else.

    python examples/cli_login.py --issuer http://127.0.0.1:8080/ \\
        --client-id mfaflow-demo --username demo@example.test

The issuer, client and user may come from the environment instead:
``MFAFLOW_ISSUER``, ``MFAFLOW_CLIENT_ID``, ``MFAFLOW_CLIENT_SECRET``,
``MFAFLOW_AUDIENCE`` and ``MFAFLOW_USERNAME``. The password and codes are
read without echo from a terminal, or as lines from standard input when it
is not one (so a script can pipe them in). Exit status: 0 signed in, 1 the
sign-in failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import segno

import mfaflow


def main(argv: Sequence[str] | None = None) -> int:
    """Sign in as the arguments say; return the exit status."""
    args = _parser().parse_args(argv)
    client = mfaflow.Client(
        args.issuer, args.client_id, args.client_secret, audience=args.audience
    )
    username = args.username or _ask_text("Email address: ")
    password = _ask_secret("Password: ")

    with mfaflow.RequestsTransport() as transport:
        engine = mfaflow.Engine(client, transport=transport)
        try:
            result = _sign_in(engine, {"username": username, "password": password})
        except mfaflow.MfaflowError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return _report(result)


def _sign_in(engine: mfaflow.Engine, inputs: dict[str, Any]) -> mfaflow.RunResult:
    """Start the password-grant flow and answer what it waits for until it ends."""
    result = engine.start("password-grant", inputs)
    while not result.ended:
        if result.waiting_for:
            result = _answer(engine, result)
        else:
            # A push notification is being polled: wait as long as the run says.
            time.sleep(max(0.0, (result.resume_at or 0) - time.time()))
            result = engine.resume(result.run_id)
    return result


def _answer(engine: mfaflow.Engine, result: mfaflow.RunResult) -> mfaflow.RunResult:
    """Ask for each input the run waits for; ask again for a refused value."""
    values = {request.name: _ask(request) for request in result.waiting_for}
    while True:
        try:
            return engine.resume(result.run_id, values)
        except mfaflow.InputError as exc:
            # The message never shows a secret value; the run is unchanged.
            print(exc, file=sys.stderr)
            refused = next(r for r in result.waiting_for if r.name == exc.name)
            values[refused.name] = _ask(refused)


def _ask(request: mfaflow.InputRequest) -> str:
    if request.link:
        _show_link(request.link)
    prompt = request.prompt.rstrip()
    if request.choices:
        prompt += f" ({', '.join(map(str, request.choices))})"
    prompt += " "
    return _ask_secret(prompt) if request.secret else _ask_text(prompt)


def _show_link(link: str) -> None:
    """Show a URL to open, or draw an otpauth:// URI as a QR code to scan.

    The otpauth:// URI holds the new authenticator's secret: it is never
    printed as text.
    """
    if not link.lower().startswith("otpauth:"):
        print(f"Open: {link}", file=sys.stderr)
        return
    print("Scan this QR code with your authenticator app:", file=sys.stderr)
    segno.make(link).terminal(out=sys.stderr, compact=True)


def _ask_text(prompt: str) -> str:
    print(prompt, end="", file=sys.stderr, flush=True)
    return _line()


def _ask_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return _ask_text(prompt)


def _line() -> str:
    line = sys.stdin.readline()
    if not line:
        print(file=sys.stderr)  # end the prompt's line
        raise SystemExit("error: the input ended before the sign-in was finished.")
    return line.rstrip("\r\n")


def _report(result: mfaflow.RunResult) -> int:
    """Print how the sign-in ended, tokens masked; 0 for success, else 1."""
    if not result.succeeded:
        print(f"{result.outcome}: {result.message}", file=sys.stderr)
        error = result.outputs.get("error")
        if error:
            print(f"  error: {error}", file=sys.stderr)
        return 1

    print(result.message)
    for name in ("access_token", "id_token", "refresh_token"):
        print(f"  {name}: {_masked(result.outputs.get(name))}")
    print(f"  expires_in: {result.outputs.get('expires_in')}")
    print(f"  scope: {result.outputs.get('scope')}")
    _show_recovery_codes(result.outputs)
    return 0


def _show_recovery_codes(outputs: Mapping[str, Any]) -> None:
    """Print the recovery codes a sign-in gave, the one time they are shown.

    A first enrolment gives ``recovery_codes``; signing in with a recovery
    code gives its replacement, ``recovery_code``. The tenant never shows
    them again, so they are printed (on standard output) rather than masked.
    """
    codes = list(outputs.get("recovery_codes") or [])
    if outputs.get("recovery_code"):
        codes.append(outputs["recovery_code"])
    if not codes:
        return
    print("  recovery codes (shown only now; keep them somewhere safe):")
    for code in codes:
        print(f"    {code}")


def _masked(token: Any) -> str:
    """A token's shape, never its value."""
    if not isinstance(token, str) or not token:
        return "(none)"
    kind = "JWT" if token.count(".") == 2 and token.startswith("eyJ") else "opaque"
    return f"({kind}, {len(token)} characters, masked)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Sign in with a password and MFA (mfaflow's password-grant)."
    )
    _option(parser, "--issuer", "MFAFLOW_ISSUER", "the tenant's base URL")
    _option(parser, "--client-id", "MFAFLOW_CLIENT_ID", "the application's id")
    _option(
        parser,
        "--client-secret",
        "MFAFLOW_CLIENT_SECRET",
        "the application's secret, for a confidential client",
        required=False,
    )
    _option(
        parser,
        "--audience",
        "MFAFLOW_AUDIENCE",
        "the API to sign in for",
        required=False,
    )
    _option(
        parser,
        "--username",
        "MFAFLOW_USERNAME",
        "the user's email address; asked for when not given",
        required=False,
    )
    return parser


def _option(
    parser: argparse.ArgumentParser,
    flag: str,
    variable: str,
    text: str,
    required: bool = True,
) -> None:
    given = os.environ.get(variable) or None
    parser.add_argument(
        flag,
        default=given,
        required=required and given is None,
        help=f"{text} (env {variable})",
    )


if __name__ == "__main__":
    sys.exit(main())
