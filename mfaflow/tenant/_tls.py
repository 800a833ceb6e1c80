"""HTTPS for the loopback tenant: a self-signed certificate and a server context.

Browsers and HTTP clients treat ``http://127.0.0.1`` as a secure context
for most purposes, but some clients insist on ``https``. The tenant then
serves with a self-signed certificate for ``127.0.0.1`` and ``localhost``
that a client trusts explicitly (``requests.get(url, verify=cert_path)``)::

    cert, key = self_signed(directory)
    server = LoopbackServer(tenant, ssl_context=server_context(cert, key))

The certificate and key are kept in ``directory`` and reused while they are
valid, so a client that trusts the certificate once keeps trusting it. The
key file is readable by its owner only. Each set of host names has a pair
of files of its own (:data:`CERT_FILE` and :data:`KEY_FILE` for loopback
alone), so a server started for other names never replaces the
certificate of one already running; making a pair is serialised between
processes by a lock file in ``directory`` where the system offers one.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CERT_FILE",
    "KEY_FILE",
    "default_tls_directory",
    "loopback_tls",
    "self_signed",
    "server_context",
]

logger = logging.getLogger(__name__)

#: The certificate's file name, for loopback alone, in :func:`self_signed`'s directory.
CERT_FILE = "tenant-cert.pem"
#: The private key's file name (mode 0600), for loopback alone.
KEY_FILE = "tenant-key.pem"
#: Taken while a pair of files is checked and made.
_LOCK_FILE = ".tenant-tls.lock"

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_VALIDITY = datetime.timedelta(days=365)
#: A certificate closer than this to its end is replaced.
_RENEW_BEFORE = datetime.timedelta(days=7)


def self_signed(
    directory: Path, hosts: Sequence[str] = _LOOPBACK_HOSTS
) -> tuple[Path, Path]:
    """Return the paths of a self-signed certificate for ``hosts`` and its key.

    Each set of hosts has its own pair of files in ``directory``:
    :data:`CERT_FILE` and :data:`KEY_FILE` for 127.0.0.1 and localhost,
    names with a digest of the hosts for any other set. The pair is reused
    when it holds a certificate that names every host, matches the key and
    stays valid for at least a week; otherwise a new pair (an ECDSA P-256
    key, valid for a year) is written there, creating the directory if
    needed.

    Args:
        directory: Where the certificate and key are kept.
        hosts: IP addresses and DNS names the certificate is for.

    Raises:
        ValueError: ``hosts`` is empty.
        OSError: the files cannot be written.
    """
    if not hosts:
        msg = "hosts must name at least one IP address or DNS name; got none."
        raise ValueError(msg)
    cert_name, key_name = _file_names(hosts)
    cert_path, key_path = directory / cert_name, directory / key_name
    if _reusable(cert_path, key_path, hosts):
        logger.debug("Reusing the tenant's TLS certificate in %s", directory)
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / _LOCK_FILE):
        # Another process may have made the pair while this one waited.
        if not _reusable(cert_path, key_path, hosts):
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = _certificate(key, hosts)
            _write(key_path, _key_pem(key), mode=0o600)
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            _write(cert_path, pem, mode=0o644)
            logger.debug("Made a TLS certificate for %s", ", ".join(hosts))
    return cert_path, key_path


def _file_names(hosts: Sequence[str]) -> tuple[str, str]:
    """The certificate's and key's file names for ``hosts``."""
    names = sorted(set(hosts))
    if names == sorted(_LOOPBACK_HOSTS):
        return CERT_FILE, KEY_FILE
    tag = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    return f"tenant-{tag}-cert.pem", f"tenant-{tag}-key.pem"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (POSIX); elsewhere, go on without one."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this system
        yield
        return
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """Return a server-side TLS context (TLS 1.2 or newer) presenting the certificate.

    Raises:
        ssl.SSLError: the files do not hold a certificate and its key.
        OSError: a file cannot be read.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def default_tls_directory() -> Path:
    """Return where the tenant keeps its certificate: the user's mfaflow data folder."""
    import platformdirs  # only needed here

    return platformdirs.user_data_path("mfaflow") / "tls"


def loopback_tls(
    directory: Path | None = None, hosts: Sequence[str] = _LOOPBACK_HOSTS
) -> tuple[ssl.SSLContext, Path]:
    """Return a server context for HTTPS on loopback, and the certificate to trust.

    The certificate (for ``hosts``: 127.0.0.1 and localhost by default)
    lives in ``directory``, :func:`default_tls_directory` by default, and is
    reused across runs while it names every host.

    Raises:
        OSError: the directory or files cannot be written or read.
    """
    cert_path, key_path = self_signed(directory or default_tls_directory(), hosts)
    return server_context(cert_path, key_path), cert_path


def _reusable(cert_path: Path, key_path: Path, hosts: Sequence[str]) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    now = datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc - _RENEW_BEFORE < now:
        return False
    if certificate.not_valid_before_utc > now:
        return False
    if _public_der(key.public_key()) != _public_der(certificate.public_key()):
        return False
    try:
        names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return False
    return set(_names(hosts)) <= set(names)


def _public_der(key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _certificate(
    key: ec.EllipticCurvePrivateKey, hosts: Sequence[str]
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mfaflow embedded tenant"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` at once, created with ``mode`` (never wider)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(temporary, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
