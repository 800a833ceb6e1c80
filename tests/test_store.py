"""Run stores: the store protocol on every store, and SQLite's files, keys and locks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _services import KINDS, service_store
from _stored_runs import PASSWORD, TOKEN, USERNAME, make_run, next_version

from mfaflow._crypto import generate_key
from mfaflow._errors import (
    ConcurrencyError,
    EncryptionKeyMissing,
    RunNotFound,
    StoreError,
)
from mfaflow._store import MemoryStore, RunSummary, SQLiteStore, Store, StoredRun

KEY = generate_key()


@pytest.fixture(params=["memory", "sqlite", *KINDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each shipped store, empty; those that write outside the process with a key.

    The Redis and PostgreSQL stores get a key prefix or table of their own,
    deleted afterwards; where their service is absent they are skipped (on
    CI, failed).
    """
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        yield SQLiteStore(tmp_path / "runs.sqlite", key=KEY)
    else:
        with service_store(request.param, key=KEY) as made:
            yield made


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a SQLite store's file goes."""
    return tmp_path / "state" / "runs.sqlite"


def row_count(path: Path) -> int:
    """Count the rows of the runs table, reading the file directly."""
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM runs").fetchone()
    connection.close()
    return int(count)


# -- the protocol, on every store -----------------------------------------


def test_stores_follow_the_protocol(store: Store) -> None:
    """Every store is an instance of the Store protocol."""
    assert isinstance(store, Store)


def test_a_created_run_loads_back_equal(store: Store) -> None:
    """load returns every field of the run create was given, secrets included."""
    run = make_run()

    store.create(run)

    assert store.load(run.id) == run


def test_loaded_runs_are_copies(store: Store) -> None:
    """Changing a loaded run's document or secrets does not change the store."""
    store.create(make_run())

    loaded = store.load("run-1")
    loaded.document["state"] = "changed"
    loaded.secrets["password"] = "changed"

    assert store.load("run-1") == make_run()


def test_creating_an_existing_id_fails_and_keeps_the_first(store: Store) -> None:
    """A second create with the same id raises StoreError and leaves the first run."""
    store.create(make_run())

    with pytest.raises(StoreError, match=r"^A run with id 'run-1' is already in"):
        store.create(make_run(flow="other"))

    assert store.load("run-1").flow == "password-grant"


def test_loading_an_unknown_id_is_run_not_found(store: Store) -> None:
    """load of an unknown id raises RunNotFound, which is also a KeyError."""
    with pytest.raises(RunNotFound) as caught:
        store.load("nope")

    assert str(caught.value) == "No run with id 'nope' is in the store."
    assert caught.value.run_id == "nope"
    assert isinstance(caught.value, KeyError)


def test_saving_with_the_stored_version_replaces_the_run(store: Store) -> None:
    """save with the current version as expected_version stores the new run."""
    run = make_run()
    store.create(run)
    changed = next_version(run, status="ended", document={"outcome": "success"})

    store.save(changed, expected_version=1)

    assert store.load(run.id) == changed


def test_a_stale_save_is_a_concurrency_error_and_changes_nothing(store: Store) -> None:
    """save with an older expected version raises ConcurrencyError; the run stays."""
    run = make_run()
    store.create(run)
    winner = next_version(run, document={"by": "winner"})
    store.save(winner, expected_version=1)

    with pytest.raises(ConcurrencyError) as caught:
        store.save(next_version(run, document={"by": "loser"}), expected_version=1)

    assert str(caught.value) == (
        "Run 'run-1' was saved by someone else meanwhile: expected version 1, "
        "found 2; load it again and retry."
    )
    assert store.load(run.id) == winner


def test_saving_an_unknown_run_is_run_not_found(store: Store) -> None:
    """save of a run that was never created raises RunNotFound."""
    with pytest.raises(RunNotFound):
        store.save(next_version(make_run()), expected_version=1)


def test_a_save_must_raise_the_version(store: Store) -> None:
    """save refuses a run whose version is not above the expected version."""
    store.create(make_run())

    with pytest.raises(ValueError, match="must be greater than the expected version"):
        store.save(make_run(), expected_version=1)

    assert store.load("run-1") == make_run()


def test_a_deleted_run_is_gone_and_deleting_again_is_fine(store: Store) -> None:
    """delete removes the run; deleting an absent id does nothing."""
    store.create(make_run())

    store.delete("run-1")
    store.delete("run-1")

    with pytest.raises(RunNotFound):
        store.load("run-1")


