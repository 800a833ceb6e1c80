"""A run store in PostgreSQL, shared by processes on any number of hosts.

Runs are rows of one table (``mfaflow_runs`` by default), created with its
index when missing::

    id          text PRIMARY KEY
    flow        text NOT NULL
    status      text NOT NULL
    version     integer NOT NULL
    document    jsonb NOT NULL
    secrets     text              -- sealed; NULL when the run has none
    expires_at  double precision  -- NULL when the run never expires
    updated_at  double precision NOT NULL

A save is one ``UPDATE ... WHERE id = %s AND version = %s``: PostgreSQL
locks the row, and of competing saves of one version the first changes it
and the others find the version moved on and change nothing.

``jsonb`` keeps documents as parsed values, not as text, which brings two
differences from the other stores: a string holding the character U+0000
cannot be stored (``create`` or ``save`` raises
:class:`~mfaflow._errors.StoreError` and nothing changes), and a number is
kept as a decimal, so a float written with an exponent (``1e+16``) loads
as an equal integer.

The client library, psycopg 3, is imported when a store is made: install
it with ``pip install 'mfaflow[postgres]'``.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._errors import StoreError
from ._store import (
    RunSummary,
    StoredRun,
    _check_status_filter,
    _check_versions,
    _decode,
    _encode,
    _exists,
    _failed,
    _not_found,
    _Row,
    _Sealing,
    _SealingStore,
    _stale,
    _values,
)
from ._transport import safe_url

if TYPE_CHECKING:
    from psycopg import Connection, sql

__all__ = ["PostgresStore"]

logger = logging.getLogger(__name__)

# PostgreSQL cuts names at 63 bytes; the index's name adds 11 to the table's.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,51}")
#: Seconds to wait for a connection, unless the address says otherwise.
_CONNECT_TIMEOUT = 10
#: The advisory lock that makes creating tables one process at a time: two
#: CREATE TABLE IF NOT EXISTS at once can both try, and one fail.
_SCHEMA_LOCK = 0x6D666C77_72756E73
_COLUMNS = (
    "id",
    "flow",
    "status",
    "version",
    "document",
    "secrets",
    "expires_at",
    "updated_at",
)


class PostgresStore(_SealingStore):
    """Keeps runs in a PostgreSQL table; see the module's docstring.

    Every operation opens its own connection and runs in one transaction,
    so threads and forked processes share nothing and may all use the
    store. Secrets are sealed with ``key`` as in
    :class:`~mfaflow._store.SQLiteStore`: the table never holds them in
    plaintext, and without a key a run with secrets is refused with
    :class:`~mfaflow._errors.EncryptionKeyMissing` before anything is
    written. Every process sharing the store needs the same key.

    Args:
        dsn: where PostgreSQL is: a ``postgresql://`` URL or a libpq
            connection string (``host=... dbname=...``). Messages and the
            repr show it without its password.
        key: the Fernet key that seals secrets, or ``None``.
        table: the table's name: a letter or ``_``, then letters, digits
            or ``_``, 52 characters at most. It is quoted, so its case
            counts.

    Raises:
        StoreError: psycopg is not installed, ``dsn`` cannot be parsed,
            PostgreSQL cannot be reached, a table of that name holds
            something else, or ``key`` is not a Fernet key.
        ValueError: ``table`` is not a name of the form above.
    """

    def __init__(
        self,
        dsn: str,
        *,
        key: bytes | str | None = None,
        table: str = "mfaflow_runs",
    ) -> None:
        _check_table(table)
        self._psycopg = _import_psycopg()
        self._dsn = dsn
        self._name, self._options = _describe(self._psycopg, dsn)
        self._table = table
        self._secrets = _Sealing(
            key,
            store=self._name,
            hint="pass PostgresStore the key every process sharing the store uses",
        )
        self._sql = _Statements(self._psycopg.sql, table)
        self._prepare()

    def __repr__(self) -> str:
        return (
            f"PostgresStore({self._name!r}, table={self._table!r}, "
            f"key={self._secrets.shown_key})"
        )

    @property
    def table(self) -> str:
        """The name of the table runs are kept in."""
        return self._table

    def create(self, run: StoredRun) -> None:
        """Add ``run``; see :meth:`Store.create`."""
        row = _encode(run, self._secrets.seal)
        with self._transaction(f"create run {run.id!r}") as connection:
            created = connection.execute(self._sql.insert, _values(row)).rowcount
        if created != 1:
            raise _exists(run.id)

    def load(self, run_id: str) -> StoredRun:
        """Return run ``run_id``; see :meth:`Store.load`."""
        with self._transaction(f"load run {run_id!r}") as connection:
            found = connection.execute(self._sql.select, (run_id,)).fetchone()
        if found is None:
            raise _not_found(run_id)

        return _decode(_Row(*found), self._secrets.open)

    def save(self, run: StoredRun, expected_version: int) -> None:
        """Replace run ``run.id`` if unchanged; see :meth:`Store.save`."""
        _check_versions(run, expected_version)
        row = _encode(run, self._secrets.seal)
        with self._transaction(f"save run {run.id!r}") as connection:
            changed = connection.execute(
                self._sql.update, (*_values(row)[1:], run.id, expected_version)
            ).rowcount
            if changed == 1:
                return
            found = connection.execute(self._sql.version, (run.id,)).fetchone()
        if found is None:
            raise _not_found(run.id)
        raise _stale(run.id, expected_version, found[0])

    def delete(self, run_id: str) -> None:
        """Forget run ``run_id``; see :meth:`Store.delete`."""
        with self._transaction(f"delete run {run_id!r}") as connection:
            connection.execute(self._sql.delete, (run_id,))

    def expire(self, now: float) -> builtins.list[str]:
        """Delete runs expired before ``now``; see :meth:`Store.expire`."""
        with self._transaction("expire runs") as connection:
            found = connection.execute(self._sql.expire, (now,)).fetchall()
        found.sort(key=lambda row: (row[1], row[0]))
        expired = [run_id for run_id, _ in found]
        if expired:
            logger.debug("Expired %d runs in %s", len(expired), self._name)

        return expired

    def list(self, status: str | None = None) -> builtins.list[RunSummary]:
        """Return summaries of the runs; see :meth:`Store.list`.

        No key is needed: secrets are not read.
        """
        _check_status_filter(status)
        with self._transaction("list runs") as connection:
            found = connection.execute(
                self._sql.summaries, {"status": status}
            ).fetchall()

        return [_Row(*columns).summary() for columns in found]

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Connection[tuple[Any, ...]]]:
        """Connect, run the block in one transaction, and close.

        The transaction is committed when the block ends and rolled back if
        it raises; psycopg's errors become StoreError.
        """
        try:
            with self._psycopg.connect(self._dsn, **self._options) as connection:
                yield connection
        except self._psycopg.Error as exc:
            raise _failed(self._name, what, exc) from exc

    def _prepare(self) -> None:
        """Create the table and its index if missing, and check the table's columns."""
        with self._transaction(f"open its table {self._table!r}") as connection:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute(self._sql.create_table)
            self._probe(connection)
            connection.execute(self._sql.create_index)
        logger.debug("Run store %s uses the table %s", self._name, self._table)

    def _probe(self, connection: Connection[tuple[Any, ...]]) -> None:
        """Read no row but every column, to find a table that is not ours."""
        try:
            connection.execute(self._sql.probe)
        except self._psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0].rstrip(".")
            msg = (
                f"The table {self._table!r} of the run store {self._name!r} is not "
                f"a table of runs as mfaflow makes them: {reason}."
            )
            raise StoreError(msg) from exc


