"""Fixtures that run the shipped flows against django-oauth-toolkit.

One Django project (see :mod:`dot_site`) is set up per test session, with a
fresh SQLite database, and served over HTTP on 127.0.0.1 from a thread.
The engines talk to it over real HTTP; the issuer is the provider's own
(``http://127.0.0.1:PORT/o``, as its discovery document says).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

# The loopback helpers of the whole suite live one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _interop_kit import Provider, RecordingTransport
from _servers import serve_wsgi
from dot_site import PREFIX, configure

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
    return mfaflow.Engine(client, transport=transport)


@pytest.fixture
def code_engine(provider: Provider, transport: RecordingTransport) -> mfaflow.Engine:
    """An engine for the confidential application of the authorization code grant."""
    client = mfaflow.Client(
        provider.issuer,
        provider.site.code_client_id,
        provider.site.code_client_secret,
        redirect_uri=provider.site.redirect_uri,
    )
    return mfaflow.Engine(client, transport=transport)
