"""The Redis and PostgreSQL stores: races, raw data, keys, tables, engines.

The store protocol itself is tested on every store in test_store.py; these
tests are about what only a store in a shared service has: several store
objects (as in several processes) on one prefix or table, the raw data a
service keeps, its key layout or table, and failures to reach it.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from _code_login import (
    ACCESS_TOKEN,
    CLIENT_ID,
    FLOW,
    FLOW_NAME,
    OTP,
    SECRETS,
    token_endpoint,
)
from _code_login import PASSWORD as LOGIN_PASSWORD
from _code_login import USERNAME as LOGIN_USERNAME
from _servers import closed_port
from _services import (
    KINDS,
    POSTGRES_DSN,
    REDIS_URL,
    open_store,
    raw_contents,
    service_place,
    unavailable,
)
from _stored_runs import PASSWORD, TOKEN, USERNAME, make_run

from mfaflow._crypto import generate_key
from mfaflow._engine import Client, Engine
from mfaflow._errors import ConcurrencyError, EncryptionKeyMissing, StoreError
from mfaflow._store_postgres import PostgresStore
from mfaflow._store_redis import RedisStore
from mfaflow._transport import WSGITransport

OTP_SECRET = "otp-never-stored-4417"
KEY = generate_key()
CLASSES = {"redis": RedisStore, "postgres": PostgresStore}


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The kind of service a test runs on: redis or postgres."""
    return str(request.param)


@pytest.fixture
def place(kind: str) -> Iterator[str]:
    """A key prefix or table of the test's own, deleted afterwards."""
    with service_place(kind) as made:
        yield made


Connect = Callable[..., Any]


@pytest.fixture
def connect(kind: str, place: str) -> Iterator[Connect]:
    """Opens stores on the test's prefix or table, as other processes would.

    Each call, ``connect(key=KEY)``, gives a new store object with its own
    connections; they are closed when the test ends.
    """
    opened: list[Any] = []

    def open_one(key: bytes | None = KEY) -> Any:
        store = open_store(kind, place, key)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        if kind == "redis":
            store.close()


# -- several stores on one service --------------------------------------------


def test_a_run_written_by_one_store_loads_from_another(connect: Connect) -> None:
    """A run created through one store object loads whole through a new one."""
    connect().create(make_run())

    assert connect().load("run-1") == make_run()


