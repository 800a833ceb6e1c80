"""Official Auth0 SDKs against ``mfaflow serve --tls --control``, a real child process.

Each test module gets its own ``mfaflow serve`` on a free loopback port,
with its own data folder for the self-signed certificate that SDKs are
told to trust (``SSL_CERT_FILE`` for Python, ``NODE_EXTRA_CA_CERTS`` for
node).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The support modules of the whole suite (`mfaflow serve`, node) live one
# folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _serve import Served, served


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`mfaflow serve --tls --control` with the demo configuration."""
    data_home = tmp_path_factory.mktemp("serve-data")
    with served("--tls", "--control", data_home=data_home) as running:
        yield running
