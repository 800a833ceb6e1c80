"""Options the CLI's commands share, and what they build: client, store, engine."""

from __future__ import annotations

import functools
import os
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
import platformdirs
from attrs import frozen

from ._catalog import Catalog
from ._crypto import Sealer, load_or_create_key
from ._engine import Client, Engine, Hook
from ._errors import StoreError
from ._fields import NAME_RULES
from ._store import MemoryStore, SQLiteStore, Store
from ._store_postgres import PostgresStore
from ._store_redis import RedisStore
from ._transport import RequestsTransport, safe_url

__all__ = [
    "FLOWS_OPTION",
    "KEY_OPTION",
    "OUTPUT_OPTIONS",
    "STORE_OPTION",
    "Failure",
    "Setup",
    "flow_files",
    "flow_target",
    "open_store",
    "service_store",
    "setup_options",
    "store_path",
    "with_options",
]

_SUFFIXES = (".yaml", ".yml")
#: The URL schemes a --store value may start with, and the stores they name.
_SERVICES: dict[str, type[RedisStore] | type[PostgresStore]] = {
    "redis": RedisStore,
    "rediss": RedisStore,
    "postgresql": PostgresStore,
    "postgres": PostgresStore,
}


class Failure(click.ClickException):
    """A failure to report as ``error:`` lines on stderr, with exit code 1."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0])
        self.lines = lines

    def show(self, file: Any = None) -> None:
        for line in self.lines:
            click.echo(f"error: {line}", err=True)


def _check_issuer(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value.startswith(("https://", "http://")) and value.split("/")[2]:
        return value
    raise click.BadParameter(
        "Expected an http:// or https:// URL such as https://tenant.example.com/, "
        f"got {safe_url(value)!r}."
    )


def _parse_inputs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    # Nothing of a malformed argument is shown: it may be a secret value.
    pattern, rule = NAME_RULES["name"]
    parsed: dict[str, str] = {}
    for item in values:
        name, equals, value = item.partition("=")
        if not equals:
            raise click.BadParameter(
                "Expected NAME=VALUE, such as otp=123456; got an argument without '='."
            )
        if not pattern.fullmatch(name):
            raise click.BadParameter(f"The name before '=' must be {rule}.")
        if name in parsed:
            raise click.BadParameter(f"The input {name!r} is given twice.")
        parsed[name] = value
    return parsed


FLOWS_OPTION = click.option(
    "--flows",
    "flow_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, path_type=Path),
    help="A folder of your own flows, searched before the shipped ones; repeatable.",
)
STORE_OPTION = click.option(
    "--store",
    envvar="MFAFLOW_STORE",
    metavar="PATH|URL",
    help="The SQLite file runs are kept in, a Redis or PostgreSQL server "
    "(redis://, rediss://, postgresql:// or postgres:// URL), or 'memory' to "
    "keep them in this process only (env MFAFLOW_STORE; default: runs.sqlite "
    "in the user data folder).",
)
KEY_OPTION = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file of the key that encrypts secrets in the store, created if "
    "missing (default: store.key in the user config folder; the environment "
    "variable MFAFLOW_STORE_KEY may hold a key instead).",
)
_SETUP_OPTIONS = (
    click.option(
        "--issuer",
        envvar="MFAFLOW_ISSUER",
        required=True,
        metavar="URL",
        callback=_check_issuer,
        help="The authorization server's base URL (env MFAFLOW_ISSUER).",
    ),
    click.option(
        "--client-id",
        envvar="MFAFLOW_CLIENT_ID",
        required=True,
        help="The application's client id (env MFAFLOW_CLIENT_ID).",
    ),
    click.option(
        "--client-secret",
        envvar="MFAFLOW_CLIENT_SECRET",
        help="The application's client secret (env MFAFLOW_CLIENT_SECRET).",
    ),
    click.option(
        "--redirect-uri", metavar="URL", help="The application's callback URL."
    ),
    click.option("--audience", help="The API the tokens are for."),
    click.option(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A PEM file of certificate authorities to trust.",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="How long to wait for the server to accept a connection, and to "
        "answer; one request takes at most twice this in all.",
    ),
    STORE_OPTION,
    KEY_OPTION,
    FLOWS_OPTION,
)
#: The options of commands that drive a run and print its result.
OUTPUT_OPTIONS = (
    click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_parse_inputs,
        help="A value for an input; repeatable.",
    ),
    click.option(
        "--no-input",
        is_flag=True,
        help="Never prompt; exit 3 when the run waits for input.",
    ),
    click.option(
        "--show-secrets",
        is_flag=True,
        help="Print secret outputs, such as tokens, and secret links as text.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    click.option(
        "-q", "--quiet", is_flag=True, help="Do not print each state entered."
    ),
)


def with_options(options: Iterable[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """A decorator adding ``options`` in the order given."""
    chosen = tuple(options)

    def apply(command: Any) -> Any:
        for option in reversed(chosen):
            command = option(command)
        return command

    return apply


@frozen
class Setup:
    """How to reach the authorization server, and where runs are kept."""

    client: Client
    ca_bundle: Path | None
    timeout: float | None
    store: str | None
    key_file: Path | None
    flow_dirs: tuple[Path, ...]

    def open_store(self) -> Store:
        return open_store(self.store, self.key_file)

    def engine(
        self,
        ctx: click.Context,
        store: Store,
        hooks: Iterable[Hook],
        *,
        before: Iterable[Path] = (),
        after: Iterable[Path] = (),
    ) -> Engine:
        """An engine for this client, closing its connections when ``ctx`` ends.

        Flows are searched in ``before``, the ``--flows`` folders, ``after``
        and the shipped flows, in that order.
        """
        timeouts: dict[str, Any] = {}
        if self.timeout is not None:
            timeouts = {"connect_timeout": self.timeout, "read_timeout": self.timeout}
        transport = RequestsTransport(ca_bundle=self.ca_bundle, **timeouts)
        return Engine(
            self.client,
            transport=ctx.with_resource(transport),
            store=store,
            hooks=tuple(hooks),
            flow_paths=[*before, *self.flow_dirs, *after],
        )

    def resume_command(self, run_id: str) -> str:
        """The command that resumes the run ``run_id`` kept by this setup."""
        shown = self._shown_store()
        store = f" --store {shlex.quote(shown)}" if shown else ""
        return f"mfaflow resume{store} {run_id}"

    def _shown_store(self) -> str | None:
        """``--store`` as a command may show it: never with a password."""
        if not self.store:
            return None
        shown = _without_password(self.store)
        if shown != self.store and self.store == os.environ.get("MFAFLOW_STORE"):
            # The password cannot be shown, and the variable gives it again.
            return None
        return shown


def setup_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the client, store and flow options, handed to ``command`` as ``setup``."""

    @functools.wraps(command)
    def build(
        *args: Any,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
        audience: str | None,
        ca_bundle: Path | None,
        timeout: float | None,
        store: str | None,
        key_file: Path | None,
        flow_dirs: tuple[Path, ...],
        **rest: Any,
    ) -> Any:
        client = Client(
            issuer, client_id, client_secret or None, redirect_uri, audience
        )
        setup = Setup(client, ca_bundle, timeout, store, key_file, flow_dirs)
        return command(*args, setup=setup, **rest)

    decorated: Callable[..., Any] = with_options(_SETUP_OPTIONS)(build)
    return decorated


