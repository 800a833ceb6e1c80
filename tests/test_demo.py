"""``mfaflow demo``: a new user signs in with MFA, enrols an app, refreshes.

The demo serves the embedded tenant on a real loopback port in its own
process; these tests run it through click's test runner, as a real
subprocess, and through :func:`mfaflow._cli_demo.run_demo`, which hands
back the secrets the demo handled so that the tests can check none of
them was printed.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyotp
import pytest
import segno
from click.testing import CliRunner, Result

from mfaflow import InputRequest
from mfaflow import _cli_demo as demo_module
from mfaflow._cli import cli
from mfaflow._cli_demo import DemoReport, run_demo

#: The states a demo enters, in order, as the CLI's printer names them.
STATES = (
    "→ prepare",
    "→ request_token (ok)",
    "→ step_up (mfa_required)",
    "→ mfa-challenge/list_authenticators",
    "→ mfa-challenge/enrol (enrol)",
    "→ mfa-enroll/offer_factors",
    "→ mfa-enroll/check_factor (ok)",
    "→ mfa-enroll/associate (ok)",
    "→ mfa-enroll/ask_first_code (ok)",
    "→ mfa-enroll/confirm_otp (ok)",
    "→ mfa-enroll/enrolled (ok)",
    "→ signed_in (success)",
    "→ request_token",
    "→ refreshed (ok)",
)

#: Shapes of secrets, for output whose exact secrets the test cannot know.
SECRET_SHAPES = (
    re.compile(r"eyJ[\w-]{8,}\.[\w-]+"),  # a JWT
    re.compile(r"otpauth://totp/"),
    re.compile(r"secret="),
    re.compile(r"\b[A-Z2-7]{32}\b"),  # a base32 TOTP secret
    re.compile(r"\b[A-Z0-9]{24}\b"),  # a recovery code
    re.compile(r"[\w-]{40,}"),  # an opaque token
)


def in_order(text: str, parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` occur in ``text`` one after another."""
    position = 0
    for part in parts:
        position = text.find(part, position)
        if position < 0:
            return False
        position += len(part)
    return True


def qr_block(uri: str) -> str:
    """The QR code of ``uri`` as the demo draws it on a Unicode terminal."""
    drawn = io.StringIO()
    segno.make(uri).terminal(out=drawn, compact=True)
    return drawn.getvalue()


def assert_no_secret(output: str, report: DemoReport) -> None:
    secrets = report.secret_values()
    assert report.password in secrets
    assert report.totp_secret in secrets
    for secret in secrets:
        assert secret not in output


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[DemoReport]:
    """The reports of the demos the CLI runs, caught as run_demo returns them."""
    caught: list[DemoReport] = []

    def spy(*args: Any, **kwargs: Any) -> DemoReport:
        report = run_demo(*args, **kwargs)
        caught.append(report)
        return report

    monkeypatch.setattr(demo_module, "run_demo", spy)
    return caught


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["demo", *args], input=input)


def test_demo_signs_in_enrols_and_refreshes(reports: list[DemoReport]) -> None:
    """The demo exits 0 after naming each state, drawing the QR code and rotating."""
    result = invoke()

    assert result.exit_code == 0, result.output
    (report,) = reports
    assert report.succeeded
    assert report.rotated
    assert in_order(result.output, STATES)
    assert qr_block(report.barcode_uri or "") in result.output
    assert "password-grant ended in signed_in: success." in result.output
    assert "refresh ended in refreshed: success." in result.output
    assert "The refresh token changed" in result.output
    assert "the refresh token was rotated" in result.output


def test_demo_prints_no_secret(reports: list[DemoReport]) -> None:
    """No password, TOTP secret, code, token or recovery code reaches the output."""
    result = invoke()

    (report,) = reports
    assert len(report.codes) == 1
    assert "computed the 6-digit code from the enrolled secret" in result.output
    assert_no_secret(result.output, report)
    assert_no_secret(repr(report), report)


