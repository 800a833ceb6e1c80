"""Fixtures of the flow tests: a fresh tenant per test, served on loopback.

Each test gets a tenant on a fixed clock, served over HTTP by a
:class:`~mfaflow.tenant.LoopbackServer` on 127.0.0.1, and a driver whose
engine reads the tenant's clock, so polling, retries and expiry move only
when a test advances time.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

# The loopback helpers of the whole suite live one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _flow_helpers import (
    API,
    CALLBACK,
    PUBLIC_CLIENT,
    SERVER_CLIENT,
    SERVER_SECRET,
    START,
    Driver,
    base_config,
    make_driver,
)

from mfaflow.tenant import Clock, LoopbackServer, Tenant


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    """A fresh tenant with the test users, on a clock that stands still."""
    with Tenant(base_config(), clock=Clock.fixed(START), control=True) as made:
        yield made


@pytest.fixture
def served(tenant: Tenant) -> Iterator[LoopbackServer]:
    """The tenant, served over HTTP on 127.0.0.1."""
    with LoopbackServer(tenant) as server:
        yield server


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything mfaflow and the tenant log, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="mfaflow")
    return caplog


@pytest.fixture
def driver(served: LoopbackServer) -> Driver:
    """A driver for the public client, which has no secret."""
    return make_driver(served, redirect_uri=CALLBACK, audience=API)


@pytest.fixture
def server_driver(served: LoopbackServer) -> Driver:
    """A driver for the confidential client, which sends its secret."""
    return make_driver(
        served, SERVER_CLIENT, SERVER_SECRET, redirect_uri=CALLBACK, audience=API
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., Driver]]:
    """Serve a tenant whose configuration differs from the usual one.

    ``serve(client_id=..., client_secret=..., **changes)`` starts a tenant
    with ``changes`` applied to the configuration and returns a driver for
    it; everything stops when the test ends.
    """
    with contextlib.ExitStack() as stack:

        def make(
            client_id: str = PUBLIC_CLIENT,
            client_secret: str | None = None,
            **changes: Any,
        ) -> Driver:
            config = attrs.evolve(base_config(), **changes)
            tenant = stack.enter_context(
                Tenant(config, clock=Clock.fixed(START), control=True)
            )
            server = stack.enter_context(LoopbackServer(tenant))
            return make_driver(
                server, client_id, client_secret, redirect_uri=CALLBACK, audience=API
            )

        yield make
