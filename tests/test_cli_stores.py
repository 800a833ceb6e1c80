"""``mfaflow --store`` with a Redis or PostgreSQL URL.

A run is started by one command and resumed by another, both keeping it in
the service the URL names (the stores' default key prefix or table, which
the CLI uses), against a token endpoint served on loopback. Key files live
in temporary folders.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from _code_login import CLIENT_ID, FLOW, FLOW_NAME, OTP, PASSWORD, SECRETS, USERNAME
from _code_login import token_endpoint as tenant
from _diagrams import parse
from _isolation import isolate
from _servers import closed_port, serve_wsgi
from _services import KINDS, POSTGRES_DSN, REDIS_URL, raw_contents, require
from click.testing import CliRunner, Result

from mfaflow._cli import cli
from mfaflow._cli_options import Setup
from mfaflow._crypto import load_or_create_key
from mfaflow._engine import Client
from mfaflow._store_postgres import PostgresStore
from mfaflow._store_redis import RedisStore

ADDRESSES = {"redis": REDIS_URL, "postgres": POSTGRES_DSN}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config and data folders under tmp_path; no MFAFLOW_* variable from outside."""
    isolate(tmp_path, monkeypatch)


@pytest.fixture
def issuer() -> Iterator[str]:
    """The token endpoint, served on loopback."""
    with serve_wsgi(tenant) as url:
        yield url


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    """The login flow, in a file."""
    path = tmp_path / f"{FLOW_NAME}.yaml"
    path.write_text(FLOW)
    return path


def invoke(args: list[str]) -> Result:
    """Run ``mfaflow`` with ``args`` in this process."""
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def client_args(issuer: str, store: str, key_file: Path) -> list[str]:
    """The options naming the server, the client and the store."""
    return [
        "--issuer",
        issuer,
        "--client-id",
        CLIENT_ID,
        "--store",
        store,
        "--key-file",
        str(key_file),
    ]


def forget(kind: str, run_id: str, key_file: Path) -> None:
    """Delete the run from the store the CLI used: its default prefix or table."""
    key = load_or_create_key(key_file)
    if kind == "redis":
        store = RedisStore(REDIS_URL, key=key)
        store.delete(run_id)
        store.close()
    else:
        PostgresStore(POSTGRES_DSN, key=key).delete(run_id)


def start(
    issuer: str, flow_file: Path, store: str, key_file: Path
) -> tuple[Result, str]:
    """Start the login in ``store`` under --no-input: the result and the run's id."""
    started = invoke(
        [
            "run",
            str(flow_file),
            *client_args(issuer, store, key_file),
            "--no-input",
            "--input",
            f"username={USERNAME}",
            "--input",
            f"password={PASSWORD}",
        ]
    )
    found = re.search(r"run ([0-9a-f]{32}) waits", started.stdout)
    assert found, started.output
    return started, found.group(1)


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_kept_in_a_service_is_resumed_by_another_command(
    kind: str, issuer: str, flow_file: Path, tmp_path: Path
) -> None:
    """run --store URL stops for the code; the resume command it prints finishes it."""
    require(kind)
    address, key_file = ADDRESSES[kind], tmp_path / "store.key"
    started, run_id = start(issuer, flow_file, address, key_file)
    command = started.stdout.split("resume with: ", 1)[1].split("\n", 1)[0]
    try:
        held = raw_contents(kind, "mfaflow:run:" if kind == "redis" else "mfaflow_runs")
        given = shlex.split(command.replace("otp=VALUE", f"otp={OTP}"))
        resumed = invoke(given[1:])
    finally:
        forget(kind, run_id, key_file)

    assert started.exit_code == 3
    assert command == (
        f"mfaflow resume --store {address} --key-file {key_file} {run_id} "
        "--input otp=VALUE"
    )
    assert run_id in held
    assert resumed.exit_code == 0, resumed.output
    assert "Signed in." in resumed.output
    for secret in SECRETS:
        assert secret not in held
        assert secret not in started.output + resumed.output


@contextmanager
def kept_in(
    kind: str, issuer: str, flow_file: Path, tmp_path: Path
) -> Iterator[tuple[Result, str, str, Path]]:
    """A login waiting in the service of ``kind``: started, its id, address, key.

    The run is deleted from the service when the block ends.
    """
    require(kind)
    address, key_file = ADDRESSES[kind], tmp_path / "store.key"
    started, run_id = start(issuer, flow_file, address, key_file)
    try:
        yield started, run_id, address, key_file
    finally:
        forget(kind, run_id, key_file)


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_kept_in_a_service_is_drawn(
    kind: str, issuer: str, flow_file: Path, tmp_path: Path
) -> None:
    """diagram --run ID --store URL marks where a run kept in the service stands."""
    with kept_in(kind, issuer, flow_file, tmp_path) as (_, run_id, address, key_file):
        drawn = invoke(
            [
                "diagram",
                "--run",
                run_id,
                "--store",
                address,
                "--key-file",
                str(key_file),
            ]
        )

    assert drawn.exit_code == 0, drawn.output
    diagram = parse(drawn.stdout)
    assert diagram.named_class("visited") == {"request_token"}
    assert diagram.named_class("current") == {"ask_code"}


