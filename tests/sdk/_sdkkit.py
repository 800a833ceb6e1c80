"""What the SDK tests share: the npm project, and the steps a script reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

__all__ = ["NODE_PROJECT", "Steps"]

#: The npm project with the pinned JavaScript SDKs and the scripts that drive them.
NODE_PROJECT = Path(__file__).resolve().parent / "node"


class Steps:
    """The outcome of each named step: ``{"ok": true, "value": ...}`` or an error."""

    def __init__(self, steps: dict[str, dict[str, Any]]) -> None:
        self._steps = steps

    def ok(self, name: str) -> Any:
        """Return the value of step ``name``; fail the test unless it succeeded."""
        found = self._get(name)
        if not found["ok"]:
            pytest.fail(f"Step {name!r} failed: {found['error']}", pytrace=False)
        return found["value"]

    def refused(self, name: str) -> dict[str, Any]:
        """Return the error of step ``name``; fail the test if it succeeded."""
        found = self._get(name)
        if found["ok"]:
            pytest.fail(
                f"Step {name!r} succeeded but should have failed: {found['value']}",
                pytrace=False,
            )
        error: dict[str, Any] = found["error"]
        return error

    def _get(self, name: str) -> dict[str, Any]:
        if name not in self._steps:
            pytest.fail(
                f"Step {name!r} did not run; steps run: {list(self._steps)}",
                pytrace=False,
            )
        return self._steps[name]
