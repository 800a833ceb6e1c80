"""Run stores: where suspended runs wait to be resumed.

A store keeps :class:`StoredRun` records: the run's document (plain JSON,
no secret values) and its secrets (plain JSON too, kept apart so that they
can be encrypted). Every store follows the :class:`Store` protocol:

- ``create`` adds a run whose id is new;
- ``load`` returns a fresh copy of a run;
- ``save`` replaces a run only if the stored version is the version the
  caller read (optimistic concurrency): of two processes that both loaded
  version 3, the first save of version 4 wins and the second raises
  :class:`~mfaflow._errors.ConcurrencyError`, changing nothing;
- ``delete`` forgets a run;
- ``expire`` deletes every run whose ``expires_at`` has passed, whatever
  its status: an ended run is kept as long as its ``expires_at`` says, and
  forever when that is ``None``;
- ``list`` returns summaries, without secrets, for tools such as
  ``mfaflow runs``.

A store may also have ``require_key(flow, fields)``, which raises
:class:`~mfaflow._errors.EncryptionKeyMissing` when it could not keep the
secret ``fields`` (``inputs.password``, ``data.tokens``, ...) that runs of
the flow named ``flow`` hold; the engine calls it before a run starts, so
that a run is refused before any request rather than when it is saved. The
stores of mfaflow have it; a store without it is trusted to keep secrets.

Documents and secrets go through JSON on the way in, so a value JSON
cannot hold fails at ``create`` or ``save`` with a
:class:`~mfaflow._errors.StoreError`, whichever the store; what ``load``
returns is what JSON gives back (lists for tuples, string keys).

:class:`MemoryStore` keeps runs in this process. :class:`SQLiteStore` keeps
them in a SQLite file shared by threads and processes, secrets encrypted
with a key (see :mod:`mfaflow._crypto`). The stores for shared deployments,
:class:`~mfaflow._store_redis.RedisStore` and
:class:`~mfaflow._store_postgres.PostgresStore`, live in modules of their
own and import their client libraries only when they are made; they share
with :class:`SQLiteStore` the encoding of runs (:func:`_encode`,
:func:`_decode`, :meth:`_Row.summary`), the sealing of secrets
(:class:`_Sealing`) and the wording of every error.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen

from ._crypto import Sealer
from ._errors import ConcurrencyError, EncryptionKeyMissing, RunNotFound, StoreError

__all__ = [
    "STATUSES",
    "MemoryStore",
    "RunSummary",
    "SQLiteStore",
    "Store",
    "StoredRun",
]

logger = logging.getLogger(__name__)

#: The statuses a stored run may have.
STATUSES = ("running", "waiting", "ended", "failed")


def _check_status(_instance: object, _attribute: object, value: Any) -> None:
    if value not in STATUSES:
        allowed = ", ".join(repr(status) for status in STATUSES)
        raise ValueError(f"A run's status must be one of {allowed}, not {value!r}.")


def _check_version(_instance: object, _attribute: object, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"A run's version must be an integer of 0 or more, not {value!r}."
        raise ValueError(msg)


def _check_dict(_instance: object, attribute: Any, value: Any) -> None:
    # The value itself is never shown: it may be the secrets.
    if not isinstance(value, dict):
        name = type(value).__name__
        raise TypeError(f"A run's {attribute.name} must be a dict, not {name}.")


def _secret_names(secrets: dict[str, Any]) -> str:
    if not secrets:
        return "{}"
    return "<hidden: " + ", ".join(sorted(map(str, secrets))) + ">"


@frozen
class StoredRun:
    """A run as a store keeps it.

    ``document`` holds everything but secret values and ``secrets`` only
    secret values, both JSON-serialisable. ``version`` goes up by one with
    every save. ``expires_at`` and ``updated_at`` are POSIX timestamps. The
    repr shows the names of the secrets, never their values.
    """

    id: str
    flow: str
    status: str = field(validator=_check_status)
    version: int = field(validator=_check_version)
    document: dict[str, Any] = field(validator=_check_dict)
    secrets: dict[str, Any] = field(
        factory=dict, validator=_check_dict, repr=_secret_names
    )
    expires_at: float | None = None
    updated_at: float = field(factory=time.time)


@frozen
class RunSummary:
    """What :meth:`Store.list` tells of a run: everything but its secrets."""

    id: str
    flow: str
    status: str
    version: int
    document: dict[str, Any]
    expires_at: float | None
    updated_at: float


@runtime_checkable
class Store(Protocol):
    """Where runs are kept between steps; see the module's docstring."""

    def create(self, run: StoredRun) -> None:
        """Add ``run``.

        Raises:
            StoreError: a run with that id exists, or ``run`` cannot be
                stored as JSON.
            EncryptionKeyMissing: the run has secrets and the store cannot
                encrypt them.
        """
        ...

    def load(self, run_id: str) -> StoredRun:
        """Return the stored run ``run_id``.

        Raises:
            RunNotFound: no run has that id.
        """
        ...

    def save(self, run: StoredRun, expected_version: int) -> None:
        """Replace the stored run by ``run`` if its version is ``expected_version``.

        ``run.version`` must be greater than ``expected_version``; it is
        normally ``expected_version + 1``.

        Raises:
            ConcurrencyError: the stored version differs; nothing changed.
            RunNotFound: no run has that id.
            ValueError: ``run.version`` is not above ``expected_version``.
        """
        ...

    def delete(self, run_id: str) -> None:
        """Forget run ``run_id``; nothing happens if there is none."""
        ...

    def expire(self, now: float) -> builtins.list[str]:
        """Delete every run whose ``expires_at`` is before ``now``; return their ids."""
        ...

    def list(self, status: str | None = None) -> builtins.list[RunSummary]:
        """Return summaries of the runs (of one status), oldest update first."""
        ...


