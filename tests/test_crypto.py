"""Store keys and sealing: key files, their permissions, encryption round trips."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mfaflow._crypto import Sealer, generate_key, load_or_create_key
from mfaflow._errors import StoreError

SECRET = "otp-secret-JBSWY3DPEHPK3PXP"

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def test_generated_keys_are_fernet_keys_and_differ() -> None:
    """generate_key gives 32 random bytes in url-safe base64, new each time."""
    first, second = generate_key(), generate_key()

    assert len(base64.urlsafe_b64decode(first)) == 32
    assert first != second
    Fernet(first)


def test_sealing_round_trips_json_and_hides_it() -> None:
    """open(seal(value)) gives the value back; the sealed text does not contain it."""
    sealer = Sealer(generate_key())
    value = {"totp_secret": SECRET, "codes": ["a", 1, None, True]}

    sealed = sealer.seal(value)

    assert SECRET not in sealed
    assert sealer.open(sealed) == value


def test_opening_with_another_key_is_a_store_error() -> None:
    """Text sealed with one key raises a clear StoreError when opened with another."""
    sealed = Sealer(generate_key()).seal({"secret": SECRET})

    with pytest.raises(StoreError) as caught:
        Sealer(generate_key()).open(sealed)

    assert str(caught.value) == (
        "The sealed text cannot be decrypted with this key: "
        "it was sealed with another key, or altered."
    )


def test_altered_sealed_text_is_detected() -> None:
    """Changing one character of a sealed text makes it fail to open."""
    sealer = Sealer(generate_key())
    sealed = sealer.seal({"secret": SECRET})
    middle = len(sealed) // 2
    altered = (
        sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    )

    with pytest.raises(StoreError, match="or altered"):
        sealer.open(altered)


def test_sealing_a_value_json_cannot_hold_is_a_type_error() -> None:
    """seal refuses bytes and other values JSON cannot represent."""
    with pytest.raises(TypeError):
        Sealer(generate_key()).seal({"code": b"123456"})


@pytest.mark.parametrize("key", [b"", b"short", "x" * 44, b"A" * 43])
def test_a_malformed_key_is_refused(key: bytes | str) -> None:
    """A key that is not 32 bytes of url-safe base64 is a StoreError."""
    with pytest.raises(StoreError, match=r"^The store key is not a Fernet key"):
        Sealer(key)


def test_sealer_repr_hides_the_key() -> None:
    """A sealer's repr does not show its key."""
    key = generate_key()

    assert repr(Sealer(key)) == "Sealer(key=<hidden>)"


def test_a_missing_key_file_is_created_and_then_reused(tmp_path: Path) -> None:
    """The first call creates the key file; later calls return the same key."""
    path = tmp_path / "config" / "mfaflow" / "store.key"

    created = load_or_create_key(path)
    again = load_or_create_key(path)

    assert created == again
    assert path.read_bytes().strip() == created
    Fernet(created)


@posix_only
def test_a_new_key_file_and_its_new_directories_are_private(tmp_path: Path) -> None:
    """A new key file has mode 0600 and the directories made for it 0700."""
    path = tmp_path / "config" / "mfaflow" / "store.key"
    tmp_path.chmod(0o755)

    load_or_create_key(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "config").stat().st_mode & 0o777 == 0o700
    assert tmp_path.stat().st_mode & 0o777 == 0o755


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A key file that group or others may read or write is refused, naming the fix."""
    path = tmp_path / "store.key"
    path.write_bytes(generate_key())
    path.chmod(mode)

    with pytest.raises(StoreError) as caught:
        load_or_create_key(path)

    assert str(caught.value) == (
        f"The key file {str(path)!r} is open to other users (mode {mode:04o}); "
        f"run 'chmod 600 {path}' and try again."
    )


@posix_only
def test_a_key_file_without_a_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    """A key file holding something else is refused; its content is not shown."""
    path = tmp_path / "store.key"
    path.write_text(SECRET)
    path.chmod(0o600)

    with pytest.raises(StoreError, match="does not hold a Fernet key") as caught:
        load_or_create_key(path)

    assert SECRET not in str(caught.value)
    assert path.read_text() == SECRET


def test_an_unreadable_key_path_is_a_store_error(tmp_path: Path) -> None:
    """A directory where the key file should be gives StoreError, not OSError."""
    path = tmp_path / "store.key"
    path.mkdir()

    with pytest.raises(StoreError, match="cannot be read"):
        load_or_create_key(path)


def test_concurrent_creators_end_with_one_key(tmp_path: Path) -> None:
    """Threads creating the same key file at once all get the same key."""
    path = tmp_path / "keys" / "store.key"
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def create() -> None:
        start.wait()
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8
    assert set(keys) == {path.read_bytes().strip()}
    assert [entry.name for entry in path.parent.iterdir()] == ["store.key"]