def test_two_stores_racing_on_one_version_have_one_winner_each_round(
    connect: Connect,
) -> None:
    """Two stores, in two threads, both save over each version: exactly one wins."""
    contenders = {name: connect() for name in ("left", "right")}
    contenders["left"].create(make_run(version=0, document={"log": []}))
    rounds = 20
    step = threading.Barrier(2)
    wins: list[tuple[int, str]] = []
    losses: list[str] = []

    def compete(name: str) -> None:
        store = contenders[name]
        for _ in range(rounds):
            step.wait()
            run = store.load("run-1")
            step.wait()
            log = [*run.document["log"], name]
            changed = attrs.evolve(
                run, version=run.version + 1, document={"log": log}, secrets={}
            )
            try:
                store.save(changed, expected_version=run.version)
            except ConcurrencyError:
                losses.append(name)
            else:
                wins.append((run.version + 1, name))

    threads = [threading.Thread(target=compete, args=(name,)) for name in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    final = connect().load("run-1")
    assert sorted(version for version, _ in wins) == list(range(1, rounds + 1))
    assert len(losses) == rounds
    assert (final.version, final.secrets) == (rounds, {})
    assert final.document["log"] == [name for _, name in sorted(wins)]


def test_a_save_moving_expiry_later_keeps_the_run_from_expire(connect: Connect) -> None:
    """expire keeps a run whose last save moved its expires_at past now."""
    store = connect()
    store.create(make_run("kept", expires_at=10.0))
    store.create(make_run("gone", expires_at=10.0))
    store.save(make_run("kept", version=2, expires_at=90.0), expected_version=1)

    assert store.expire(now=50.0) == ["gone"]
    assert [summary.id for summary in store.list()] == ["kept"]


# -- secrets at rest ----------------------------------------------------------


def test_the_service_never_holds_a_secret_in_plaintext(
    kind: str, place: str, connect: Connect
) -> None:
    """What Redis or PostgreSQL holds has the document but no byte of any secret."""
    store = connect()
    store.create(make_run())
    store.create(make_run("run-2", secrets={"otp": OTP_SECRET}))
    store.save(make_run(version=2, secrets={"otp": OTP_SECRET}), expected_version=1)

    raw = raw_contents(kind, place)

    assert USERNAME in raw
    assert "run-2" in raw
    for secret in (PASSWORD, TOKEN, OTP_SECRET):
        assert secret not in raw


def test_without_a_key_secrets_are_refused_and_nothing_is_written(
    kind: str, place: str, connect: Connect
) -> None:
    """A keyless store refuses runs with secrets, naming them, and writes nothing."""
    store = connect(key=None)
    plain = make_run("plain", secrets={})
    store.create(plain)

    with pytest.raises(EncryptionKeyMissing) as caught:
        store.create(make_run())
    with pytest.raises(EncryptionKeyMissing):
        store.save(attrs.evolve(plain, version=2, secrets={"otp": OTP_SECRET}), 1)

    name = CLASSES[kind].__name__
    assert str(caught.value).startswith(
        "Run 'run-1' holds secrets (password, tokens) but the store "
    )
    assert str(caught.value).endswith(
        f"has no key to encrypt them; pass {name} the key every process "
        "sharing the store uses."
    )
    assert PASSWORD not in str(caught.value)
    assert [summary.id for summary in store.list()] == ["plain"]
    assert store.load("plain") == plain
    assert OTP_SECRET not in raw_contents(kind, place)


def test_without_a_key_a_flow_with_secrets_is_refused_up_front(
    connect: Connect,
) -> None:
    """require_key refuses secret fields without a key, and accepts them with one."""
    connect().require_key("login", ["inputs.password"])

    with pytest.raises(EncryptionKeyMissing, match=r"keeps secrets \(inputs\.password"):
        connect(key=None).require_key("login", ["inputs.password"])


def test_sealed_secrets_need_the_key_they_were_written_with(connect: Connect) -> None:
    """Another key, or none, cannot load the secrets, but both can list the run."""
    connect().create(make_run())
    other = connect(key=generate_key())
    keyless = connect(key=None)

    with pytest.raises(StoreError, match="cannot be decrypted with this key"):
        other.load("run-1")
    with pytest.raises(EncryptionKeyMissing, match="opened without a key"):
        keyless.load("run-1")

    assert [summary.id for summary in other.list()] == ["run-1"]
    assert [summary.id for summary in keyless.list("waiting")] == ["run-1"]


def test_repr_shows_where_the_store_is_and_hides_the_key(
    kind: str, place: str, connect: Connect
) -> None:
    """The repr names the server, the prefix or table, and hides the key."""
    shown = repr(connect())

    assert KEY.decode() not in shown
    if kind == "redis":
        assert shown == f"RedisStore({REDIS_URL!r}, prefix={place!r}, key=<hidden>)"
    else:
        assert shown.startswith("PostgresStore('postgresql://")
        assert shown.endswith(f"table={place!r}, key=<hidden>)")


# -- unreachable services and missing libraries --------------------------------


@pytest.mark.parametrize(
    ("cls", "address", "shown"),
    [
        (
            RedisStore,
            "redis://:hunter2-pw@127.0.0.1:{port}/0",
            "redis://127.0.0.1:{port}/0",
        ),
        (
            PostgresStore,
            "postgresql://app:hunter2-pw@127.0.0.1:{port}/runs",
            "postgresql://127.0.0.1:{port}/runs",
        ),
        (
            PostgresStore,
            "host=127.0.0.1 port={port} password=hunter2-pw dbname=runs",
            "dbname=runs host=127.0.0.1 port={port}",
        ),
    ],
)
def test_an_unreachable_server_is_a_store_error_without_the_password(
    cls: type[Any], address: str, shown: str
) -> None:
    """A server refusing connections gives a one-sentence StoreError, no password."""
    port = closed_port()

    with pytest.raises(StoreError) as caught:
        cls(address.format(port=port), key=KEY)

    message = str(caught.value)
    assert message.startswith(f"The run store {shown.format(port=port)!r} failed to ")
    assert message.endswith("Connection refused.")
    assert "\n" not in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("cls", "module", "extra"),
    [
        (RedisStore, "redis", "redis"),
        (functools.partial(PostgresStore, POSTGRES_DSN), "psycopg", "postgres"),
    ],
)
def test_a_missing_client_library_names_the_extra_to_install(
    cls: Any, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its client library a store says which mfaflow extra to install."""
    monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(StoreError) as caught:
        cls()

    assert str(caught.value).endswith(
        f"is not installed; install it with pip install 'mfaflow[{extra}]'."
    )


@pytest.mark.parametrize(
    ("cls", "address", "message"),
    [
        (RedisStore, "http://:hunter2@127.0.0.1:6379/0", "is not a Redis URL"),
        (PostgresStore, "password=hunter2 nonsense", "neither a postgresql:// URL"),
    ],
)
def test_an_address_of_the_wrong_form_is_refused_without_its_password(
    cls: type[Any], address: str, message: str
) -> None:
    """An address of the wrong form is a StoreError that does not show its password."""
    with pytest.raises(StoreError, match=message) as caught:
        cls(address)

    assert "hunter2" not in str(caught.value)
    assert str(caught.value).endswith(".")


def test_importing_mfaflow_needs_neither_client_library() -> None:
    """import mfaflow, and its CLI, work where redis and psycopg are not installed."""
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "sys.modules['psycopg'] = None\n"
        "import mfaflow, mfaflow._cli\n"
        "print(mfaflow.__name__)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert (done.returncode, done.stdout) == (0, "mfaflow\n"), done.stderr


def test_on_ci_a_missing_service_fails_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The skip helper skips on a user's machine and fails when CI is set."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Redis is not reachable at"):
        unavailable("Redis", "redis://:pw@127.0.0.1:1/0", "Connection refused")

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set") as caught:
        unavailable("Redis", "redis://:pw@127.0.0.1:1/0", "Connection refused")
    assert ":pw@" not in str(caught.value)


# -- Redis: keys ----------------------------------------------------------------


@pytest.fixture
def redis_place() -> Iterator[str]:
    """A Redis key prefix of the test's own."""
    with service_place("redis") as prefix:
        yield prefix


def test_redis_keeps_a_hash_per_run_and_an_index_of_expiry(redis_place: str) -> None:
    """A run is a hash at prefix + id; the index scores every id by its expires_at."""
    import redis

    store = RedisStore(REDIS_URL, key=KEY, prefix=redis_place)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    index = redis_place[:-1]
    try:
        store.create(make_run("a"))
        store.create(make_run("b", expires_at=None, secrets={}))
        first = client.hgetall(f"{redis_place}a")
        second = client.hgetall(f"{redis_place}b")
        before = client.zrange(index, 0, -1, withscores=True)
        store.expire(now=2000.0)
        after = client.zrange(index, 0, -1, withscores=True)
        gone = client.exists(f"{redis_place}a")
    finally:
        client.close()
        store.close()

    assert set(first) == {
        "flow",
        "status",
        "version",
        "document",
        "secrets",
        "expires_at",
        "updated_at",
    }
    assert json.loads(first["document"]) == make_run().document
    assert (first["version"], first["expires_at"]) == ("1", "1000.0")
    assert set(second) == set(first) - {"secrets", "expires_at"}
    assert before == [("a", 1000.0), ("b", float("inf"))]
    assert (after, gone) == ([("b", float("inf"))], 0)


@pytest.mark.parametrize("prefix", ["", ":", "mfaflow:run", "runs/"])
def test_redis_refuses_a_prefix_not_ending_with_a_colon(prefix: str) -> None:
    """A prefix must end with ':', so that the index can never be a run's key."""
    with pytest.raises(ValueError, match=r"must end with ':'.* not "):
        RedisStore(REDIS_URL, prefix=prefix)


def test_redis_uses_a_client_it_is_given_and_leaves_it_open(redis_place: str) -> None:
    """A store given a client works through it, and closing the store keeps it open."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        store = RedisStore(client=client, key=KEY, prefix=redis_place)
        store.create(make_run())
        store.close()

        assert store.load("run-1") == make_run()
        assert client.ping()
        assert repr(store).startswith("RedisStore('redis://")
    finally:
        client.close()


def test_redis_says_so_when_a_key_does_not_hold_a_run(redis_place: str) -> None:
    """A hash under the prefix that mfaflow did not write gives a StoreError."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    store = RedisStore(REDIS_URL, key=KEY, prefix=redis_place)
    try:
        client.hset(f"{redis_place}odd", mapping={"flow": "x"})
        with pytest.raises(StoreError, match="does not hold a run as mfaflow writes"):
            store.load("odd")
    finally:
        client.close()
        store.close()


# -- PostgreSQL: the table --------------------------------------------------------


@pytest.fixture
def table() -> Iterator[str]:
    """A PostgreSQL table name of the test's own; the table is dropped afterwards."""
    with service_place("postgres") as name:
        yield name


def columns_of(table: str) -> dict[str, str]:
    """The table's columns and their types, read from the catalog."""
    import psycopg

    with psycopg.connect(POSTGRES_DSN) as connection:
        found = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = %s",
            (table,),
        ).fetchall()
    return dict(found)