def test_expire_deletes_runs_expired_before_now_whatever_their_status(
    store: Store,
) -> None:
    """expire deletes runs whose expires_at is before now, ended ones too."""
    store.create(make_run("waiting-old", expires_at=10.0))
    store.create(make_run("ended-old", status="ended", expires_at=20.0))
    store.create(make_run("at-now", expires_at=50.0))
    store.create(make_run("later", expires_at=60.0))
    store.create(make_run("forever", status="ended", expires_at=None))

    expired = store.expire(now=50.0)

    assert sorted(expired) == ["ended-old", "waiting-old"]
    assert sorted(run.id for run in store.list()) == ["at-now", "forever", "later"]


def test_list_gives_summaries_without_secrets(store: Store) -> None:
    """list returns summaries, oldest update first, filtered by status."""
    store.create(make_run("b", updated_at=200.0))
    store.create(make_run("a", status="ended", updated_at=100.0))

    everything = store.list()
    ended = store.list("ended")

    assert [summary.id for summary in everything] == ["a", "b"]
    assert ended == [
        RunSummary(
            "a", "password-grant", "ended", 1, make_run().document, 1000.0, 100.0
        )
    ]
    assert not hasattr(ended[0], "secrets")


def test_list_refuses_an_unknown_status(store: Store) -> None:
    """list with an unknown status raises ValueError listing the allowed ones."""
    with pytest.raises(
        ValueError, match="must be one of 'running', 'waiting', 'ended'"
    ):
        store.list("paused")


def test_a_document_json_cannot_hold_is_refused_and_nothing_changes(
    store: Store,
) -> None:
    """A document with a non-JSON value fails at create and at save, storing nothing."""
    bad = make_run(document={"when": object()})

    with pytest.raises(
        StoreError, match="document of run 'run-1' cannot be stored as JSON"
    ):
        store.create(bad)
    store.create(make_run())
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        store.save(next_version(bad), expected_version=1)

    assert store.load("run-1") == make_run()


def test_secrets_json_cannot_hold_are_refused(store: Store) -> None:
    """Secrets with a non-JSON value fail at create with StoreError."""
    with pytest.raises(
        StoreError, match="secrets of run 'run-1' cannot be stored as JSON"
    ):
        store.create(make_run(secrets={"code": b"123456"}))

    assert store.list() == []


def test_threads_saving_the_same_version_have_one_winner(store: Store) -> None:
    """Threads that all load a version and then all save over it: one wins per round."""
    store.create(make_run(version=0, document={"log": []}))
    threads, rounds = 6, 15
    step = threading.Barrier(threads)
    wins: list[tuple[int, str]] = []

    def compete(name: str) -> None:
        for _ in range(rounds):
            step.wait()
            run = store.load("run-1")
            step.wait()
            log = [*run.document["log"], name]
            try:
                store.save(next_version(run, document={"log": log}), run.version)
            except ConcurrencyError:
                continue
            wins.append((run.version + 1, name))

    workers = [
        threading.Thread(target=compete, args=(f"t{i}",)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    final = store.load("run-1")
    assert sorted(version for version, _ in wins) == list(range(1, rounds + 1))
    assert final.version == rounds
    assert final.document["log"] == [name for _, name in sorted(wins)]


def test_stored_run_repr_hides_secret_values() -> None:
    """A stored run's repr names its secrets but never shows their values."""
    shown = repr(make_run())

    assert PASSWORD not in shown
    assert TOKEN not in shown
    assert "secrets=<hidden: password, tokens>" in shown


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "paused"}, "status must be one of 'running', 'waiting', 'ended'"),
        ({"version": -1}, "version must be an integer of 0 or more, not -1"),
        ({"document": ["a"]}, "document must be a dict, not list"),
        ({"secrets": (PASSWORD,)}, "secrets must be a dict, not tuple"),
    ],
)
def test_stored_run_refuses_bad_fields(changes: dict[str, Any], message: str) -> None:
    """A bad status, version, document or secrets is refused with a clear error."""
    with pytest.raises((ValueError, TypeError), match=message) as caught:
        make_run(**changes)

    assert PASSWORD not in str(caught.value)


# -- SQLite: files, keys, schema, processes -------------------------------


def test_sqlite_runs_outlive_the_store_object(db_path: Path) -> None:
    """A run written by one SQLiteStore loads from another opened on the same file."""
    SQLiteStore(db_path, key=KEY).create(make_run())

    assert SQLiteStore(db_path, key=KEY).load("run-1") == make_run()


