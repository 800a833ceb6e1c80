"""``mfaflow serve`` as a child process: started on a free port, read, stopped.

The child gets its own data folder (``XDG_DATA_HOME``), so ``--tls`` makes
its certificate there and not in the user's home. It is stopped with
SIGTERM (or the signal asked for) when its ``with`` block ends, and killed
if it does not stop.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from attrs import define, field

__all__ = ["Served", "ctrl_c_as_in_a_terminal", "press_ctrl_c", "read_until", "served"]

#: How long a child may take to start or stop, in seconds.
PATIENCE = 60
_CERTIFICATE_LINE = "Its self-signed certificate: "


def ctrl_c_as_in_a_terminal() -> None:
    """Give a child started from here Ctrl-C's default action, as in a terminal.

    For ``preexec_fn``: a suite started as a background job has SIGINT
    ignored, which its children inherit, and Python then never raises
    KeyboardInterrupt; the tests of Ctrl-C would wait for nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def press_ctrl_c(process: subprocess.Popen[bytes]) -> bytes:
    """Send SIGINT until the child reacts on stderr; return what it wrote.

    Python acts on a signal between bytecodes, so one that lands after a
    prompt is written but before the read begins waits for the read to end.
    A person presses Ctrl-C again; this does too, once a second.
    """
    assert process.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        for _ in range(PATIENCE):
            process.send_signal(signal.SIGINT)
            if selector.select(timeout=1):
                return os.read(process.stderr.fileno(), 4096)
    raise AssertionError(f"the child did not react to Ctrl-C in {PATIENCE} s")


def read_until(stream: IO[bytes] | Any, marker: bytes) -> bytes:
    """Read ``stream`` until ``marker`` appears; fail if it ends or stalls first."""
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while marker not in seen:
            assert selector.select(timeout=PATIENCE), f"no {marker!r} in {seen!r}"
            chunk = os.read(stream.fileno(), 4096)
            assert chunk, f"the stream ended without {marker!r}: {seen!r}"
            seen += chunk
    return seen


@define
class Served:
    """A running ``mfaflow serve``: its URL, certificate and what it printed."""

    url: str
    process: subprocess.Popen[bytes]
    started: str
    certificate: Path | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stderr: str = field(default="", init=False)

    def stop(self) -> int:
        """Send ``stop_signal``, wait, keep all of stderr; return the status."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
        return self.wait()

    def wait(self) -> int:
        """Wait for the child to end, keeping its stderr; return the status."""
        try:
            _, rest = self.process.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, rest = self.process.communicate()
        self.stderr = self.started + rest.decode()
        return self.process.returncode


@contextmanager
def served(
    *options: str,
    data_home: Path,
    env: Mapping[str, str] | None = None,
    expect_url: bool = True,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> Iterator[Served]:
    """Run ``mfaflow serve`` with ``options``; yield it once it prints its URL.

    ``data_home`` becomes the child's ``XDG_DATA_HOME``; ``env`` adds
    variables. With ``--tls`` the certificate it names is read from its
    stderr. With ``expect_url=False`` it is yielded at once, for a child
    expected to fail. ``stop_signal`` stops it: SIGINT is Ctrl-C.
    """
    child_env = {**os.environ, "XDG_DATA_HOME": str(data_home), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "mfaflow", "serve", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        start_new_session=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    running = Served("", process, "", stop_signal=stop_signal)
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        if not expect_url:
            yield running
            return
        running.url = read_until(process.stdout, b"\n").decode().strip()
        # The certificate's line comes after the one that says how to stop.
        last = b".pem\n" if "--tls" in options else b"Ctrl-C stops it.\n"
        running.started = read_until(process.stderr, last).decode()
        if "--tls" in options:
            line = next(
                line
                for line in running.started.splitlines()
                if line.startswith(_CERTIFICATE_LINE)
            )
            running.certificate = Path(line.removeprefix(_CERTIFICATE_LINE))
        yield running
    finally:
        running.stop()