def test_postgres_creates_its_table_once_and_reuses_it(table: str) -> None:
    """The first store creates the table; a second one on it sees the same runs."""
    PostgresStore(POSTGRES_DSN, key=KEY, table=table).create(make_run())

    again = PostgresStore(POSTGRES_DSN, key=KEY, table=table)

    assert again.load("run-1") == make_run()
    assert columns_of(table) == {
        "id": "text",
        "flow": "text",
        "status": "text",
        "version": "integer",
        "document": "jsonb",
        "secrets": "text",
        "expires_at": "double precision",
        "updated_at": "double precision",
    }


def test_postgres_quotes_the_table_name() -> None:
    """A table named by a reserved word, in mixed case, works: the name is quoted."""
    with service_place("postgres") as base:
        name = f"Select_{base}"
        try:
            store = PostgresStore(POSTGRES_DSN, key=KEY, table=name)
            store.create(make_run())

            assert store.load("run-1") == make_run()
            assert "secrets" in columns_of(name)
        finally:
            drop(name)


def drop(table: str) -> None:
    """Drop ``table`` if it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_DSN) as connection:
        connection.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table))
        )


@pytest.mark.parametrize(
    "name",
    ["runs; DROP TABLE users", 'runs"', "1runs", "", "a" * 53, "public.runs"],
)
def test_postgres_refuses_a_table_name_that_is_not_an_identifier(name: str) -> None:
    """A table name that is not a plain identifier is refused before connecting."""
    with pytest.raises(ValueError, match="A table name must be a letter or '_'"):
        PostgresStore("postgresql://127.0.0.1:1/never", table=name)


def test_postgres_refuses_a_table_that_holds_something_else(table: str) -> None:
    """A table of that name with other columns is refused, and left as it was."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_DSN) as connection:
        connection.execute(
            sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, payload text)").format(
                sql.Identifier(table)
            )
        )

    with pytest.raises(StoreError) as caught:
        PostgresStore(POSTGRES_DSN, table=table)

    assert f"The table {table!r} of the run store 'postgresql://" in str(caught.value)
    assert "is not a table of runs as mfaflow makes them" in str(caught.value)
    assert columns_of(table) == {"id": "text", "payload": "text"}