def test_demo_describes_tokens_by_their_shape(reports: list[DemoReport]) -> None:
    """The summary gives each token's kind and length instead of its value."""
    result = invoke()

    refreshed = reports[0].runs[1].outputs
    access, refresh = refreshed["access_token"], refreshed["refresh_token"]
    assert f"access token:   eyJ… (RS256 JWT, {len(access)} chars, masked)" in (
        result.output
    )
    assert f"refresh token:  (opaque, {len(refresh)} chars, masked)" in result.output
    assert "recovery codes: 1 (masked; --show-secrets prints them)" in result.output


def test_show_secrets_prints_them(reports: list[DemoReport]) -> None:
    """With --show-secrets the password, the otpauth URI, the code and tokens show."""
    result = invoke("--show-secrets")

    assert result.exit_code == 0, result.output
    (report,) = reports
    shown = [report.password, report.barcode_uri, *report.codes]
    shown += [report.runs[1].outputs[name] for name in ("access_token", "id_token")]
    shown.append(report.runs[1].outputs["refresh_token"])
    shown += report.runs[0].outputs["recovery_codes"]
    for secret in shown:
        assert secret in result.output


def test_demo_as_a_subprocess_writes_nothing_and_ignores_proxies(
    tmp_path: Path,
) -> None:
    """`python -m mfaflow demo` succeeds with no files written, proxies set or not."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    with socket.socket() as closed:  # a proxy that refuses every connection
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    done = subprocess.run(
        [sys.executable, "-m", "mfaflow", "demo"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert in_order(done.stdout, STATES)
    assert re.search(r"^[ ▀▄█]{20,}$", done.stdout, re.MULTILINE)
    assert "the refresh token was rotated" in done.stdout
    for shape in SECRET_SHAPES:
        assert not shape.search(done.stdout + done.stderr), shape.pattern
    assert list(home.iterdir()) == []
    assert list(work.iterdir()) == []


def test_interactive_demo_takes_the_typed_code() -> None:
    """In interactive mode the code a person types from their app is accepted."""
    out = io.StringIO()
    asked: list[InputRequest] = []

    def person(request: InputRequest) -> str:
        asked.append(request)
        assert request.link is not None  # given under show_secrets
        return str(pyotp.parse_uri(request.link).now())

    report = run_demo(out, interactive=True, show_secrets=True, ask=person)

    assert report.succeeded
    assert [request.name for request in asked] == ["otp"]
    assert asked[0].secret
    assert "computed" not in out.getvalue()


def test_interactive_demo_masks_the_uri_and_fails_on_wrong_codes() -> None:
    """Wrong typed codes are asked for again, then end the demo as a failure."""
    out = io.StringIO()
    asked: list[InputRequest] = []

    def person(request: InputRequest) -> str:
        asked.append(request)
        return "000000"

    report = run_demo(out, interactive=True, ask=person)

    assert not report.succeeded
    assert [run.state for run in report.runs] == ["mfa_failed"]
    assert len(asked) == 3
    assert all(request.link is None for request in asked)
    assert all("otpauth://" not in request.prompt for request in asked)
    assert "(scan the QR code)" in asked[0].prompt
    assert asked[1].prompt.startswith("That code was not accepted.")
    assert qr_block(report.barcode_uri or "") in out.getvalue()
    assert "Summary:" in out.getvalue()
    assert_no_secret(out.getvalue(), report)


def test_interactive_command_exits_1_after_wrong_codes() -> None:
    """`mfaflow demo --interactive` exits 1 with an error after three wrong codes."""
    result = invoke("--interactive", input="000000\n" * 3)

    assert result.exit_code == 1, result.output
    assert result.output.count("type the 6-digit code it shows") == 3
    assert "otpauth://totp/" not in result.output
    assert (
        "error: The demo's password-grant run did not succeed: The code was not "
        "accepted 3 times" in result.output
    )
    assert "000000" not in result.output


def test_interactive_command_says_what_to_do_when_input_ends() -> None:
    """When standard input ends before a code, the error says how to go on."""
    result = invoke("--interactive", input="")

    assert result.exit_code == 1
    assert result.output.rstrip().endswith(
        "error: The input ended before a value for 'otp' was given; run mfaflow "
        "demo without --interactive to have the codes computed."
    )