@frozen
class _Row:
    """A run encoded for storage: the document as JSON, secrets as text."""

    id: str
    flow: str
    status: str
    version: int
    document: str
    secrets: str | None
    expires_at: float | None
    updated_at: float

    def summary(self) -> RunSummary:
        document = _loads(self.document, f"the document of run {self.id!r}")
        return RunSummary(
            self.id,
            self.flow,
            self.status,
            self.version,
            document,
            self.expires_at,
            self.updated_at,
        )


def _dumps(value: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what.capitalize()} cannot be stored as JSON: {exc}."
        ) from exc


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{what.capitalize()} in the store is not JSON.") from exc


def _encode(run: StoredRun, seal: Callable[[StoredRun], str | None]) -> _Row:
    document = _dumps(run.document, f"the document of run {run.id!r}")
    return _Row(
        run.id,
        run.flow,
        run.status,
        run.version,
        document,
        seal(run),
        run.expires_at,
        run.updated_at,
    )


def _decode(row: _Row, open_: Callable[[_Row], dict[str, Any]]) -> StoredRun:
    return StoredRun(
        id=row.id,
        flow=row.flow,
        status=row.status,
        version=row.version,
        document=_loads(row.document, f"the document of run {row.id!r}"),
        secrets=open_(row),
        expires_at=row.expires_at,
        updated_at=row.updated_at,
    )


def _check_versions(run: StoredRun, expected_version: int) -> None:
    if run.version <= expected_version:
        msg = (
            f"Run {run.id!r} is saved with version {run.version}, which must be "
            f"greater than the expected version {expected_version}."
        )
        raise ValueError(msg)


def _exists(run_id: str) -> StoreError:
    return StoreError(f"A run with id {run_id!r} is already in the store.")


def _not_found(run_id: str) -> RunNotFound:
    return RunNotFound(f"No run with id {run_id!r} is in the store.", run_id=run_id)


def _stale(run_id: str, expected: int, found: int) -> ConcurrencyError:
    msg = (
        f"Run {run_id!r} was saved by someone else meanwhile: expected version "
        f"{expected}, found {found}; load it again and retry."
    )
    return ConcurrencyError(msg)


def _check_status_filter(status: str | None) -> None:
    if status is not None:
        _check_status(None, None, status)


