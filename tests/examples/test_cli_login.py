"""examples/cli_login.py signs a user in with a password and a one-time code.

The script runs as a real subprocess against the embedded tenant served on
loopback; the test types the password and the code on its standard input,
as a person (or a script piping them in) would, waiting for a prompt where
the answer is only known once the script has asked (a code just sent).
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from typing import IO

import pyotp
from _examples_kit import (
    EXAMPLES,
    NEW_USER,
    OTP_SECRET,
    OTP_USER,
    PASSWORD,
    TOKEN_SHAPES,
)

from mfaflow.tenant import DEMO_CLIENT_ID, LoopbackServer

SCRIPT = EXAMPLES / "cli_login.py"


def script_env(served: LoopbackServer) -> dict[str, str]:
    """The environment that points the script at the served tenant."""
    return {
        **os.environ,
        "MFAFLOW_ISSUER": served.url,
        "MFAFLOW_CLIENT_ID": DEMO_CLIENT_ID,
        "NO_PROXY": "127.0.0.1",
    }


def run_script(
    served: LoopbackServer, typed: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the script with the issuer and client in the environment."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=typed,
        env=script_env(served),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_until(stream: IO[bytes], text: str, seconds: float = 30.0) -> str:
    """Read ``stream`` until ``text`` appears; what was read.

    Raises:
        AssertionError: the stream ended, or ``seconds`` passed, first.
    """
    read = b""
    deadline = time.monotonic() + seconds
    while text.encode() not in read:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([stream], [], [], max(0.0, left))
        chunk = os.read(stream.fileno(), 4096) if ready else b""
        assert chunk, f"{text!r} did not appear; the script wrote {read!r}"
        read += chunk
    return read.decode()


def assert_no_secret_printed(output: str, *secrets: str) -> None:
    """``output`` holds none of ``secrets`` (the password, codes typed) and
    nothing shaped like a token."""
    for secret in (PASSWORD, *secrets):
        assert not re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", output)
    for shape in TOKEN_SHAPES:
        assert not shape.search(output), shape.pattern


def test_cli_login_signs_in_with_a_typed_code(served: LoopbackServer) -> None:
    """Given the password and the app's code on stdin, the script signs in."""
    code = pyotp.TOTP(OTP_SECRET).now()

    done = run_script(served, f"{PASSWORD}\n{code}\n", "--username", OTP_USER)

    assert done.returncode == 0, done.stderr
    assert f"Signed in as {OTP_USER}." in done.stdout
    assert "access_token: (JWT, " in done.stdout
    assert "refresh_token: (opaque, " in done.stdout
    assert "Enter the 6-digit code from your authenticator app." in done.stderr
    assert_no_secret_printed(done.stdout + done.stderr, code)


def test_cli_login_asks_again_after_a_wrong_code(served: LoopbackServer) -> None:
    """A wrong code is asked for again, and the right one then signs in."""
    code = pyotp.TOTP(OTP_SECRET).now()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    done = run_script(served, f"{OTP_USER}\n{PASSWORD}\n{wrong}\n{code}\n")

    assert done.returncode == 0, done.stderr
    assert "That code was not accepted." in done.stderr
    assert_no_secret_printed(done.stdout + done.stderr, wrong, code)


def test_cli_login_reports_a_wrong_password(served: LoopbackServer) -> None:
    """A wrong password exits 1 with the flow's one-line message on stderr."""
    done = run_script(served, "not-the-password\n", "--username", OTP_USER)

    assert done.returncode == 1
    assert "failure: The username or password is wrong." in done.stderr
    assert_no_secret_printed(done.stdout + done.stderr, "not-the-password")


def test_cli_login_needs_an_issuer() -> None:
    """Without --issuer or MFAFLOW_ISSUER the script exits 2 and names the option."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFAFLOW_")}

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--client-id", DEMO_CLIENT_ID],
        input="",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "--issuer" in done.stderr


def test_cli_login_prints_recovery_codes_once(served: LoopbackServer) -> None:
    """A first enrolment's recovery code is printed once, in full, and works."""
    script = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--username", NEW_USER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=script_env(served),
    )
    assert script.stdin is not None
    assert script.stderr is not None
    script.stdin.write(f"{PASSWORD}\nemail\n".encode())
    script.stdin.flush()
    asked = read_until(script.stderr, "to confirm the enrolment. ")
    code = served.tenant.last_code(NEW_USER, "email")
    stdout, stderr = script.communicate(f"{code}\n".encode(), timeout=60)
    output = stdout.decode()

    assert script.returncode == 0, asked + stderr.decode()
    assert "Which factor do you want to enrol?" in asked
    assert f"Signed in as {NEW_USER}." in output
    (recovery,) = re.findall(r"^    ([A-Z0-9]{24})$", output, re.M)
    assert (output + asked + stderr.decode()).count(recovery) == 1
    assert "recovery codes (shown only now; keep them somewhere safe):" in output
    assert served.tenant.verify_recovery_code(NEW_USER, recovery) != recovery
    assert_no_secret_printed(output + asked + stderr.decode(), code)
