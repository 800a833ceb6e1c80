"""The tenant's RSA signing key: RS256 JWTs and the JWKS that verifies them.

Access and ID tokens are RS256 JWTs whose header names the key (``kid``,
the key's RFC 7638 thumbprint). The key is generated once per process
(2048 bits) unless one is passed in or named by ``signing_key_file``, so
tests and tenants in one process share it and tokens stay verifiable as
long as the process lives. A tenant that must keep tokens valid across
restarts loads its key from a PEM file.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._errors import TenantSetupError
from ._secrets import b64url

__all__ = ["SigningKey", "load_private_key", "process_key"]

_KEY_SIZE = 2048


@functools.cache
def process_key() -> rsa.RSAPrivateKey:
    """Return this process's generated RSA key (made on the first call)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def load_private_key(path: str | Path) -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA private key from a PEM file.

    Raises:
        TenantSetupError: the file cannot be read or holds no unencrypted
            RSA private key (a :class:`ValueError` too).
    """
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        msg = f"Cannot read the signing key file {shown!r}: {exc.strerror or exc}."
        raise TenantSetupError(msg) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        # cryptography's way of saying the key needs a password.
        msg = f"The signing key file {shown!r} is encrypted; give an unencrypted key."
        raise TenantSetupError(msg) from exc
    except ValueError as exc:
        msg = f"The signing key file {shown!r} holds no PEM private key."
        raise TenantSetupError(msg) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        msg = f"The signing key file {shown!r} holds a non-RSA key; RS256 needs RSA."
        raise TenantSetupError(msg)
    return key


class SigningKey:
    """Signs and verifies the tenant's JWTs with one RSA key."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        numbers = self._public_key.public_numbers()
        self._jwk = {
            "kty": "RSA",
            "n": _b64_int(numbers.n),
            "e": _b64_int(numbers.e),
        }
        thumbprint = json.dumps(self._jwk, sort_keys=True, separators=(",", ":"))
        self.kid = b64url(hashlib.sha256(thumbprint.encode()).digest())

    def jwks(self) -> dict[str, Any]:
        """Return the JSON Web Key Set served at ``/.well-known/jwks.json``."""
        key = {**self._jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}
        return {"keys": [key]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Return ``claims`` as an RS256 JWT with this key's ``kid``."""
        return jwt.encode(
            dict(claims),
            self._private_key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )

    def verify(self, token: str) -> dict[str, Any] | None:
        """Return the claims of ``token`` if this key signed it, else ``None``.

        Only the signature is checked here; the caller checks ``iss``,
        ``aud`` and ``exp`` against the tenant's own clock.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError:
            return None
        return claims

    def __repr__(self) -> str:
        return f"<SigningKey kid={self.kid!r}>"


def _b64_int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))