class _Sealing:
    """How a store that writes runs outside this process keeps their secrets.

    Secrets are sealed with ``key`` (see :class:`~mfaflow._crypto.Sealer`)
    before they are written, and opened when read. Without a key a run
    with secrets is refused, before anything is written, and sealed
    secrets cannot be read; runs without secrets need no key.

    Args:
        key: the Fernet key, or ``None``.
        store: how messages name the store: a path, or a URL without its
            password.
        hint: the end of the message that refuses secrets for want of a
            key: how to give the store one.

    Raises:
        StoreError: ``key`` is not a Fernet key.
    """

    def __init__(self, key: bytes | str | None, *, store: str, hint: str) -> None:
        self._sealer = Sealer(key) if key is not None else None
        self._store = store
        self._hint = hint

    @property
    def shown_key(self) -> str:
        """How a store's repr shows its key: ``<hidden>``, or ``None``."""
        return "<hidden>" if self._sealer is not None else "None"

    def seal(self, run: StoredRun) -> str | None:
        """The secrets of ``run`` as sealed text; ``None`` when it has none.

        Raises:
            EncryptionKeyMissing: the run has secrets and there is no key.
            StoreError: the secrets cannot be stored as JSON.
        """
        if not run.secrets:
            return None
        if self._sealer is None:
            names = ", ".join(_secret_fields(run.secrets))
            msg = (
                f"Run {run.id!r} holds secrets ({names}) but the store "
                f"{self._store!r} has no key to encrypt them; {self._hint}."
            )
            raise EncryptionKeyMissing(msg)
        try:
            return self._sealer.seal(run.secrets)
        except (TypeError, ValueError) as exc:
            msg = f"The secrets of run {run.id!r} cannot be stored as JSON: {exc}."
            raise StoreError(msg) from exc

    def require(self, flow: str, fields: Iterable[str]) -> None:
        """Refuse, before anything happens, a flow that would keep ``fields``.

        Raises:
            EncryptionKeyMissing: ``fields`` is not empty and there is no key.
        """
        names = ", ".join(fields)
        if self._sealer is None and names:
            msg = (
                f"The flow {flow!r} keeps secrets ({names}) but the store "
                f"{self._store!r} has no key to encrypt them; {self._hint}."
            )
            raise EncryptionKeyMissing(msg)

    def open(self, row: _Row) -> dict[str, Any]:
        """The secrets sealed in ``row``; ``{}`` when it has none.

        Raises:
            EncryptionKeyMissing: the row has sealed secrets and there is no key.
            StoreError: the secrets were sealed with another key, or altered.
        """
        if row.secrets is None:
            return {}
        if self._sealer is None:
            msg = (
                f"The secrets of run {row.id!r} are encrypted and the store "
                f"{self._store!r} was opened without a key; pass the key they "
                "were written with."
            )
            raise EncryptionKeyMissing(msg)
        try:
            return dict(self._sealer.open(row.secrets))
        except StoreError as exc:
            msg = (
                f"The secrets of run {row.id!r} cannot be decrypted with this key; "
                "open the store with the key they were written with."
            )
            raise StoreError(msg) from exc


class _SealingStore:
    """What the stores that seal secrets with a :class:`_Sealing` share."""

    _secrets: _Sealing

    def require_key(self, flow: str, fields: Iterable[str]) -> None:
        """Refuse a flow that keeps the secret ``fields`` when there is no key.

        Raises:
            EncryptionKeyMissing: the store has no key and ``fields`` is
                not empty.
        """
        self._secrets.require(flow, fields)


def _secret_fields(secrets: dict[str, Any]) -> list[str]:
    """The names of the secret values a run holds, as a flow names them.

    A run's secrets hold the secret inputs and data of each frame and the
    secret outputs (see :mod:`mfaflow._run`): ``inputs.password``,
    ``data.tokens``, ``outputs.access_token``. Other keys are named as
    they are.
    """
    names: set[str] = set()
    for key, value in secrets.items():
        if key == "frames" and isinstance(value, dict):
            for frame in value.values():
                for part, fields in frame.items():
                    names.update(f"{part}.{name}" for name in fields)
        elif key == "output" and isinstance(value, dict):
            names.update(f"outputs.{name}" for name in value)
        else:
            names.add(str(key))
    return sorted(names)


def _failed(store: str, what: str, exc: BaseException) -> StoreError:
    """The error told when the database under a store fails to do ``what``.

    Only the first line of the database's message is kept: the lines after
    it may quote the statement or the data it was given.
    """
    lines = str(exc).strip().splitlines()
    reason = lines[0].rstrip(".") if lines else type(exc).__name__
    return StoreError(f"The run store {store!r} failed to {what}: {reason}.")


