"""Keys and sealing for the secrets of runs at rest.

Stores never write a run's secrets (passwords, tokens, one-time codes) in
plaintext: they seal them with a :class:`Sealer`, which encrypts their JSON
with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``), so that a
changed or truncated text is detected rather than decrypted to nonsense.

A key is a Fernet key: 32 random bytes in url-safe base64 (44 characters).
:func:`load_or_create_key` keeps one in a file that only its owner may
read; the CLI keeps it at ``platformdirs.user_config_path("mfaflow") /
"store.key"``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ._errors import StoreError

__all__ = ["Sealer", "generate_key", "load_or_create_key"]

logger = logging.getLogger(__name__)

_KEY_FILE_MODE = 0o600
_KEY_DIR_MODE = 0o700


def generate_key() -> bytes:
    """Return a new random Fernet key."""
    return Fernet.generate_key()


def _fernet(key: bytes | str) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        msg = (
            "The store key is not a Fernet key: expected 32 bytes in url-safe "
            "base64 (44 characters), as generate_key() makes."
        )
        raise StoreError(msg) from exc


class Sealer:
    """Encrypts JSON values into text, and back, with one Fernet key.

    Raises:
        StoreError: ``key`` is not a Fernet key.
    """

    def __init__(self, key: bytes | str) -> None:
        self._fernet = _fernet(key)

    def __repr__(self) -> str:
        return "Sealer(key=<hidden>)"

    def seal(self, obj: Any) -> str:
        """Return ``obj`` as JSON, encrypted, as ASCII text.

        Raises:
            TypeError: ``obj`` holds a value JSON cannot represent.
            ValueError: ``obj`` holds NaN or an infinity, or a cycle.
        """
        plain = json.dumps(obj, separators=(",", ":"), allow_nan=False)
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, text: str) -> Any:
        """Return the value sealed in ``text``.

        Raises:
            StoreError: ``text`` was sealed with another key, or altered.
        """
        try:
            plain = self._fernet.decrypt(text)
        except InvalidToken as exc:
            msg = (
                "The sealed text cannot be decrypted with this key: it was "
                "sealed with another key, or altered."
            )
            raise StoreError(msg) from exc
        try:
            return json.loads(plain)
        except ValueError as exc:
            raise StoreError("The sealed text does not hold JSON.") from exc


def load_or_create_key(path: str | os.PathLike[str]) -> bytes:
    """Return the key kept in the file ``path``, creating it if missing.

    A new key file is created with mode 0600, and the directories missing
    above it with mode 0700. When two processes create the key at the same
    time, both end up with the same key. On POSIX, a key file that other
    users may read or write is refused, as ``ssh`` refuses such keys.

    Raises:
        StoreError: the file is open to other users, cannot be read, or
            does not hold a Fernet key.
    """
    path = Path(path)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    try:
        _make_private_dirs(path.parent)
        _write_new_key(path)
    except OSError as exc:
        msg = f"The key file {str(path)!r} cannot be created: {exc.strerror}."
        raise StoreError(msg) from exc

    return _read_key(path)


def _read_key(path: Path) -> bytes:
    """Read and check the key in ``path``; FileNotFoundError when missing."""
    try:
        with path.open("rb") as file:
            _check_private(path, os.fstat(file.fileno()))
            key = file.read().strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        msg = f"The key file {str(path)!r} cannot be read: {exc.strerror}."
        raise StoreError(msg) from exc
    try:
        _fernet(key)
    except StoreError as exc:
        msg = (
            f"The key file {str(path)!r} does not hold a Fernet key; "
            "delete it to have a new key made (secrets sealed with it are lost)."
        )
        raise StoreError(msg) from exc

    return key


def _check_private(path: Path, status: os.stat_result) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        msg = (
            f"The key file {str(path)!r} is open to other users "
            f"(mode {mode:04o}); run 'chmod 600 {path}' and try again."
        )
        raise StoreError(msg)


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents with mode 0700.

    Directories that exist already keep their mode: ``~/.config`` is not
    ours to change.
    """
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):
            each.mkdir(mode=_KEY_DIR_MODE)


def _write_new_key(path: Path) -> None:
    """Write a new key to ``path`` unless a key appears there meanwhile.

    The key is written whole to a temporary file which is then linked into
    place: a link fails if ``path`` exists, so a concurrent creator's key
    is never replaced, and no reader ever sees a half-written key.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, _KEY_FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(generate_key() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        logger.debug("Another process created the key file %s first", path)
    else:
        logger.info("Created a new store key at %s", path)
    finally:
        temporary.unlink(missing_ok=True)