def test_postgres_refuses_a_nul_character_in_a_document(table: str) -> None:
    """jsonb cannot hold U+0000: such a document is a StoreError and nothing changes."""
    store = PostgresStore(POSTGRES_DSN, key=KEY, table=table)
    store.create(make_run())
    # XXX: jsonb refuses U+0000 in strings; the other stores keep it.
    bad = {"data": {"username": "bob\x00@example.com"}}

    with pytest.raises(StoreError, match="failed to create run 'run-2'"):
        store.create(make_run("run-2", document=bad))
    with pytest.raises(StoreError, match="failed to save run 'run-1'"):
        store.save(make_run(version=2, document=bad), expected_version=1)

    assert store.load("run-1") == make_run()
    assert [summary.id for summary in store.list()] == ["run-1"]


# -- the engine on a shared store ---------------------------------------------------


def engine_on(store: Any, flows: Path) -> Engine:
    """An engine of its own, as a new process would make, on ``store``."""
    return Engine(
        Client("https://tenant.example.test/", CLIENT_ID),
        transport=WSGITransport(token_endpoint),
        store=store,
        flow_paths=[flows],
    )


def test_a_run_started_by_one_engine_is_resumed_by_another(
    kind: str, place: str, connect: Connect, tmp_path: Path
) -> None:
    """A run waiting with a secret input is resumed by a fresh engine and store."""
    (tmp_path / f"{FLOW_NAME}.yaml").write_text(FLOW)
    first = engine_on(connect(), tmp_path)

    waiting = first.start(
        FLOW_NAME, {"username": LOGIN_USERNAME, "password": LOGIN_PASSWORD}
    )
    while_waiting = raw_contents(kind, place)
    second = engine_on(connect(), tmp_path)
    done = second.resume(waiting.run_id, {"otp": OTP})

    assert [request.name for request in waiting.waiting_for] == ["otp"]
    assert done.succeeded
    assert done.outputs == {"access_token": ACCESS_TOKEN, "user": LOGIN_USERNAME}
    assert waiting.run_id in while_waiting
    for raw in (while_waiting, raw_contents(kind, place)):
        for secret in SECRETS:
            assert secret not in raw
