"""Serving the tenant on loopback: the issuer follows the port, HTTPS, busy ports."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mfaflow.tenant import LoopbackServer, Tenant, TenantConfig


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return both paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_issuer_is_the_servers_url(base_config: TenantConfig) -> None:
    """A served tenant names its own loopback URL as issuer in discovery."""
    with LoopbackServer(Tenant(base_config)) as server:
        metadata = requests.get(
            server.url + ".well-known/openid-configuration", timeout=10
        )

    assert server.url == f"http://127.0.0.1:{server.port}/"
    assert metadata.json()["issuer"] == server.url
    assert server.tenant.issuer == server.url


def test_tenant_is_served_over_https(base_config: TenantConfig, tmp_path: Path) -> None:
    """With a TLS context the tenant answers over HTTPS and its issuer says https."""
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    with LoopbackServer(Tenant(base_config), ssl_context=context) as server:
        answer = requests.get(
            server.url + ".well-known/jwks.json", verify=str(cert_path), timeout=10
        )

    assert server.url.startswith("https://127.0.0.1:")
    assert answer.json()["keys"][0]["alg"] == "RS256"


def test_an_empty_host_is_refused(base_config: TenantConfig) -> None:
    """An empty host, which would bind every interface, is a ValueError."""
    with pytest.raises(ValueError, match=r"^host must name an address .*; got ''\.$"):
        LoopbackServer(Tenant(base_config), host="")


def test_a_busy_port_is_a_clear_error(base_config: TenantConfig) -> None:
    """Listening on a port already in use raises OSError naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(OSError, match=f"Cannot listen on 127.0.0.1:{port}"):
            LoopbackServer(Tenant(base_config), port=port)


def test_access_log_omits_query_strings(
    base_config: TenantConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The tenant's access lines carry the path but never the query string."""
    caplog.set_level(logging.DEBUG)

    with LoopbackServer(Tenant(base_config)) as server:
        requests.get(server.url + "authorize?code_challenge=hidden-value", timeout=10)

    tenant_lines = [
        r.getMessage() for r in caplog.records if r.name.startswith("mfaflow")
    ]
    assert any("/authorize" in line for line in tenant_lines)
    assert not any("hidden-value" in line for line in tenant_lines)
