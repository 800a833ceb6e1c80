"""pytest fixtures for testing code that signs in through mfaflow.

The plugin serves the embedded tenant on a loopback port for each test, so
a test drives real HTTP against a tenant it fully controls: it reads the
codes the tenant "sent", approves pushes, and moves the tenant's clock
instead of sleeping. Installing mfaflow registers it with pytest under
this module's name (entry point ``pytest11``), so it loads by itself; with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, enable it with
``-p mfaflow.testing`` or ``pytest_plugins = ["mfaflow.testing"]``.
Fixtures:

- ``mfaflow_config``: the tenant's configuration (session-scoped): the demo
  tenant with cheap password hashes; override it to serve another one;
- ``mfaflow_tenant``: a :class:`LiveTenant`, the tenant served on
  ``http://127.0.0.1:<port>/`` with the control surface on and a fixed
  clock, fresh for each test;
- ``mfaflow_engine``: an :class:`mfaflow.Engine` for the demo client at
  that tenant, sending requests with ``requests`` and reading the tenant's
  clock.

Importing this module loads neither the tenant nor an HTTP library; the
fixtures do that when a test uses them. See ``docs/testing.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mfaflow import Client, Engine
    from mfaflow.tenant import Clock, LoopbackServer, Tenant, TenantConfig

__all__ = ["LiveTenant", "mfaflow_config", "mfaflow_engine", "mfaflow_tenant"]

#: scrypt's lowest work factor: logins in tests take microseconds, not 50 ms.
_TEST_WORK_FACTOR = 10
#: The demo client's registered callback (any loopback port matches it).
_DEMO_CALLBACK = "http://127.0.0.1/callback"


class LiveTenant:
    """The embedded tenant served on loopback for one test.

    Attributes:
        url: The tenant's base URL (and issuer), ending in ``/``.
        tenant: The :class:`mfaflow.tenant.Tenant`: its ``outbox``,
            ``approve_push()``, ``current_totp()``, ``clock.advance()`` and
            the rest of its control surface.
        server: The :class:`mfaflow.tenant.LoopbackServer` serving it.
    """

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.url: str = server.url
        self.tenant: Tenant = server.tenant

    @property
    def clock(self) -> Clock:
        """The tenant's clock; ``clock.advance(seconds)`` moves time for it."""
        return self.tenant.clock

    def client(
        self,
        client_id: str | None = None,
        *,
        client_secret: str | None = None,
        redirect_uri: str | None = _DEMO_CALLBACK,
        audience: str | None = None,
    ) -> Client:
        """Return an :class:`mfaflow.Client` for this tenant.

        Args:
            client_id: The application; the demo's public client
                (``mfaflow-demo``) by default.
            client_secret: Its secret, for a confidential client.
            redirect_uri: Its callback URL; the demo's by default.
            audience: The API to ask tokens for by default.
        """
        from mfaflow import Client
        from mfaflow.tenant import DEMO_CLIENT_ID

        return Client(
            issuer=self.url,
            client_id=client_id or DEMO_CLIENT_ID,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            audience=audience,
        )

    def __repr__(self) -> str:
        return f"<LiveTenant {self.url}>"


@pytest.fixture(scope="session")
def mfaflow_config() -> TenantConfig:
    """The configuration the tenant serves: the demo tenant, with cheap hashes.

    Override this fixture to serve another configuration.
    """
    import attrs

    from mfaflow.tenant import DEMO_EMAIL, DEMO_PASSWORD, default_config, hash_password

    config = default_config()
    cheap = hash_password(DEMO_PASSWORD, work_factor=_TEST_WORK_FACTOR)
    users = tuple(
        attrs.evolve(user, password_hash=cheap) if user.email == DEMO_EMAIL else user
        for user in config.users
    )
    return attrs.evolve(config, users=users, password_work_factor=_TEST_WORK_FACTOR)


@pytest.fixture
def mfaflow_tenant(mfaflow_config: TenantConfig) -> Iterator[LiveTenant]:
    """The embedded tenant served on loopback, with a fixed clock and control on."""
    from mfaflow.tenant import Clock, LoopbackServer, Tenant

    clock = Clock.fixed_for_tests()
    with (
        Tenant(mfaflow_config, clock=clock, control=True) as tenant,
        LoopbackServer(tenant) as server,
    ):
        yield LiveTenant(server)


@pytest.fixture
def mfaflow_engine(mfaflow_tenant: LiveTenant) -> Iterator[Engine]:
    """An engine for the demo client at ``mfaflow_tenant``, on the tenant's clock."""
    from mfaflow import Engine, RequestsTransport

    with RequestsTransport() as transport:
        yield Engine(
            mfaflow_tenant.client(),
            transport=transport,
            clock=mfaflow_tenant.clock.now,
        )
