"""HTTPS on loopback: the tenant's self-signed certificate, trusted explicitly."""

from __future__ import annotations

import datetime
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _pagekit import authorize_url
from cryptography import x509

from mfaflow.tenant import LoopbackServer, Tenant
from mfaflow.tenant._tls import loopback_tls, self_signed, server_context


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost."""
    return self_signed(tmp_path / "tls")


@pytest.fixture
def https_server(
    tenant: Tenant, cert_files: tuple[Path, Path]
) -> Iterator[LoopbackServer]:
    """The tenant served over HTTPS on loopback."""
    with LoopbackServer(tenant, ssl_context=server_context(*cert_files)) as served:
        yield served


def test_discovery_over_https_names_an_https_issuer(
    https_server: LoopbackServer, cert_files: tuple[Path, Path]
) -> None:
    """A client trusting the certificate reads discovery, whose URLs are https."""
    answer = requests.get(
        https_server.url + ".well-known/openid-configuration",
        verify=str(cert_files[0]),
        timeout=10,
    )

    assert answer.status_code == 200
    metadata = answer.json()
    assert https_server.url.startswith("https://127.0.0.1:")
    assert metadata["issuer"] == https_server.url
    assert metadata["token_endpoint"] == https_server.url + "oauth/token"


def test_certificate_is_good_for_localhost_too(
    https_server: LoopbackServer, cert_files: tuple[Path, Path]
) -> None:
    """The certificate names localhost, so https://localhost:PORT/ verifies as well."""
    answer = requests.get(
        f"https://localhost:{https_server.port}/.well-known/jwks.json",
        verify=str(cert_files[0]),
        timeout=10,
    )

    assert answer.status_code == 200


def test_client_that_does_not_trust_the_certificate_fails(
    https_server: LoopbackServer, cert_files: tuple[Path, Path]
) -> None:
    """Default verification refuses the self-signed certificate; serving goes on."""
    url = https_server.url + ".well-known/openid-configuration"

    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)

    assert requests.get(url, verify=str(cert_files[0]), timeout=10).status_code == 200


def test_login_cookie_is_secure_over_https(
    https_server: LoopbackServer, cert_files: tuple[Path, Path]
) -> None:
    """Over https the login pages' cookie carries Secure besides HttpOnly."""
    answer = requests.get(
        authorize_url(https_server.url),
        verify=str(cert_files[0]),
        allow_redirects=False,
        timeout=10,
    )

    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


def test_key_file_is_private_and_files_are_reused(tmp_path: Path) -> None:
    """The key is readable by its owner only, and a valid pair is kept across calls."""
    cert, key = self_signed(tmp_path)
    first = cert.read_bytes(), key.read_bytes()

    again = self_signed(tmp_path)

    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert again == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first


def test_certificate_names_the_hosts_and_lasts_a_year(tmp_path: Path) -> None:
    """The certificate's SAN lists 127.0.0.1 and localhost; it is valid for a year."""
    cert, _ = self_signed(tmp_path)

    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc

    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert lifetime > datetime.timedelta(days=364)


LOOPBACK = ("127.0.0.1", "localhost")


@pytest.mark.parametrize("damage", ["garbage", "missing-key"])
def test_unusable_files_are_replaced(tmp_path: Path, damage: str) -> None:
    """A broken certificate or a lost key is remade in place."""
    cert, key = self_signed(tmp_path)
    before = cert.read_bytes()
    if damage == "garbage":
        cert.write_text("not a certificate")
    else:
        key.unlink()

    again = self_signed(tmp_path, LOOPBACK)

    assert again == (cert, key)
    assert cert.read_bytes() != before
    assert key.exists()


def test_other_hosts_get_their_own_pair_and_leave_loopback_alone(
    tmp_path: Path,
) -> None:
    """A certificate for more names is a new pair of files; the loopback one stays."""
    cert, key = self_signed(tmp_path)
    before = cert.read_bytes(), key.read_bytes()

    other_cert, other_key = self_signed(tmp_path, (*LOOPBACK, "tenant.test"))
    again = self_signed(tmp_path, (*LOOPBACK, "tenant.test"))

    names = (
        x509.load_pem_x509_certificate(other_cert.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert (cert.read_bytes(), key.read_bytes()) == before
    assert {other_cert, other_key}.isdisjoint({cert, key})
    assert other_cert.parent == tmp_path
    assert again == (other_cert, other_key)
    assert names == ["localhost", "tenant.test"]
    assert stat.S_IMODE(other_key.stat().st_mode) == 0o600


def test_no_hosts_is_an_error(tmp_path: Path) -> None:
    """A certificate for no host at all is refused with a clear message."""
    with pytest.raises(ValueError, match=r"^hosts must name at least one .*\.$"):
        self_signed(tmp_path, ())


def test_loopback_tls_gives_a_context_and_the_certificate_to_trust(
    tenant: Tenant, tmp_path: Path
) -> None:
    """loopback_tls returns a server context and the certificate a client trusts."""
    context, cert = loopback_tls(tmp_path)

    with LoopbackServer(tenant, ssl_context=context) as served:
        answer = requests.get(
            served.url + ".well-known/jwks.json", verify=str(cert), timeout=10
        )

    assert answer.status_code == 200
    assert cert.parent == tmp_path
