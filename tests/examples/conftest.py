"""Fixtures of the examples' tests: the embedded tenant served on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The support modules of the whole suite (Chromium, loopback servers) live
# one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _examples_kit import tenant_config

from mfaflow.tenant import LoopbackServer, Tenant


@pytest.fixture
def served() -> Iterator[LoopbackServer]:
    """A fresh tenant with the examples' users, served on 127.0.0.1."""
    with (
        Tenant(tenant_config(), control=True) as tenant,
        LoopbackServer(tenant) as server,
    ):
        yield server
