"""A run store in Redis, shared by processes on any number of hosts.

Keys, for the prefix ``mfaflow:run:`` (any prefix ending in ``:``):

- ``mfaflow:run:ID``: a hash per run with the fields ``flow``, ``status``,
  ``version``, ``document`` (JSON), ``secrets`` (sealed, absent when the
  run has none), ``expires_at`` (absent when the run never expires) and
  ``updated_at``;
- ``mfaflow:run``, the prefix without its colon: a sorted set of every
  run's id, scored by its ``expires_at`` (``+inf`` when it never expires).
  ``expire`` reads the expired ids from it and ``list`` every id. Shorter
  than the prefix, it can never be the key of a run.

A run's hash and its place in the index change together: ``create`` and
``save`` are Lua scripts, which Redis runs atomically, ``delete`` a
MULTI/EXEC transaction. ``save`` compares the stored version with the
expected one inside its script, so of competing saves of one version
exactly one is applied.

Runs are never given a Redis TTL: a run outlives its ``expires_at`` until
``expire`` is called, as in every store, so that the engine can still load
a run that expired while it waited and end it as expired.

The client library, redis-py, is imported when a store is made: install it
with ``pip install 'mfaflow[redis]'``.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Mapping, Sequence
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
)
from ._transport import safe_url

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisStore"]

logger = logging.getLogger(__name__)

#: How long to wait for Redis to accept a connection, and to answer, in
#: seconds, unless the URL says otherwise (``?socket_timeout=5``).
_CONNECT_TIMEOUT = 10.0
_ANSWER_TIMEOUT = 30.0
#: The fields ``list`` reads: all but the secrets.
_SUMMARY_FIELDS = ("flow", "status", "version", "document", "expires_at", "updated_at")
#: How many expired runs one script deletes; keeps Redis responsive.
_EXPIRE_BATCH = 500

# KEYS: the run's hash, the index. ARGV: the id, its score, then the
# hash's fields and values.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: the run's hash, the index. ARGV: the id, its score, the expected
# version, then the hash's fields and values. The hash is replaced whole,
# so that a field the new run lacks (secrets, expires_at) goes.
_SAVE = """
local found = redis.call('HGET', KEYS[1], 'version')
if not found then
  return {'missing'}
end
if found ~= ARGV[3] then
  return {'stale', found}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {'saved'}