def test_sqlite_never_writes_secrets_in_plaintext(db_path: Path) -> None:
    """The database and its WAL hold the document but no byte of any secret."""
    store = SQLiteStore(db_path, key=KEY)
    # An open connection keeps SQLite from folding the WAL away on close.
    watcher = sqlite3.connect(db_path)
    watcher.execute("SELECT count(*) FROM runs").fetchone()
    try:
        store.create(make_run())
        store.save(next_version(make_run(), secrets={"otp": PASSWORD}), 1)
        wal = Path(f"{db_path}-wal")
        files = [db_path, wal, Path(f"{db_path}-shm")]
        wal_size = wal.stat().st_size
        raw = b"".join(path.read_bytes() for path in files if path.exists())
    finally:
        watcher.close()

    assert wal_size > 0
    assert USERNAME.encode() in raw
    assert PASSWORD.encode() not in raw
    assert TOKEN.encode() not in raw


def test_sqlite_without_key_refuses_secrets_and_writes_nothing(db_path: Path) -> None:
    """Without a key, a run with secrets is refused and no row is written."""
    store = SQLiteStore(db_path)

    with pytest.raises(EncryptionKeyMissing) as caught:
        store.create(make_run())

    assert row_count(db_path) == 0
    assert str(caught.value) == (
        f"Run 'run-1' holds secrets (password, tokens) but the store {str(db_path)!r} "
        "has no key to encrypt them; pass key=load_or_create_key(path) to SQLiteStore."
    )
    assert PASSWORD not in str(caught.value)


def test_a_refusal_names_the_secret_fields_of_a_run_not_its_layout(
    db_path: Path,
) -> None:
    """The secrets of an engine's run are named as the flow names them."""
    secrets = {
        "frames": {"0": {"inputs": {"password": PASSWORD}}, "1": {"data": {"t": 1}}},
        "output": {"access_token": TOKEN},
    }

    with pytest.raises(EncryptionKeyMissing) as caught:
        SQLiteStore(db_path).create(make_run(secrets=secrets))

    assert "holds secrets (data.t, inputs.password, outputs.access_token) but" in (
        str(caught.value)
    )


@pytest.mark.parametrize("keyed", [True, False], ids=["key", "no-key"])
def test_require_key_refuses_a_flow_with_secrets_only_without_a_key(
    db_path: Path, keyed: bool
) -> None:
    """require_key names the flow's secret fields when there is no key to seal them."""
    store = SQLiteStore(db_path, key=KEY if keyed else None)

    store.require_key("login", [])
    if keyed:
        store.require_key("login", ["inputs.password"])
        return
    with pytest.raises(EncryptionKeyMissing) as caught:
        store.require_key("login", ["inputs.password", "data.tokens"])
    assert str(caught.value) == (
        "The flow 'login' keeps secrets (inputs.password, data.tokens) but the store "
        f"{str(db_path)!r} has no key to encrypt them; "
        "pass key=load_or_create_key(path) to SQLiteStore."
    )


def test_sqlite_without_key_refuses_a_save_with_secrets(db_path: Path) -> None:
    """Without a key, a save that adds secrets is refused and changes nothing."""
    store = SQLiteStore(db_path)
    plain = make_run(secrets={})
    store.create(plain)

    with pytest.raises(EncryptionKeyMissing):
        store.save(next_version(plain, secrets={"password": PASSWORD}), 1)

    assert store.load("run-1") == plain
    assert PASSWORD.encode() not in db_path.read_bytes()


def test_sqlite_with_the_wrong_key_says_so(db_path: Path) -> None:
    """Secrets written with one key give a clear StoreError with another key."""
    SQLiteStore(db_path, key=KEY).create(make_run())
    other = SQLiteStore(db_path, key=generate_key())

    with pytest.raises(StoreError) as caught:
        other.load("run-1")

    assert str(caught.value) == (
        "The secrets of run 'run-1' cannot be decrypted with this key; "
        "open the store with the key they were written with."
    )
    assert [summary.id for summary in other.list()] == ["run-1"]


def test_sqlite_without_key_cannot_load_encrypted_secrets(db_path: Path) -> None:
    """Encrypted secrets cannot be loaded by a store opened without a key."""
    SQLiteStore(db_path, key=KEY).create(make_run())

    with pytest.raises(EncryptionKeyMissing, match="opened without a key"):
        SQLiteStore(db_path).load("run-1")


def test_sqlite_refuses_a_malformed_key(db_path: Path) -> None:
    """A key that is not a Fernet key is refused when the store is opened."""
    with pytest.raises(StoreError, match="is not a Fernet key"):
        SQLiteStore(db_path, key=b"too-short")


