"""Node.js for tests: install a pinned npm project once, run scripts, read their JSON.

A *project* is a folder holding a ``package.json`` and the
``package-lock.json`` that pins every package. :func:`installed` runs
``npm ci`` there (install scripts off) the first time a test run needs
it, and again only when the lock file changes: a stamp in ``node_modules``
remembers the lock it installed. ``node_modules`` itself is not kept in
git.

:func:`run_script` runs a script of the project with ``node`` and returns
what it printed as JSON on its last line of stdout; a script that fails,
or prints no JSON, fails the test with its stderr. :func:`serving` runs a
server script for the length of a ``with`` block.

Where ``node`` or ``npm`` is missing, the test is skipped with the reason
on a user's machine, and fails on CI (``CI`` set), where they must exist.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest
from _serve import PATIENCE, read_until

__all__ = ["NodeProject", "installed", "run_script", "serving"]

#: How long ``npm ci`` may take, in seconds.
INSTALL_TIMEOUT = 300
_STAMP = ".mfaflow-lock-sha256"


def _missing(reason: str) -> NoReturn:
    """Skip the calling test because Node.js is unusable; fail it on CI."""
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (CI is set: tests that need it must run).", pytrace=False
        )
    pytest.skip(reason)


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        _missing(
            f"{name} is not on the PATH; install Node.js 20 or newer "
            "(Debian: apt-get install nodejs npm) to run these tests."
        )
    return found


class NodeProject:
    """An installed npm project: where it is and which ``node`` runs it."""

    def __init__(self, directory: Path, node: str) -> None:
        self.directory = directory
        self.node = node

    def __repr__(self) -> str:
        return f"NodeProject({str(self.directory)!r})"


@functools.cache
def _install(directory: Path) -> NodeProject:
    node, npm = _program("node"), _program("npm")
    lock = directory / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = directory / "node_modules" / _STAMP
    if not stamp.is_file() or stamp.read_text() != digest:
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            _missing(f"npm ci failed in {directory}: {done.stderr.strip()[-2000:]}")
        stamp.write_text(digest)
    return NodeProject(directory, node)


def installed(directory: Path) -> NodeProject:
    """Return the project in ``directory``, installing its locked packages if needed.

    Installs at most once per test run and lock file; skips (or, on
    CI, fails) the test when node or npm is missing or the install fails.
    """
    return _install(directory.resolve())


def run_script(
    project: NodeProject,
    script: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Any:
    """Run ``script`` (a file of the project) with node; return its last line as JSON.

    ``env`` adds variables to the script's environment.
    """
    done = subprocess.run(
        [project.node, script],
        cwd=project.directory,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"node {script} exited with {done.returncode}:\n"
            f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}",
            pytrace=False,
        )
    try:
        return json.loads(lines[-1])
    except ValueError:
        pytest.fail(
            f"node {script} printed no JSON on its last line: {lines[-1][:500]!r}",
            pytrace=False,
        )


@contextmanager
def serving(
    project: NodeProject,
    script: str,
    *,
    env: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Run the server ``script`` of the project with node; yield its first line as JSON.

    The script prints one line of JSON on stdout once it takes requests
    (its address, say) and stops when its stdin closes, which happens when
    the ``with`` block ends; it is killed if it does not stop. A script
    that ends or stalls before that line fails the test with its stderr.
    """
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [project.node, script],
            cwd=project.directory,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            yield _first_line(process, script, stderr)
        finally:
            _stop(process)


def _first_line(
    process: subprocess.Popen[bytes], script: str, stderr: IO[bytes]
) -> Any:
    assert process.stdout is not None
    try:
        line = read_until(process.stdout, b"\n").decode()
        return json.loads(line)
    except (AssertionError, ValueError) as exc:
        stderr.seek(0)
        pytest.fail(
            f"node {script} did not start: {exc}\n"
            f"stderr:\n{stderr.read().decode(errors='replace')[-4000:]}",
            pytrace=False,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert process.stdout is not None
    process.stdout.close()