class _Statements:
    """The SQL of one store, with its table's name quoted.

    Args:
        module: ``psycopg.sql``, imported by the store.
        table: the table's name, already checked.
    """

    def __init__(self, module: Any, table: str) -> None:
        name = module.Identifier(table)
        index = module.Identifier(f"{table}_expires_at")
        columns = module.SQL(", ").join(map(module.Identifier, _COLUMNS))

        def statement(text: str, *names: Any) -> sql.Composed:
            composed: sql.Composed = module.SQL(text).format(*names)
            return composed

        self.create_table = statement(
            "CREATE TABLE IF NOT EXISTS {} ("
            " id text PRIMARY KEY,"
            " flow text NOT NULL,"
            " status text NOT NULL,"
            " version integer NOT NULL,"
            " document jsonb NOT NULL,"
            " secrets text,"
            " expires_at double precision,"
            " updated_at double precision NOT NULL)",
            name,
        )
        self.create_index = statement(
            "CREATE INDEX IF NOT EXISTS {} ON {} (expires_at)"
            " WHERE expires_at IS NOT NULL",
            index,
            name,
        )
        self.probe = statement("SELECT {} FROM {} LIMIT 0", columns, name)
        self.insert = statement(
            "INSERT INTO {} ({}) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            name,
            columns,
        )
        # document::text: the JSON is decoded by the code all stores share.
        self.select = statement(
            "SELECT id, flow, status, version, document::text, secrets,"
            " expires_at, updated_at FROM {} WHERE id = %s",
            name,
        )
        self.update = statement(
            "UPDATE {} SET flow = %s, status = %s, version = %s,"
            " document = %s::jsonb, secrets = %s, expires_at = %s, updated_at = %s"
            " WHERE id = %s AND version = %s",
            name,
        )
        self.version = statement("SELECT version FROM {} WHERE id = %s", name)
        self.delete = statement("DELETE FROM {} WHERE id = %s", name)
        self.expire = statement(
            "DELETE FROM {} WHERE expires_at IS NOT NULL AND expires_at < %s"
            " RETURNING id, expires_at",
            name,
        )
        # COLLATE "C": ids in code point order, as the other stores sort them.
        self.summaries = statement(
            "SELECT id, flow, status, version, document::text, NULL,"
            " expires_at, updated_at FROM {}"
            " WHERE %(status)s::text IS NULL OR status = %(status)s::text"
            ' ORDER BY updated_at, id COLLATE "C"',
            name,
        )


def _check_table(table: str) -> None:
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        msg = (
            "A table name must be a letter or '_' followed by letters, digits or "
            f"'_', 52 characters at most, such as 'mfaflow_runs', not {table!r}."
        )
        raise ValueError(msg)


def _import_psycopg() -> Any:
    try:
        import psycopg
        import psycopg.sql
    except ImportError as exc:
        msg = (
            "PostgresStore needs the psycopg package, which is not installed; "
            "install it with pip install 'mfaflow[postgres]'."
        )
        raise StoreError(msg) from exc
    return psycopg


def _describe(psycopg: Any, dsn: str) -> tuple[str, dict[str, Any]]:
    """How messages name the database, and the options to connect with.

    Raises:
        StoreError: ``dsn`` is neither a URL nor a connection string.
    """
    try:
        given = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        # The message of psycopg may quote the string, password and all.
        msg = (
            "The PostgreSQL address is neither a postgresql:// URL nor a "
            "connection string such as 'host=127.0.0.1 dbname=runs'."
        )
        raise StoreError(msg) from exc
    if dsn.startswith(("postgresql://", "postgres://")):
        name = safe_url(dsn)
    else:
        shown = {k: v for k, v in given.items() if "password" not in k}
        name = psycopg.conninfo.make_conninfo(**shown)
    options = (
        {} if "connect_timeout" in given else {"connect_timeout": _CONNECT_TIMEOUT}
    )

    return name, options
