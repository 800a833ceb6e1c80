"""Fixtures for the embedded tenant's tests: a tenant served on loopback, and a client.

Every test gets a fresh tenant on a fixed clock (started one second into a
TOTP step, close to real time so that JWT libraries accept ``iat``),
served by a real HTTP server on 127.0.0.1 from a thread. Password hashes
use scrypt's lowest work factor to keep logins fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

# The support modules of the whole suite (loopback servers, `mfaflow serve`)
# live one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _tenantkit import FAST_WORK_FACTOR, Api, Serve

from mfaflow.tenant import (
    DEMO_PASSWORD,
    Clock,
    LoopbackServer,
    Tenant,
    TenantConfig,
    default_config,
    hash_password,
)


@pytest.fixture(scope="session")
def base_config() -> TenantConfig:
    """The demo configuration, with cheap password hashes."""
    config = default_config()
    cheap = hash_password(DEMO_PASSWORD, work_factor=FAST_WORK_FACTOR)
    users = tuple(attrs.evolve(user, password_hash=cheap) for user in config.users)
    return attrs.evolve(config, users=users, password_work_factor=FAST_WORK_FACTOR)


@pytest.fixture
def config(base_config: TenantConfig) -> TenantConfig:
    """The configuration of the test's tenant; override it to change the tenant."""
    return base_config


@pytest.fixture
def clock() -> Clock:
    """A fixed clock, one second into the current TOTP step."""
    return Clock.fixed_for_tests()


@pytest.fixture
def tenant(config: TenantConfig, clock: Clock) -> Iterator[Tenant]:
    """A tenant with the control surface on."""
    with Tenant(config, clock=clock, control=True) as built:
        yield built


@pytest.fixture
def server(tenant: Tenant) -> Iterator[LoopbackServer]:
    """The tenant served on loopback."""
    with LoopbackServer(tenant) as served:
        yield served


@pytest.fixture
def api(server: LoopbackServer) -> Iterator[Api]:
    """A client of the served tenant."""
    with Api(server) as client:
        yield client


@pytest.fixture
def serve(clock: Clock) -> Serve:
    """Start another tenant, from a given configuration, on the test's clock.

    ``serve(config, **tenant_options)`` is a context manager yielding an
    :class:`Api` for it.
    """

    @contextmanager
    def start(config: TenantConfig, **options: Any) -> Iterator[Api]:
        options.setdefault("control", True)
        with (
            Tenant(config, clock=clock, **options) as built,
            LoopbackServer(built) as served,
            Api(served) as client,
        ):
            yield client

    return start
