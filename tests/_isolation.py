"""Commands run by the tests see none of the user's own mfaflow setup.

The CLI reads its key file and default store from the XDG config and data
folders, and its defaults from ``MFAFLOW_*`` variables; a test that runs it
gets folders of its own and none of those variables, so that it neither
reads nor writes anything of the user's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["isolate"]


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point the config and data folders under ``tmp_path``; unset ``MFAFLOW_*``.

    ``MFAFLOW_TEST_*`` stay: they name the services the tests use, not
    settings of mfaflow. Returns the folders, by the names ``config`` and
    ``data``.
    """
    for name in list(os.environ):
        if name.startswith("MFAFLOW_") and not name.startswith("MFAFLOW_TEST_"):
            monkeypatch.delenv(name)
    folders = {"config": tmp_path / "config", "data": tmp_path / "data"}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folders["config"]))
    monkeypatch.setenv("XDG_DATA_HOME", str(folders["data"]))
    return folders
