"""The public API is exactly what ``mfaflow.__all__`` names."""

from __future__ import annotations

import inspect
import types

import mfaflow
from mfaflow import _errors


def test_all_names_exist() -> None:
    """Every name in __all__ can be imported from mfaflow."""
    missing = [name for name in mfaflow.__all__ if not hasattr(mfaflow, name)]
    assert missing == []


def test_all_is_complete() -> None:
    """Every public attribute of the package, modules aside, is in __all__."""
    public = {
        name
        for name, value in vars(mfaflow).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(mfaflow.__all__) == set()


def test_every_exception_is_public() -> None:
    """Each exception class of the error tree is exported from mfaflow."""
    classes = {
        name
        for name, value in vars(_errors).items()
        if inspect.isclass(value) and issubclass(value, mfaflow.MfaflowError)
    }
    assert classes <= set(mfaflow.__all__)


def test_importing_mfaflow_loads_no_optional_library() -> None:
    """import mfaflow needs neither the tenant's server stack nor store clients."""
    import subprocess
    import sys

    code = (
        "import sys, mfaflow; "
        "print(sorted(m for m in ('redis', 'psycopg', 'flask', 'selenium') "
        "if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "[]"
