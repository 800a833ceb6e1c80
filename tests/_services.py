"""Redis and PostgreSQL for tests: where they are, and stores on them that clean up.

The addresses come from ``MFAFLOW_TEST_REDIS`` and ``MFAFLOW_TEST_POSTGRES``.
Where a service cannot be reached, a test that needs it is skipped with the
reason on a user's machine, and fails on CI (``CI`` set), where every
service must run.

Each store gets a key prefix or a table of its own, named with a uuid, and
everything under it is deleted when its ``with`` block ends.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

from mfaflow._store_postgres import PostgresStore
from mfaflow._store_redis import RedisStore
from mfaflow._transport import safe_url

__all__ = [
    "KINDS",
    "POSTGRES_DSN",
    "REDIS_URL",
    "open_store",
    "raw_contents",
    "require",
    "service_place",
    "service_store",
    "unavailable",
]

REDIS_URL = os.environ.get("MFAFLOW_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_DSN = os.environ.get(
    "MFAFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
#: The stores that live in a service.
KINDS = ("redis", "postgres")


def unavailable(service: str, address: str, problem: object) -> NoReturn:
    """Skip the calling test because ``service`` is absent; fail it on CI.

    On CI the services are part of the machine, so a missing one is a
    broken setup, not a reason to skip.
    """
    reason = f"{service} is not reachable at {safe_url(address)}: {problem}"
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (CI is set: tests that need it must run).", pytrace=False
        )
    pytest.skip(reason)


@functools.cache
def _redis_problem() -> str | None:
    """Why Redis cannot be used, or None; asked once per session."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None; asked once per session."""
    try:
        import psycopg
    except ImportError:
        return "the psycopg package is not installed"
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        return str(exc).splitlines()[0]
    return None


def require(kind: str) -> None:
    """Return if the service of ``kind`` can be used; skip or fail otherwise."""
    if kind == "redis":
        problem, service, address = _redis_problem(), "Redis", REDIS_URL
    else:
        problem, service, address = _postgres_problem(), "PostgreSQL", POSTGRES_DSN
    if problem is not None:
        unavailable(service, address, problem)


@contextmanager
def service_place(kind: str) -> Iterator[str]:
    """A fresh Redis key prefix or PostgreSQL table, emptied or dropped afterwards."""
    require(kind)
    if kind == "redis":
        prefix = f"mfaflow-test:{uuid.uuid4().hex}:"
        try:
            yield prefix
        finally:
            _delete_redis_keys(prefix)
    else:
        table = f"runs_{uuid.uuid4().hex}"
        try:
            yield table
        finally:
            _drop_table(table)


def open_store(kind: str, place: str, key: bytes | None = None) -> Any:
    """A new store object on the prefix or table ``place``, with its own connections."""
    if kind == "redis":
        return RedisStore(REDIS_URL, key=key, prefix=place)
    return PostgresStore(POSTGRES_DSN, key=key, table=place)


@contextmanager
def service_store(kind: str, key: bytes | None = None) -> Iterator[Any]:
    """A store of ``kind`` in a place of its own, cleaned up afterwards."""
    with service_place(kind) as place:
        store = open_store(kind, place, key)
        try:
            yield store
        finally:
            if kind == "redis":
                store.close()


def raw_contents(kind: str, place: str) -> str:
    """Everything the service holds for the store at ``place``, as text.

    Redis: every key under the prefix and the index, with what it holds.
    PostgreSQL: every row, the document as text.
    """
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            return repr(
                [_redis_value(client, name) for name in _redis_keys(client, place)]
            )
        finally:
            client.close()
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        "SELECT id, flow, status, version, document::text, secrets, expires_at,"
        " updated_at FROM {}"
    ).format(sql.Identifier(place))
    with psycopg.connect(POSTGRES_DSN) as connection:
        return repr(connection.execute(query).fetchall())


def _redis_keys(client: Any, prefix: str) -> list[bytes]:
    found = list(client.scan_iter(match=prefix + "*"))
    index = prefix[:-1].encode()
    return [*found, index] if client.exists(index) else found


def _redis_value(client: Any, name: bytes) -> tuple[bytes, Any]:
    kind = client.type(name)
    if kind == b"hash":
        return name, client.hgetall(name)
    if kind == b"zset":
        return name, client.zrange(name, 0, -1, withscores=True)
    return name, client.get(name)


def _delete_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = _redis_keys(client, prefix)
        if names:
            client.delete(*names)
    finally:
        client.close()


def _drop_table(table: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_DSN) as connection:
        connection.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table))
        )
