"""The package type-checks strictly, and the code is linted and formatted.

The settings live in pyproject.toml; these tests make the suite enforce them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["mypy"], id="mypy"),
        pytest.param(["ruff", "check", "."], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", "."], id="ruff-format"),
    ],
)
def test_static_check_passes(command: list[str]) -> None:
    """A static check over the repository finds nothing."""
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
