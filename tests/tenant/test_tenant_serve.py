"""``mfaflow serve`` as a real child process: its address, its stop, its logs."""

from __future__ import annotations

import socket
from pathlib import Path

import jwt
import pytest
import requests
from _serve import served
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

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
        f"Warning: tokens name {tenant.url} as their issuer, which clients cannot "
        "use; give --host the address clients will call instead.\n"
    )


def _ipv6_loopback() -> None:
    """Skip the calling test where ::1 cannot be listened on."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"IPv6 loopback (::1) is not available here: {exc}")


def test_serve_takes_an_ipv6_address_in_brackets(tmp_path: Path) -> None:
    """`--host [::1]`, written as in a URL, listens on ::1 and names it as issuer."""
    _ipv6_loopback()

    with served("--host", "[::1]", data_home=tmp_path) as tenant:
        metadata = requests.get(
            tenant.url + ".well-known/openid-configuration", timeout=30
        )

    assert tenant.url.startswith("http://[::1]:")
    assert metadata.json()["issuer"] == tenant.url
    assert "Warning" not in tenant.stderr


def test_an_empty_host_is_a_usage_error(tmp_path: Path) -> None:
    """`--host ''` would listen on every interface: it is refused, status 2."""
    with served("--host", "", data_home=tmp_path, expect_url=False) as tenant:
        status = tenant.wait()

    assert status == 2
    assert tenant.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--host': Give an address to listen on, such as "
        "127.0.0.1; an empty one would listen on every interface (write 0.0.0.0 "
        "to mean that)."
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


def _pem(key: PrivateKeyTypes, password: bytes | None = None) -> bytes:
    """``key`` as PKCS #8 PEM, encrypted when a ``password`` is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


SERVED_CONFIG = """\
name: served
password_work_factor: 10
signing_key_file: key.pem
state_file: tenant.db
clients:
  - client_id: app
    grant_types: [password, refresh_token]
apis:
  - identifier: https://api.served.test/
    scopes: [read]
    allow_offline_access: true
users:
  - email: ann@served.test
    password: ann-password-1
"""


def test_serve_config_serves_the_file(tmp_path: Path) -> None:
    """`serve --config FILE` serves its users, signs with its key, keeps its state."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "key.pem").write_bytes(_pem(key))
    config = tmp_path / "tenant.yaml"
    config.write_text(SERVED_CONFIG)

    with served("--config", str(config), data_home=tmp_path) as tenant:
        answer = requests.post(
            tenant.url + "oauth/token",
            data={
                "grant_type": "password",
                "client_id": "app",
                "username": "ann@served.test",
                "password": "ann-password-1",
                "audience": "https://api.served.test/",
                "scope": "offline_access",
            },
            timeout=30,
        )

    claims = jwt.decode(
        answer.json()["access_token"],
        key.public_key(),
        algorithms=["RS256"],
        audience="https://api.served.test/",
    )
    assert claims["iss"] == tenant.url
    assert claims["scope"] == "read offline_access"
    assert "refresh_token" in answer.json()
    assert (tmp_path / "tenant.db").is_file()
    assert "Traceback" not in tenant.stderr
    assert "Try: mfaflow run" not in tenant.stderr  # the demo's hint only


def _broken_setup(directory: Path, case: str) -> tuple[str, str]:
    """Write the files of a broken ``case``; return its YAML and expected error."""
    key_file = directory / "key.pem"
    if case == "key-missing":
        return "signing_key_file: key.pem\n", (
            f"Cannot read the signing key file {str(key_file)!r}: "
            "No such file or directory."
        )
    if case == "key-not-pem":
        key_file.write_text("not a key\n")
        return "signing_key_file: key.pem\n", (
            f"The signing key file {str(key_file)!r} holds no PEM private key."
        )
    if case == "key-encrypted":
        key_file.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1()), b"pw"))
        return "signing_key_file: key.pem\n", (
            f"The signing key file {str(key_file)!r} is encrypted; "
            "give an unencrypted key."
        )
    if case == "key-ed25519":
        key_file.write_bytes(_pem(ed25519.Ed25519PrivateKey.generate()))
        return "signing_key_file: key.pem\n", (
            f"The signing key file {str(key_file)!r} holds a non-RSA key; "
            "RS256 needs RSA."
        )
    if case == "state-folder-missing":
        state = directory / "nowhere" / "tenant.db"
        return "state_file: nowhere/tenant.db\n", (
            f"Cannot open the state file {str(state)!r}: its folder "
            f"{str(state.parent)!r} does not exist."
        )
    if case == "state-not-a-database":
        (directory / "notes.txt").write_text("name: x\n" * 100)
        return "state_file: notes.txt\n", (
            f"Cannot use the state file {str(directory / 'notes.txt')!r}: "
            "file is not a database."
        )
    assert case == "nested-yaml"
    return "name: " + "[" * 5000 + "]" * 5000 + "\n", (
        f"{directory / 'tenant.yaml'}:1:1: "
        "The file nests values too deeply to be a tenant configuration."
    )


@pytest.mark.parametrize(
    "case",
    [
        "key-missing",
        "key-not-pem",
        "key-encrypted",
        "key-ed25519",
        "state-folder-missing",
        "state-not-a-database",
        "nested-yaml",
    ],
)
def test_serve_config_problems_are_one_line_of_error(tmp_path: Path, case: str) -> None:
    """A key, state file or YAML that cannot be used ends `serve` with one line."""
    text, expected = _broken_setup(tmp_path, case)
    config = tmp_path / "tenant.yaml"
    config.write_text(text)
    before = sorted(path.name for path in tmp_path.iterdir())

    with served(
        "--config", str(config), data_home=tmp_path / "data", expect_url=False
    ) as tenant:
        status = tenant.wait()

    assert status == 1
    assert tenant.stderr == f"error: {expected}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def _jwks_status(url: str, certificate: Path | None) -> int:
    """GET the JWKS at ``url`` trusting ``certificate``; return the status."""
    assert certificate is not None
    answer = requests.get(
        url + ".well-known/jwks.json", verify=str(certificate), timeout=30
    )
    return answer.status_code


def test_a_second_tls_server_leaves_the_first_ones_certificate(
    tmp_path: Path,
) -> None:
    """`serve --tls --host` for other names keeps the certificate a running one uses."""
    with served("--tls", data_home=tmp_path) as first:
        assert first.certificate is not None
        before = first.certificate.read_bytes()
        with served("--tls", "--host", "0.0.0.0", data_home=tmp_path) as second:
            port = second.url.rsplit(":", 1)[1].rstrip("/")
            statuses = [
                _jwks_status(first.url, first.certificate),
                _jwks_status(f"https://127.0.0.1:{port}/", second.certificate),
            ]

    assert statuses == [200, 200]
    assert first.certificate != second.certificate
    assert first.certificate.read_bytes() == before