OUTER_FLOW = f"""\
mfaflow: 1
name: outer-login
inputs:
  username: {{}}
  password: {{secret: true}}
initial: sign_in
states:
  sign_in:
    flow: {FLOW_NAME}
    with: {{username: '${{inputs.username}}', password: '${{inputs.password}}'}}
    on: {{success: signed_in}}
  signed_in: {{final: true}}
"""


def with_password(dsn: str) -> str:
    """``dsn`` with a password: its own, or one a trusting server ignores."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn
    netloc = f"{parts.username or 'postgres'}:unused-pw@{parts.hostname}"
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=netloc))


def test_the_command_for_a_sub_flow_says_what_to_do_about_a_hidden_password(
    issuer: str, flow_file: Path, tmp_path: Path
) -> None:
    """A store's password, shown as *** in the command given, is to be put back."""
    require("postgres")
    outer = flow_file.parent / "outer-login.yaml"
    outer.write_text(OUTER_FLOW)
    address, key_file = with_password(POSTGRES_DSN), tmp_path / "store.key"
    _, run_id = start(issuer, outer, address, key_file)
    try:
        given = ["--run", run_id, "--store", address, "--key-file", str(key_file)]
        drawn = invoke(["diagram", *given])
    finally:
        forget("postgres", run_id, key_file)

    assert drawn.exit_code == 0, drawn.output
    assert ":***@" in drawn.stderr
    assert drawn.stderr.endswith(
        " (with the store's password in place of ***, or with --store left out "
        "and the store's URL in MFAFLOW_STORE)\n"
    )
    password = urlsplit(address).password
    assert password
    assert password not in drawn.output


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("redis://:hunter2-pw@127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0"),
        (
            "postgresql://app:hunter2-pw@127.0.0.1:{port}/runs",
            "postgresql://127.0.0.1:{port}/runs",
        ),
    ],
)
def test_an_unreachable_store_server_is_one_error_line(
    address: str, shown: str, flow_file: Path, tmp_path: Path
) -> None:
    """A --store server that refuses connections: exit 1, one line, no password."""
    port = closed_port()

    result = invoke(
        [
            "run",
            str(flow_file),
            *client_args(
                "https://tenant.example.test/",
                address.format(port=port),
                tmp_path / "store.key",
            ),
            "--no-input",
        ]
    )

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: The run store {shown.format(port=port)!r} failed to "
    )
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("store", "shown"),
    [
        (
            "redis://:hunter2@cache.internal:6379/2",
            "'redis://:***@cache.internal:6379/2'",
        ),
        (
            "postgresql://app:hunter2@db.internal/runs?sslmode=require",
            "'postgresql://app:***@db.internal/runs?sslmode=require'",
        ),
        (
            "postgres://app@db.internal/runs?password=hunter2",
            "'postgres://app@db.internal/runs?password=***'",
        ),
        ("/var/lib/app/runs.sqlite", "/var/lib/app/runs.sqlite"),
    ],
)
def test_the_resume_command_shown_never_holds_a_password(
    store: str, shown: str
) -> None:
    """The resume command printed for a run masks the password of the store's URL."""
    client = Client("https://tenant.example.test/", CLIENT_ID)
    setup = Setup(client, None, None, store, None, ())

    assert setup.resume_command("abc123") == f"mfaflow resume --store {shown} abc123"


def test_a_store_url_with_a_password_from_the_environment_is_not_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A URL with a password from MFAFLOW_STORE is left out of the resume command."""
    store = "redis://:hunter2@cache.internal:6379/2"
    monkeypatch.setenv("MFAFLOW_STORE", store)
    client = Client("https://tenant.example.test/", CLIENT_ID)
    setup = Setup(client, None, None, store, None, ())

    assert setup.resume_command("abc123") == "mfaflow resume abc123"


@pytest.mark.parametrize("kind", KINDS)
def test_runs_lists_the_runs_kept_in_a_service(
    kind: str, issuer: str, flow_file: Path, tmp_path: Path
) -> None:
    """runs --store URL lists a waiting run kept in Redis or PostgreSQL, no secret."""
    with kept_in(kind, issuer, flow_file, tmp_path) as (started, run_id, address, _):
        listed = invoke(["runs", "--store", address])
        purged = invoke(["runs", "--store", address, "--purge-expired"])

    assert started.exit_code == 3
    assert listed.exit_code == 0, listed.output
    (line,) = [line for line in listed.stdout.splitlines() if run_id in line]
    assert f"  {FLOW_NAME}  waiting  " in line
    assert line.endswith("needs otp")
    assert purged.exit_code == 0, purged.output
    assert run_id in purged.stdout, "a run that has not expired is kept"
    for secret in SECRETS:
        assert secret not in listed.output + purged.output


def test_runs_on_an_unreachable_store_server_is_one_error_line() -> None:
    """A Redis URL nobody answers at is an error line without the password."""
    result = invoke(
        ["runs", "--store", f"redis://:hunter2@127.0.0.1:{closed_port()}/0"]
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.splitlines()) == 1
    assert "hunter2" not in result.output