"""

# KEYS: the index, then the hash of each candidate. ARGV: the time, then
# each candidate's id. A candidate saved with a later expiry since it was
# read is kept.
_EXPIRE = """
local now = tonumber(ARGV[1])
local expired = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  local at = score and tonumber(score)
  if at and at < now then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    expired[#expired + 1] = ARGV[i]
  end
end
return expired
"""


class RedisStore(_SealingStore):
    """Keeps runs in Redis; see the module's docstring for its keys.

    Safe to share between threads (redis-py keeps a pool of connections)
    and usable after a fork. Secrets are sealed with ``key`` as in
    :class:`~mfaflow._store.SQLiteStore`: Redis never holds them in
    plaintext, and without a key a run with secrets is refused with
    :class:`~mfaflow._errors.EncryptionKeyMissing` before anything is
    written. Every process sharing the store needs the same key.

    Args:
        url: where Redis is: ``redis://``, ``rediss://`` (TLS) or
            ``unix://``, with the database number as the path. Messages
            and the repr show it without its password.
        key: the Fernet key that seals secrets, or ``None``.
        prefix: the start of every key of this store; it must end with
            ``:``. Stores sharing a database need prefixes of which none
            starts another.
        client: a ``redis.Redis`` to use instead of connecting to ``url``;
            it stays its owner's to close.

    Raises:
        StoreError: redis-py is not installed, ``url`` is not a Redis URL,
            Redis cannot be reached, or ``key`` is not a Fernet key.
        ValueError: ``prefix`` does not end with ``:``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key: bytes | str | None = None,
        prefix: str = "mfaflow:run:",
        client: Redis | None = None,
    ) -> None:
        _check_prefix(prefix)
        redis = _import_redis()
        self._prefix = prefix
        self._index = prefix[:-1]
        self._errors: type[Exception] = redis.RedisError
        self._owned = client is None
        if client is None:
            self._name = safe_url(url)
            client = _connect(redis, url, self._name)
        else:
            self._name = _client_name(client)
        self._client = client
        self._secrets = _Sealing(
            key,
            store=self._name,
            hint="pass RedisStore the key every process sharing the store uses",
        )
        self._create_script = client.register_script(_CREATE)
        self._save_script = client.register_script(_SAVE)
        self._expire_script = client.register_script(_EXPIRE)
        with self._talking("connect"):
            client.ping()

    def __repr__(self) -> str:
        return (
            f"RedisStore({self._name!r}, prefix={self._prefix!r}, "
            f"key={self._secrets.shown_key})"
        )

    @property
    def prefix(self) -> str:
        """The start of every key of this store."""
        return self._prefix

    def close(self) -> None:
        """Close the connections this store opened; a client passed in stays open."""
        if self._owned:
            self._client.close()

    def create(self, run: StoredRun) -> None:
        """Add ``run``; see :meth:`Store.create`."""
        row = _encode(run, self._secrets.seal)
        with self._talking(f"create run {run.id!r}"):
            created = self._create_script(
                keys=[self._key(run.id), self._index],
                args=[run.id, _score(run.expires_at), *_fields(row)],
            )
        if not created:
            raise _exists(run.id)

    def load(self, run_id: str) -> StoredRun:
        """Return run ``run_id``; see :meth:`Store.load`."""
        with self._talking(f"load run {run_id!r}"):
            found = self._client.hgetall(self._key(run_id))
        if not found:
            raise _not_found(run_id)

        return _decode(self._row(run_id, _hash_texts(found)), self._secrets.open)

    def save(self, run: StoredRun, expected_version: int) -> None:
        """Replace run ``run.id`` if unchanged; see :meth:`Store.save`."""
        _check_versions(run, expected_version)
        row = _encode(run, self._secrets.seal)
        args = [run.id, _score(run.expires_at), str(expected_version), *_fields(row)]
        with self._talking(f"save run {run.id!r}"):
            outcome = self._save_script(
                keys=[self._key(run.id), self._index], args=args
            )
        status, *found = (_text(part) for part in outcome)
        if status == "missing":
            raise _not_found(run.id)
        if status == "stale":
            raise _stale(run.id, expected_version, int(found[0]))

    def delete(self, run_id: str) -> None:
        """Forget run ``run_id``; see :meth:`Store.delete`."""
        with self._talking(f"delete run {run_id!r}"):
            transaction = self._client.pipeline(transaction=True)
            transaction.delete(self._key(run_id))
            transaction.zrem(self._index, run_id)
            transaction.execute()

    def expire(self, now: float) -> builtins.list[str]:
        """Delete runs expired before ``now``; see :meth:`Store.expire`.

        The ids are read first, then deleted in batches by a script that
        checks each one's expiry again.
        """
        with self._talking("expire runs"):
            candidates = _ids(
                self._client.zrangebyscore(self._index, "-inf", f"({now!r}")
            )
            expired: builtins.list[str] = []
            for start in range(0, len(candidates), _EXPIRE_BATCH):
                batch = candidates[start : start + _EXPIRE_BATCH]
                deleted = self._expire_script(
                    keys=[self._index, *map(self._key, batch)], args=[now, *batch]
                )
                expired.extend(_ids(deleted))
        if expired:
            logger.debug("Expired %d runs in %s", len(expired), self._name)

        return expired

    def list(self, status: str | None = None) -> builtins.list[RunSummary]:
        """Return summaries of the runs; see :meth:`Store.list`.

        No key is needed: secrets are not read.
        """
        _check_status_filter(status)
        with self._talking("list runs"):
            ids = _ids(self._client.zrange(self._index, 0, -1))
            reads = self._client.pipeline(transaction=False)
            for run_id in ids:
                reads.hmget(self._key(run_id), _SUMMARY_FIELDS)
            found = reads.execute()
        rows = []
        for run_id, values in zip(ids, found, strict=True):
            fields = dict(zip(_SUMMARY_FIELDS, _value_texts(values), strict=True))
            # A run deleted between the two reads has no fields left.
            if fields["flow"] is not None and status in (None, fields["status"]):
                rows.append(self._row(run_id, fields))
        rows.sort(key=lambda row: (row.updated_at, row.id))

        return [row.summary() for row in rows]

    def _key(self, run_id: str) -> str:
        return self._prefix + run_id

    def _row(self, run_id: str, fields: Mapping[str, str | None]) -> _Row:
        """The run ``run_id`` from its hash's fields (the secrets may be left out)."""
        try:
            expires_at = fields.get("expires_at")
            return _Row(
                id=run_id,
                flow=_required(fields, "flow"),
                status=_required(fields, "status"),
                version=int(_required(fields, "version")),
                document=_required(fields, "document"),
                secrets=fields.get("secrets"),
                expires_at=None if expires_at is None else float(expires_at),
                updated_at=float(_required(fields, "updated_at")),
            )
        except ValueError as exc:
            msg = (
                f"The key {self._key(run_id)!r} in the store {self._name!r} does "
                f"not hold a run as mfaflow writes them: {exc}."
            )
            raise StoreError(msg) from exc

    @contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Turn redis-py's errors in the block into StoreError."""
        try:
            yield
        except self._errors as exc:
            raise _failed(self._name, what, exc) from exc