class MemoryStore:
    """Keeps runs in this process's memory; safe to share between threads.

    Runs are kept as JSON text, so every ``load`` returns a fresh copy and
    changing it does not change the store.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._rows)} runs>)"

    def require_key(self, flow: str, fields: Iterable[str]) -> None:
        """Accept every flow: secrets kept in memory never leave this process."""

    def create(self, run: StoredRun) -> None:
        """Add ``run``; see :meth:`Store.create`."""
        row = _encode(run, self._seal)
        with self._lock:
            if run.id in self._rows:
                raise _exists(run.id)
            self._rows[run.id] = row

    def load(self, run_id: str) -> StoredRun:
        """Return run ``run_id``; see :meth:`Store.load`."""
        with self._lock:
            row = self._rows.get(run_id)
        if row is None:
            raise _not_found(run_id)

        return _decode(row, self._open)

    def save(self, run: StoredRun, expected_version: int) -> None:
        """Replace run ``run.id`` if unchanged; see :meth:`Store.save`."""
        _check_versions(run, expected_version)
        row = _encode(run, self._seal)
        with self._lock:
            stored = self._rows.get(run.id)
            if stored is None:
                raise _not_found(run.id)
            if stored.version != expected_version:
                raise _stale(run.id, expected_version, stored.version)
            self._rows[run.id] = row

    def delete(self, run_id: str) -> None:
        """Forget run ``run_id``; see :meth:`Store.delete`."""
        with self._lock:
            self._rows.pop(run_id, None)

    def expire(self, now: float) -> builtins.list[str]:
        """Delete runs expired before ``now``; see :meth:`Store.expire`."""
        with self._lock:
            expired = [
                row.id
                for row in self._rows.values()
                if row.expires_at is not None and row.expires_at < now
            ]
            for run_id in expired:
                del self._rows[run_id]

        return expired

    def list(self, status: str | None = None) -> builtins.list[RunSummary]:
        """Return summaries of the runs; see :meth:`Store.list`."""
        _check_status_filter(status)
        with self._lock:
            rows = [
                row
                for row in self._rows.values()
                if status is None or row.status == status
            ]
        rows.sort(key=lambda row: (row.updated_at, row.id))

        return [row.summary() for row in rows]

    @staticmethod
    def _seal(run: StoredRun) -> str:
        return _dumps(run.secrets, f"the secrets of run {run.id!r}")

    @staticmethod
    def _open(row: _Row) -> dict[str, Any]:
        return dict(_loads(row.secrets or "{}", f"the secrets of run {row.id!r}"))


_SCHEMA_VERSION = 1
_COLUMNS = "id, flow, status, version, document, secrets, expires_at, updated_at"
_SUMMARY_COLUMNS = "id, flow, status, version, document, NULL, expires_at, updated_at"
# Long enough to wait out other writers; a save holds the lock for a moment.
_BUSY_TIMEOUT = 30.0


def _create_version_1(connection: sqlite3.Connection) -> None:
    connection.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            flow TEXT NOT NULL,
            status TEXT NOT NULL,
            version INTEGER NOT NULL,
            document TEXT NOT NULL,
            secrets TEXT,
            expires_at REAL,
            updated_at REAL NOT NULL
        )
        """
    )
    connection.execute(
        "CREATE INDEX runs_expires_at ON runs (expires_at) WHERE expires_at IS NOT NULL"
    )


# _MIGRATIONS[n] takes a database from schema version n to n + 1.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_version_1,)


