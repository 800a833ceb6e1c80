"""``mfaflow serve`` as a real child process: its address, its stop, its logs."""

from __future__ import annotations

import socket
from pathlib import Path

import requests
from _serve import served

from mfaflow.tenant import DEMO_CLIENT_ID


def test_serve_listens_on_the_host_given(tmp_path: Path) -> None:
    """`serve --host 127.0.0.1 --port N` answers at that address, without a warning."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with served(
        "--host", "127.0.0.1", "--port", str(port), data_home=tmp_path
    ) as tenant:
        metadata = requests.get(
            tenant.url + ".well-known/openid-configuration", timeout=30
        )

    assert tenant.url == f"http://127.0.0.1:{port}/"
    assert metadata.json()["issuer"] == tenant.url
    assert "Warning" not in tenant.stderr


def test_serve_warns_when_it_listens_beyond_loopback(tmp_path: Path) -> None:
    """Listening on every address works, and stderr warns that others can reach it."""
    with served("--host", "0.0.0.0", data_home=tmp_path) as tenant:
        port = tenant.url.rsplit(":", 1)[1].rstrip("/")
        answer = requests.get(
            f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=30
        )

    assert answer.status_code == 200
    assert tenant.stderr.startswith(
        "Warning: listening on 0.0.0.0, not loopback: anyone who can reach this "
        "address can use the tenant and its test users.\n"
    )


def test_sigterm_stops_serve_cleanly(tmp_path: Path) -> None:
    """SIGTERM ends `serve` with status 0 and the line "Stopped.", no traceback."""
    with served("--control", data_home=tmp_path) as tenant:
        alive = requests.get(tenant.url + "__control/clock", timeout=30)
        status = tenant.stop()

    assert alive.status_code == 200
    assert status == 0
    assert tenant.stderr.splitlines()[-1] == "Stopped."
    assert "Traceback" not in tenant.stderr
    assert f"--client-id {DEMO_CLIENT_ID}" in tenant.stderr


def test_a_bad_host_is_one_line_of_error(tmp_path: Path) -> None:
    """An address that cannot be listened on ends `serve` with one line and status 1."""
    with served(
        "--host", "no-such-host.invalid", data_home=tmp_path, expect_url=False
    ) as tenant:
        status = tenant.wait()

    assert status == 1
    assert tenant.stderr.startswith("error: Cannot listen on no-such-host.invalid:0: ")
    assert len(tenant.stderr.splitlines()) == 1