def open_store(spec: str | None, key_file: Path | None) -> Store:
    """The store ``--store`` names, keyed by ``--key-file`` or the environment."""
    if spec == "memory":
        return MemoryStore()
    key = _store_key(key_file)
    return service_store(spec, key) or SQLiteStore(store_path(spec), key=key)


def service_store(spec: str | None, key: bytes | None) -> Store | None:
    """The Redis or PostgreSQL store a ``--store`` URL names, else ``None``.

    Without ``key`` the store lists and expires runs but cannot read or
    write their secrets.

    Raises:
        StoreError: the server cannot be reached, or its client library is
            not installed.
    """
    kind = _service(spec)
    if kind is None or spec is None:
        return None
    return kind(spec, key=key)


def store_path(spec: str | None) -> Path:
    """The SQLite file ``--store`` names, or the default one.

    Raises:
        click.BadParameter: ``spec`` is the URL of a Redis or PostgreSQL
            store, which has no file.
    """
    if _service(spec) is not None:
        raise click.BadParameter(
            f"{_without_password(spec or '')!r} names a Redis or PostgreSQL "
            "store, and this command reads SQLite files only.",
            param_hint="'--store'",
        )
    if spec:
        return Path(spec)
    return platformdirs.user_data_path("mfaflow") / "runs.sqlite"


def _service(spec: str | None) -> type[RedisStore] | type[PostgresStore] | None:
    scheme, separator, _ = (spec or "").partition("://")
    return _SERVICES.get(scheme.lower()) if separator else None


def _without_password(spec: str) -> str:
    """``spec`` with the password of a store's URL replaced by ``***``.

    A password goes in the user information or, for libpq and redis-py,
    in a ``password`` query parameter; the rest is kept, so that the
    command shown still names the same store.
    """
    if _service(spec) is None:
        return spec
    parts = urlsplit(spec)
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    netloc = f"{user}{':***' if colon else ''}{at}{host}"
    query = parts.query
    fields = parse_qsl(query, keep_blank_values=True)
    if any("password" in name.lower() for name, _ in fields):
        hidden = [
            (name, "***" if "password" in name.lower() else value)
            for name, value in fields
        ]
        query = urlencode(hidden, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _store_key(key_file: Path | None) -> bytes:
    if key_file is not None:
        return load_or_create_key(key_file)
    given = os.environ.get("MFAFLOW_STORE_KEY")
    if given:
        try:
            Sealer(given)
        except StoreError:
            raise StoreError(
                "MFAFLOW_STORE_KEY does not hold a Fernet key: expected 32 bytes in "
                "url-safe base64 (44 characters)."
            ) from None
        return given.encode()
    return load_or_create_key(platformdirs.user_config_path("mfaflow") / "store.key")


def flow_files(path: Path) -> list[Path]:
    """The flow files a path given on the command line stands for."""
    if path.is_dir():
        return sorted(file for file in path.iterdir() if file.suffix in _SUFFIXES)
    return [path]


def flow_target(flow: str, catalog: Catalog) -> tuple[Path, list[Path]]:
    """The file of ``flow`` (a name or a path), and the folders its sub-flows may be in.

    Raises:
        click.BadParameter: ``flow`` looks like a path and no file is there.
        DefinitionError: no flow has that name.
    """
    if "/" in flow or "\\" in flow or flow.endswith(_SUFFIXES):
        path = Path(flow)
        if not path.is_file():
            raise click.BadParameter(
                f"No flow file exists at {flow!r}.", param_hint="FLOW"
            )
        return path.resolve(), [path.resolve().parent]
    return catalog.find(flow), []