def test_sqlite_file_is_private_wal_and_versioned(db_path: Path) -> None:
    """The file is created with mode 0600 in a 0700 directory, in WAL mode, schema 1."""
    SQLiteStore(db_path)

    with sqlite3.connect(db_path) as connection:
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()

    assert (journal, version) == ("wal", 1)
    if os.name == "posix":
        assert db_path.stat().st_mode & 0o777 == 0o600
        assert db_path.parent.stat().st_mode & 0o777 == 0o700


def test_sqlite_refuses_a_newer_schema(db_path: Path) -> None:
    """A file whose schema is newer than this mfaflow knows is refused, unchanged."""
    SQLiteStore(db_path)
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA user_version = 7")
    connection.close()

    with pytest.raises(
        StoreError, match="has schema version 7, newer than this mfaflow"
    ):
        SQLiteStore(db_path)


def test_sqlite_refuses_a_file_that_is_not_a_database(db_path: Path) -> None:
    """A file that is not SQLite gives StoreError naming it, not a sqlite3 error."""
    db_path.parent.mkdir()
    db_path.write_bytes(b"this is not a database" * 100)

    with pytest.raises(StoreError, match="cannot be opened as a run store"):
        SQLiteStore(db_path)


def test_sqlite_refuses_an_in_memory_database() -> None:
    """':memory:' is refused, pointing at MemoryStore."""
    with pytest.raises(ValueError, match="use MemoryStore"):
        SQLiteStore(":memory:")


def test_sqlite_repr_hides_the_key(db_path: Path) -> None:
    """The store's repr shows its path and whether it has a key, not the key."""
    shown = repr(SQLiteStore(db_path, key=KEY))

    assert KEY.decode() not in shown
    assert shown == f"SQLiteStore({str(db_path)!r}, key=<hidden>)"


_CHILD = """
import sys

import attrs

from mfaflow._errors import ConcurrencyError
from mfaflow._store import SQLiteStore

path, key, name, mode = sys.argv[1:5]
store = SQLiteStore(path, key=key.encode())
if mode == "once":
    run = store.load("run-1")
    run = attrs.evolve(run, version=2, document={"by": name}, secrets={"by": name})
    try:
        store.save(run, expected_version=1)
    except ConcurrencyError:
        sys.exit(3)
    sys.exit(0)
for _ in range(int(mode)):
    while True:
        run = store.load("run-1")
        log = [*run.document["log"], name]
        changed = attrs.evolve(run, version=run.version + 1, document={"log": log})
        try:
            store.save(changed, expected_version=run.version)
            break
        except ConcurrencyError:
            continue
"""


def start_child(path: Path, name: str, mode: str) -> subprocess.Popen[bytes]:
    """Start a Python process that saves to the store at ``path``."""
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), KEY.decode(), name, mode]
    )


def test_two_processes_saving_the_same_version_one_wins(db_path: Path) -> None:
    """Of two processes saving over version 1, exactly one wins and is kept."""
    SQLiteStore(db_path, key=KEY).create(make_run())

    children = {name: start_child(db_path, name, "once") for name in ("left", "right")}
    codes = {name: child.wait(60) for name, child in children.items()}

    assert sorted(codes.values()) == [0, 3]
    (winner,) = (name for name, code in codes.items() if code == 0)
    stored = SQLiteStore(db_path, key=KEY).load("run-1")
    assert (stored.version, stored.document, stored.secrets) == (
        2,
        {"by": winner},
        {"by": winner},
    )


def test_processes_competing_on_one_run_lose_no_update(db_path: Path) -> None:
    """Two processes adding 15 entries each, with retries, lose none of the 30."""
    SQLiteStore(db_path, key=KEY).create(make_run(version=0, document={"log": []}))

    children = [start_child(db_path, name, "15") for name in ("left", "right")]
    codes = [child.wait(60) for child in children]

    stored = SQLiteStore(db_path, key=KEY).load("run-1")
    assert codes == [0, 0]
    assert stored.version == 30
    assert sorted(stored.document["log"]) == ["left"] * 15 + ["right"] * 15


@pytest.fixture
def many_runs() -> list[StoredRun]:
    """Twenty runs, half of them expired at time 500."""
    return [
        make_run(f"run-{i:02}", expires_at=400.0 if i % 2 else 600.0) for i in range(20)
    ]


def test_sqlite_expire_returns_ids_and_removes_rows(
    db_path: Path, many_runs: list[StoredRun]
) -> None:
    """expire on SQLite removes exactly the expired rows from the file."""
    store = SQLiteStore(db_path, key=KEY)
    for run in many_runs:
        store.create(run)

    expired = store.expire(now=500.0)

    assert expired == [run.id for run in many_runs if run.expires_at == 400.0]
    assert row_count(db_path) == 10
