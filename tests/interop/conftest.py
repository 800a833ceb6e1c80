"""Fixtures that run the shipped flows against providers written by others.

django-oauth-toolkit: one Django project (see :mod:`dot_site`) is set up
once per test run, with a fresh SQLite database, and served over HTTP on
127.0.0.1 from a thread. node oidc-provider (see :mod:`op_site`) runs as a
child process, once per test run. The engines talk to both over real HTTP;
each issuer is the provider's own, as its discovery document says.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

# The loopback helpers of the whole suite live one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _interop_kit import Provider, RecordingTransport, watched_engine
from _runs import Harvesting, Runs
from _servers import serve_wsgi
from dot_site import PREFIX, configure
from op_site import REDIRECT_URI, OidcProvider, running

import mfaflow


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """django-oauth-toolkit with OIDC, PKCE and refresh-token rotation, on loopback."""
    site = configure(tmp_path_factory.mktemp("django-oauth-toolkit"))

    from django.core.wsgi import get_wsgi_application

    with serve_wsgi(get_wsgi_application()) as base_url:
        discovery_url = f"{base_url}/{PREFIX}.well-known/openid-configuration"
        answer = requests.get(discovery_url, timeout=5)
        answer.raise_for_status()
        provider = Provider(base_url=base_url, site=site, discovery=answer.json())
        # The engines are given the issuer the provider names for itself.
        assert provider.discovery["issuer"] == provider.issuer
        yield provider


@pytest.fixture
def transport() -> RecordingTransport:
    """A transport over real HTTP that remembers what it sent."""
    return RecordingTransport()


@pytest.fixture
def password_engine(
    provider: Provider, transport: RecordingTransport
) -> mfaflow.Engine:
    """An engine for the confidential application that may use the password grant."""
    client = mfaflow.Client(
        provider.issuer,
        provider.site.password_client_id,
        provider.site.password_client_secret,
    )
    return watched_engine(client, transport)


@pytest.fixture
def code_engine(provider: Provider, transport: RecordingTransport) -> mfaflow.Engine:
    """An engine for the confidential application of the authorization code grant."""
    client = mfaflow.Client(
        provider.issuer,
        provider.site.code_client_id,
        provider.site.code_client_secret,
        redirect_uri=provider.site.redirect_uri,
    )
    return watched_engine(client, transport)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """node oidc-provider with a public and a confidential client, on loopback."""
    with running() as started:
        # The engines are given the issuer the provider names for itself.
        assert started.discovery["issuer"] == started.issuer
        yield started


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything mfaflow logs, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="mfaflow")
    return caplog


def _runs_for(
    provider: OidcProvider,
    client_id: str,
    client_secret: str | None = None,
    client_auth: str = "post",
) -> Runs:
    client = mfaflow.Client(
        provider.issuer,
        client_id,
        client_secret,
        redirect_uri=REDIRECT_URI,
        client_auth=client_auth,
    )
    transport = Harvesting(RecordingTransport())
    engine = mfaflow.Engine(client, transport=transport, store=mfaflow.MemoryStore())
    return Runs(engine, secrets=[client_secret] if client_secret else [])


@pytest.fixture
def public_app(oidc_provider: OidcProvider) -> Runs:
    """Runs of the shipped flows for oidc-provider's public client (no secret)."""
    return _runs_for(oidc_provider, "public-app")


@pytest.fixture
def confidential_app(oidc_provider: OidcProvider) -> Runs:
    """Runs of the shipped flows for oidc-provider's confidential client."""
    return _runs_for(
        oidc_provider, "confidential-app", oidc_provider.confidential_secret
    )


@pytest.fixture
def basic_app(oidc_provider: OidcProvider) -> Runs:
    """Runs for oidc-provider's client_secret_basic client, sending its secret
    in an Authorization: Basic header."""
    return _runs_for(
        oidc_provider, "basic-app", oidc_provider.confidential_secret, "basic"
    )


@pytest.fixture
def runs_for(oidc_provider: OidcProvider) -> Callable[..., Runs]:
    """``runs_for(client_id, client_secret)``: runs for any client of oidc-provider."""
    return functools.partial(_runs_for, oidc_provider)
