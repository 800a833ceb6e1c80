"""Password hashes, opaque tokens, one-time codes and their digests.

Passwords are kept only as scrypt hashes (``scrypt$<log2 n>$<r>$<p>$<salt>$<key>``,
base64 without padding), so a dump of the tenant's state or its SQLite file
never holds a password. Opaque tokens the tenant hands out (``mfa_token``,
``oob_code``, refresh tokens, authorization codes) are kept only as SHA-256
digests: the random part carries 256 bits, so a fast digest is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string

__all__ = [
    "DEFAULT_WORK_FACTOR",
    "b64url",
    "digest",
    "hash_password",
    "is_password_hash",
    "new_code",
    "new_device_id",
    "new_recovery_code",
    "new_token",
    "same",
    "verify_password",
]

#: log2 of scrypt's cost ``n`` for new password hashes (about 60 ms a hash).
DEFAULT_WORK_FACTOR = 14
_MIN_WORK_FACTOR = 10
_MAX_WORK_FACTOR = 20
_BLOCK_SIZE = 8
_PARALLELISM = 1
_KEY_LENGTH = 32
_ALPHANUMERIC = string.ascii_letters + string.digits
_RECOVERY_ALPHABET = string.ascii_uppercase + string.digits
_RECOVERY_LENGTH = 24


def hash_password(password: str, *, work_factor: int = DEFAULT_WORK_FACTOR) -> str:
    """Return an scrypt hash of ``password`` with a fresh random salt.

    Args:
        password: The password.
        work_factor: log2 of scrypt's cost ``n``, from 10 to 20. Lower
            values make hashing faster; use them only in tests.

    Raises:
        ValueError: ``work_factor`` is outside 10..20.
    """
    if not _MIN_WORK_FACTOR <= work_factor <= _MAX_WORK_FACTOR:
        msg = (
            f"work_factor must be from {_MIN_WORK_FACTOR} to {_MAX_WORK_FACTOR}; "
            f"got {work_factor!r}."
        )
        raise ValueError(msg)
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, work_factor, _BLOCK_SIZE, _PARALLELISM)
    return "$".join(
        (
            "scrypt",
            str(work_factor),
            str(_BLOCK_SIZE),
            str(_PARALLELISM),
            b64url(salt),
            b64url(key),
        )
    )


def is_password_hash(text: str) -> bool:
    """Whether ``text`` has the shape of a hash made by :func:`hash_password`."""
    return _parse(text) is not None


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; a malformed hash matches nothing."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    work_factor, block_size, parallelism, salt, key = parsed
    candidate = _scrypt(password, salt, work_factor, block_size, parallelism)
    return hmac.compare_digest(candidate, key)


def new_token(prefix: str = "", nbytes: int = 32) -> str:
    """Return ``prefix`` followed by ``nbytes`` random bytes, URL-safe base64."""
    return prefix + secrets.token_urlsafe(nbytes)


def new_code(digits: int = 6) -> str:
    """Return a random decimal code of ``digits`` digits, such as ``"042917"``."""
    return "".join(secrets.choice(string.digits) for _ in range(digits))


def new_recovery_code() -> str:
    """Return a recovery code: 24 upper-case letters and digits."""
    return "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))


def new_device_id(prefix: str) -> str:
    """Return an authenticator id in Auth0's shape, such as ``totp|dev_x3Yq...``."""
    suffix = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))
    return f"{prefix}|dev_{suffix}"


def digest(token: str) -> str:
    """Return the SHA-256 hex digest of ``token``: the key it is stored under."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(given: str, expected: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _scrypt(
    password: str, salt: bytes, work_factor: int, block_size: int, parallelism: int
) -> bytes:
    cost = 2**work_factor
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=cost,
        r=block_size,
        p=parallelism,
        dklen=_KEY_LENGTH,
        # scrypt needs 128 * r * n bytes; leave room so OpenSSL's default
        # limit of 32 MiB does not refuse the larger work factors.
        maxmem=256 * block_size * cost + 2**20,
    )


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        work_factor, block_size, parallelism = (int(part) for part in parts[1:4])
        salt = _unb64(parts[4])
        key = _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not _MIN_WORK_FACTOR <= work_factor <= _MAX_WORK_FACTOR:
        return None
    if not (1 <= block_size <= 32 and 1 <= parallelism <= 16 and salt and key):
        return None
    return work_factor, block_size, parallelism, salt, key


def b64url(raw: bytes) -> str:
    """Return ``raw`` as base64url without padding (JOSE and PKCE use it)."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