class SQLiteStore(_SealingStore):
    """Keeps runs in a SQLite file, shared by threads and processes.

    The file is in WAL mode, and every operation opens its own connection
    (under a millisecond), so threads and forked processes never share one
    and any of them may use the store. A save is one ``UPDATE ... WHERE id
    = ? AND version = ?`` in a write transaction: of competing saves of the
    same version exactly one changes the row.

    A run's secrets are encrypted with ``key`` (a Fernet key, see
    :func:`~mfaflow._crypto.load_or_create_key`) before they are written;
    the file never holds them in plaintext. Without a key, runs without
    secrets can be stored, and a run with secrets is refused with
    :class:`~mfaflow._errors.EncryptionKeyMissing` before anything is
    written.

    The file (created with mode 0600, and its missing parent directories
    with 0700) records its schema version in ``PRAGMA user_version``; an
    older schema is migrated on opening and a newer one refused.

    Raises:
        StoreError: the file cannot be opened as a run store, or ``key`` is
            not a Fernet key.
        ValueError: ``path`` is ``":memory:"``, which one connection per
            operation cannot share; use :class:`MemoryStore`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, key: bytes | str | None = None
    ) -> None:
        self._path = os.fspath(path)
        if self._path == ":memory:" or self._path.startswith("file:"):
            msg = f"SQLiteStore needs a file path, not {self._path!r}; use MemoryStore."
            raise ValueError(msg)
        self._secrets = _Sealing(
            key,
            store=self._path,
            hint="pass key=load_or_create_key(path) to SQLiteStore",
        )
        self._prepare()

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r}, key={self._secrets.shown_key})"

    @property
    def path(self) -> str:
        """The path of the SQLite file."""
        return self._path

    def create(self, run: StoredRun) -> None:
        """Add ``run``; see :meth:`Store.create`."""
        row = _encode(run, self._secrets.seal)
        with self._transaction(f"create run {run.id!r}") as connection:
            try:
                connection.execute(
                    f"INSERT INTO runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    _values(row),
                )
            except sqlite3.IntegrityError as exc:
                raise _exists(run.id) from exc

    def load(self, run_id: str) -> StoredRun:
        """Return run ``run_id``; see :meth:`Store.load`."""
        with self._connection(f"load run {run_id!r}") as connection:
            found = connection.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE id = ?",  # noqa: S608
                (run_id,),
            ).fetchone()
        if found is None:
            raise _not_found(run_id)

        return _decode(_Row(*found), self._secrets.open)

    def save(self, run: StoredRun, expected_version: int) -> None:
        """Replace run ``run.id`` if unchanged; see :meth:`Store.save`."""
        _check_versions(run, expected_version)
        row = _encode(run, self._secrets.seal)
        with self._transaction(f"save run {run.id!r}") as connection:
            changed = connection.execute(
                "UPDATE runs SET flow = ?, status = ?, version = ?, document = ?, "
                "secrets = ?, expires_at = ?, updated_at = ? "
                "WHERE id = ? AND version = ?",
                (*_values(row)[1:], run.id, expected_version),
            ).rowcount
            if changed == 1:
                return
            found = connection.execute(
                "SELECT version FROM runs WHERE id = ?", (run.id,)
            ).fetchone()
        if found is None:
            raise _not_found(run.id)
        raise _stale(run.id, expected_version, found[0])

    def delete(self, run_id: str) -> None:
        """Forget run ``run_id``; see :meth:`Store.delete`."""
        with self._transaction(f"delete run {run_id!r}") as connection:
            connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def expire(self, now: float) -> builtins.list[str]:
        """Delete runs expired before ``now``; see :meth:`Store.expire`."""
        where = "WHERE expires_at IS NOT NULL AND expires_at < ?"
        with self._transaction("expire runs") as connection:
            expired = [
                run_id
                for (run_id,) in connection.execute(
                    f"SELECT id FROM runs {where} ORDER BY expires_at, id",  # noqa: S608
                    (now,),
                )
            ]
            connection.execute(f"DELETE FROM runs {where}", (now,))  # noqa: S608
        if expired:
            logger.debug("Expired %d runs in %s", len(expired), self._path)

        return expired

    def list(self, status: str | None = None) -> builtins.list[RunSummary]:
        """Return summaries of the runs; see :meth:`Store.list`.

        No key is needed: secrets are not read.
        """
        _check_status_filter(status)
        query = f"SELECT {_SUMMARY_COLUMNS} FROM runs"  # noqa: S608
        parameters: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            parameters = (status,)
        with self._connection("list runs") as connection:
            found = connection.execute(
                query + " ORDER BY updated_at, id", parameters
            ).fetchall()

        return [_Row(*columns).summary() for columns in found]

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: a lone statement is atomic on its own, and writes
        # begin their transaction explicitly, taking the write lock first.
        return sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT, isolation_level=None)

    @contextmanager
    def _connection(self, what: str) -> Iterator[sqlite3.Connection]:
        """Open a connection for one operation; SQLite errors become StoreError."""
        try:
            connection = self._connect()
            try:
                yield connection
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise _failed(self._path, what, exc) from exc

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction, rolled back if it raises."""
        with self._connection(what) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _prepare(self) -> None:
        """Create the file privately, switch to WAL, bring the schema up to date."""
        try:
            _create_private_file(Path(self._path))
        except OSError as exc:
            msg = f"The run store {self._path!r} cannot be created: {exc.strerror}."
            raise StoreError(msg) from exc
        try:
            connection = self._connect()
            try:
                connection.execute("PRAGMA journal_mode = WAL")
            finally:
                connection.close()
        except sqlite3.Error as exc:
            msg = f"The file {self._path!r} cannot be opened as a run store: {exc}."
            raise StoreError(msg) from exc
        with self._transaction("update its schema") as connection:
            self._migrate(connection)

    def _migrate(self, connection: sqlite3.Connection) -> None:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            msg = (
                f"The run store {self._path!r} has schema version {version}, newer "
                f"than this mfaflow knows ({_SCHEMA_VERSION}); upgrade mfaflow."
            )
            raise StoreError(msg)
        for step in range(version, _SCHEMA_VERSION):
            _MIGRATIONS[step](connection)
            logger.debug("Run store %s migrated to schema %d", self._path, step + 1)
        # PRAGMA takes no parameters; the value is our own integer.
        connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


def _values(row: _Row) -> tuple[Any, ...]:
    return (
        row.id,
        row.flow,
        row.status,
        row.version,
        row.document,
        row.secrets,
        row.expires_at,
        row.updated_at,
    )


def _create_private_file(path: Path) -> None:
    """Create an empty file at ``path`` with mode 0600 unless it exists.

    SQLite would create it with the umask's mode; its journal files take
    the mode of the database file.
    """
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)