def _check_prefix(prefix: str) -> None:
    if not isinstance(prefix, str) or len(prefix) < 2 or not prefix.endswith(":"):
        msg = (
            "A Redis key prefix must end with ':' after at least one character, "
            f"such as 'mfaflow:run:', not {prefix!r}."
        )
        raise ValueError(msg)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        msg = (
            "RedisStore needs the redis package, which is not installed; "
            "install it with pip install 'mfaflow[redis]'."
        )
        raise StoreError(msg) from exc
    return redis


def _connect(redis: Any, url: str, name: str) -> Redis:
    try:
        client: Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=_CONNECT_TIMEOUT,
            socket_timeout=_ANSWER_TIMEOUT,
        )
    except ValueError as exc:
        # redis-py's message names the schemes it accepts, never the URL.
        msg = f"The run store address {name!r} is not a Redis URL: {exc}"
        raise StoreError(msg.rstrip(".") + ".") from exc
    return client


def _client_name(client: Redis) -> str:
    """A URL naming where ``client`` connects, without its password."""
    options = client.connection_pool.connection_kwargs
    if "path" in options:
        return f"unix://{options['path']}?db={options.get('db', 0)}"
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    return f"redis://{host}:{port}/{options.get('db', 0)}"


def _score(expires_at: float | None) -> str:
    return "+inf" if expires_at is None else repr(expires_at)


def _fields(row: _Row) -> builtins.list[str]:
    """The hash's fields and values, flat, leaving out those that are None."""
    pairs: dict[str, str | int | float | None] = {
        "flow": row.flow,
        "status": row.status,
        "version": row.version,
        "document": row.document,
        "secrets": row.secrets,
        "expires_at": row.expires_at,
        "updated_at": row.updated_at,
    }
    flat: builtins.list[str] = []
    for name, value in pairs.items():
        if value is not None:
            flat += [name, repr(value) if isinstance(value, float) else str(value)]
    return flat


def _required(fields: Mapping[str, str | None], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise ValueError(f"it has no field {name!r}")
    return value


def _text(value: bytes | str) -> str:
    # redis-py gives bytes unless the client decodes answers itself.
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _ids(found: Any) -> builtins.list[str]:
    """The run ids of an answer of Redis, as text."""
    return [_text(run_id) for run_id in found]


def _hash_texts(found: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in found.items()}


def _value_texts(found: Sequence[bytes | str | None]) -> builtins.list[str | None]:
    return [None if value is None else _text(value) for value in found]
