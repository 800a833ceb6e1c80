"""Fixtures of the examples' tests: the embedded tenant served on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
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
