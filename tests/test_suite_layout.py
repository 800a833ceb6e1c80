"""The test folders collect in any combination and order.

Each folder's ``conftest.py`` puts ``tests/`` on ``sys.path``, and pytest
imports every conftest and test module under its bare name, so two
modules with one name, or a test importing ``conftest`` (whichever folder
pytest read first wins), break ``pytest FOLDER FOLDER``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent
_IMPORTS_CONFTEST = re.compile(r"^\s*(from conftest import|import conftest)\b", re.M)


def _modules() -> list[Path]:
    return [path for path in TESTS.rglob("*.py") if "node_modules" not in path.parts]


def test_no_module_imports_a_conftest() -> None:
    """What tests share lives in modules of their own, never in a conftest."""
    importing = [
        str(path.relative_to(TESTS))
        for path in _modules()
        if _IMPORTS_CONFTEST.search(path.read_text(encoding="utf-8"))
    ]

    assert importing == []


def test_module_names_are_unique_across_folders() -> None:
    """No two test or support modules share a name, conftests apart."""
    names = Counter(path.name for path in _modules() if path.name != "conftest.py")

    assert [name for name, count in names.items() if count > 1] == []


def test_folders_collect_in_reverse_order() -> None:
    """Collecting the folders last to first (tenant before flows, say) finds
    every test without an error."""
    folders = sorted(
        (
            path
            for path in TESTS.iterdir()
            if path.is_dir() and any(path.glob("test_*.py"))
        ),
        reverse=True,
    )

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *map(str, folders)],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert re.search(r"^\d+ tests collected", done.stdout, re.M), done.stdout[-2000:]
