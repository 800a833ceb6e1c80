"""Options the CLI's commands share, and what they build: client, store, engine."""

from __future__ import annotations

import functools
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
import platformdirs
from attrs import field, frozen
from click.core import ParameterSource

from ._catalog import Catalog
from ._cli_links import terminal_text
from ._crypto import Sealer, load_or_create_key
from ._engine import CLIENT_AUTH_METHODS, Client, Engine, Hook, check_issuer
from ._errors import EncryptionKeyMissing, StoreError
from ._fields import NAME_RULES
from ._store import MemoryStore, SQLiteStore, Store
from ._store_postgres import PostgresStore
from ._store_redis import RedisStore
from ._transport import RequestsTransport, check_ca_bundle, check_timeout, safe_url

__all__ = [
    "FLOWS_OPTION",
    "KEY_OPTION",
    "STORE_OPTION",
    "Failure",
    "Output",
    "Setup",
    "flow_files",
    "flow_target",
    "key_path",
    "open_store",
    "output_options",
    "resume_options",
    "service_kind",
    "service_store",
    "setup_options",
    "shown_store",
    "store_path",
    "stored_document",
    "stored_runs",
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
            click.echo(f"error: {terminal_text(line)}", err=True)


def _check_issuer(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    if value is None:
        return value
    try:
        check_issuer(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if value.startswith(("https://", "http://")) and value.split("/")[2]:
        return value
    raise click.BadParameter(
        "Expected an http:// or https:// URL such as https://tenant.example.com/, "
        f"got {safe_url(value)!r}."
    )


def _check_timeout(
    ctx: click.Context, param: click.Parameter, value: float | None
) -> float | None:
    if value is not None:
        try:
            check_timeout(value, "The timeout")
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _check_bundle(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    if value is not None:
        try:
            check_ca_bundle(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


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


def _client_options(*, required: bool) -> tuple[Callable[[Any], Any], ...]:
    """--issuer and --client-id: needed to start a run; a run records both."""
    recorded = "" if required else "; default: the one the run recorded"
    return (
        click.option(
            "--issuer",
            envvar="MFAFLOW_ISSUER",
            required=required,
            metavar="URL",
            callback=_check_issuer,
            help=f"The authorization server's base URL (env MFAFLOW_ISSUER{recorded}).",
        ),
        click.option(
            "--client-id",
            envvar="MFAFLOW_CLIENT_ID",
            required=required,
            help=f"The application's client id (env MFAFLOW_CLIENT_ID{recorded}).",
        ),
    )


_SETUP_OPTIONS = (
    click.option(
        "--client-secret",
        envvar="MFAFLOW_CLIENT_SECRET",
        help="The application's client secret (env MFAFLOW_CLIENT_SECRET).",
    ),
    click.option(
        "--client-auth",
        envvar="MFAFLOW_CLIENT_AUTH",
        type=click.Choice(CLIENT_AUTH_METHODS),
        help="How a client with a secret authenticates: 'post' puts it in the "
        "body, 'basic' in an Authorization: Basic header (env MFAFLOW_CLIENT_AUTH; "
        "default: the one the run recorded, else post).",
    ),
    click.option(
        "--redirect-uri", metavar="URL", help="The application's callback URL."
    ),
    click.option("--audience", help="The API the tokens are for."),
    click.option(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        callback=_check_bundle,
        help="A PEM file of certificate authorities to trust.",
    ),
    click.option(
        "--timeout",
        type=float,
        callback=_check_timeout,
        metavar="SECONDS",
        help="How long to wait for the server to accept a connection, and to "
        "answer; one request takes at most twice this in all.",
    ),
    STORE_OPTION,
    KEY_OPTION,
    FLOWS_OPTION,
)
#: The options of commands that drive a run and print its result.
_OUTPUT_OPTIONS = (
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
class Output:
    """How a command that drives a run talks: prompts, progress and result."""

    no_input: bool
    show_secrets: bool
    as_json: bool
    quiet: bool


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--input`` (as ``inputs``) and the options handed on as ``output``."""

    @functools.wraps(command)
    def build(
        *args: Any,
        no_input: bool,
        show_secrets: bool,
        as_json: bool,
        quiet: bool,
        **rest: Any,
    ) -> Any:
        output = Output(no_input, show_secrets, as_json, quiet)
        return command(*args, output=output, **rest)

    decorated: Callable[..., Any] = with_options(_OUTPUT_OPTIONS)(build)
    return decorated


@frozen
class Setup:
    """How to reach the authorization server, and where runs are kept.

    ``client`` is ``None`` when a command may take it from the stored run
    instead (:meth:`client_for`). ``secret_given`` says that the client
    secret came from ``--client-secret`` rather than the environment, so
    that a command shown for later cannot bring it again.
    """

    client: Client | None
    ca_bundle: Path | None
    timeout: float | None
    store: str | None
    key_file: Path | None
    flow_dirs: tuple[Path, ...]
    secret_given: bool = False
    #: The client's options as given (a secret among them): not in repr.
    given: Mapping[str, str | None] = field(factory=dict, repr=False)

    def open_store(self, *, create_key: bool = True) -> Store:
        return open_store(self.store, self.key_file, create_key=create_key)

    def client_for(self, document: Mapping[str, Any]) -> Client:
        """The client to resume the run of ``document`` for.

        What the command line (or the environment) gives wins; the rest
        comes from what the run recorded. The secret is never recorded.

        Raises:
            Failure: neither names an issuer and a client id.
        """
        if self.client is not None:
            return self.client
        recorded = document.get("client") or {}
        values = {
            name: self.given.get(name) or recorded.get(name)
            for name in (
                "issuer",
                "client_id",
                "redirect_uri",
                "audience",
                "client_auth",
            )
        }
        if not values["issuer"] or not values["client_id"]:
            raise Failure(
                [
                    f"The run {document.get('id')} does not record its issuer and "
                    "client id; give --issuer and --client-id."
                ]
            )
        secret = self.given.get("client_secret")
        return _client(values["issuer"], values["client_id"], values, secret)

    def engine(
        self,
        ctx: click.Context,
        store: Store,
        hooks: Iterable[Hook],
        *,
        client: Client | None = None,
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
        chosen = client or self.client
        assert chosen is not None  # a command without one calls client_for first
        return Engine(
            chosen,
            transport=ctx.with_resource(transport),
            store=store,
            hooks=tuple(hooks),
            flow_paths=[*before, *self.flow_dirs, *after],
        )

    def resume_command(self, run_id: str) -> str:
        """The command that resumes the run ``run_id`` kept by this setup.

        It gives again every option the run needs that the environment
        does not: the store, the key file, the CA bundle, the timeout and
        the folders of flows, files by their full paths. The issuer, the
        client id and how the client authenticates are recorded with the
        run; the client secret cannot be shown (see :meth:`resume_note`).
        """
        words = ["mfaflow", "resume"]
        shown = shown_store(self.store)
        if shown:
            words += ["--store", shown]
        if self.key_file is not None:
            words += ["--key-file", os.path.abspath(self.key_file)]
        if self.ca_bundle is not None:
            words += ["--ca-bundle", os.path.abspath(self.ca_bundle)]
        if self.timeout is not None:
            words += ["--timeout", f"{self.timeout:g}"]
        for folder in self.flow_dirs:
            words += ["--flows", os.path.abspath(folder)]
        return shlex.join([*words, run_id])

    def resume_note(self) -> str | None:
        """What the resume command cannot say: give the client secret again."""
        if not self.secret_given:
            return None
        return (
            "Give the client secret again, with --client-secret or "
            "MFAFLOW_CLIENT_SECRET."
        )


def setup_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the client, store and flow options, handed to ``command`` as ``setup``."""
    return _with_setup(command, client_required=True)


def resume_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Like :func:`setup_options`, with the issuer and client id the run's own.

    ``setup.client`` is ``None`` unless both are given; the command then
    gets the client from :meth:`Setup.client_for`.
    """
    return _with_setup(command, client_required=False)


def _with_setup(
    command: Callable[..., Any], *, client_required: bool
) -> Callable[..., Any]:
    @functools.wraps(command)
    def build(
        *args: Any,
        issuer: str | None,
        client_id: str | None,
        client_secret: str | None,
        client_auth: str | None,
        redirect_uri: str | None,
        audience: str | None,
        ca_bundle: Path | None,
        timeout: float | None,
        store: str | None,
        key_file: Path | None,
        flow_dirs: tuple[Path, ...],
        **rest: Any,
    ) -> Any:
        given = {
            "issuer": issuer,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "audience": audience,
            "client_auth": client_auth,
        }
        client = None
        if issuer and client_id:
            client = _client(issuer, client_id, given, client_secret)
        source = click.get_current_context().get_parameter_source("client_secret")
        setup = Setup(
            client,
            ca_bundle,
            timeout,
            store,
            key_file,
            flow_dirs,
            secret_given=bool(client_secret) and source is ParameterSource.COMMANDLINE,
            given=given,
        )
        return command(*args, setup=setup, **rest)

    options = (*_client_options(required=client_required), *_SETUP_OPTIONS)
    decorated: Callable[..., Any] = with_options(options)(build)
    return decorated


def _client(
    issuer: str, client_id: str, values: Mapping[str, Any], secret: str | None
) -> Client:
    """The client at ``issuer`` that the options or a run's record describe."""
    return Client(
        issuer,
        client_id,
        secret or None,
        values.get("redirect_uri"),
        values.get("audience"),
        values.get("client_auth") or "post",
    )


def open_store(
    spec: str | None, key_file: Path | None, *, create_key: bool = True
) -> Store:
    """The store ``--store`` names, keyed by ``--key-file`` or the environment.

    Without ``create_key`` a key file that does not exist is not made: the
    store is opened without a key, and can load runs that hold no secret.
    """
    if spec == "memory":
        return MemoryStore()
    key = _store_key(key_file, create=create_key)
    return service_store(spec, key) or SQLiteStore(store_path(spec), key=key)


def stored_runs(spec: str | None, key_file: Path | None) -> Store:
    """The store that ``--store`` names, to read runs from; nothing is created.

    A key file that does not exist is not made either: the store is opened
    without a key (see :func:`stored_document`).

    Raises:
        Failure: the SQLite file does not exist.
    """
    if spec != "memory" and service_kind(spec) is None:
        path = store_path(spec)
        if not path.exists():
            raise Failure([f"No runs are stored in {path}."])
    return open_store(spec, key_file, create_key=False)


def stored_document(store: Store, key_file: Path | None, run_id: str) -> dict[str, Any]:
    """The document of the run ``run_id``, its secrets opened as a check.

    Raises:
        Failure: the run holds secrets and the key file does not exist.
    """
    try:
        return store.load(run_id).document
    except EncryptionKeyMissing:
        raise Failure(
            [
                f"The run {run_id} holds encrypted secrets and the key file "
                f"{key_path(key_file)} does not exist; give --key-file "
                "the key file the run was started with."
            ]
        ) from None


def service_store(spec: str | None, key: bytes | None) -> Store | None:
    """The Redis or PostgreSQL store a ``--store`` URL names, else ``None``.

    Without ``key`` the store lists and expires runs but cannot read or
    write their secrets.

    Raises:
        StoreError: the server cannot be reached, or its client library is
            not installed.
    """
    kind = service_kind(spec)
    if kind is None or spec is None:
        return None
    return kind(spec, key=key)


def shown_store(spec: str | None) -> str | None:
    """``--store`` as a command may show it: never with a password.

    A file is shown by its full path, so the command works from anywhere.
    """
    if not spec:
        return None
    if service_kind(spec) is None and spec != "memory":
        return os.path.abspath(spec)
    shown = _without_password(spec)
    if shown != spec and spec == os.environ.get("MFAFLOW_STORE"):
        # The password cannot be shown, and the variable gives it again.
        return None
    return shown


def store_path(spec: str | None) -> Path:
    """The SQLite file ``--store`` names, or the default one.

    Raises:
        click.BadParameter: ``spec`` is the URL of a Redis or PostgreSQL
            store, which has no file.
    """
    if service_kind(spec) is not None:
        raise click.BadParameter(
            f"{_without_password(spec or '')!r} names a Redis or PostgreSQL "
            "store, and this command reads SQLite files only.",
            param_hint="'--store'",
        )
    if spec:
        return Path(spec)
    return platformdirs.user_data_path("mfaflow") / "runs.sqlite"


def service_kind(spec: str | None) -> type[RedisStore] | type[PostgresStore] | None:
    """The class of the Redis or PostgreSQL store a ``--store`` URL names."""
    scheme, separator, _ = (spec or "").partition("://")
    return _SERVICES.get(scheme.lower()) if separator else None


def _without_password(spec: str) -> str:
    """``spec`` with the password of a store's URL replaced by ``***``.

    A password goes in the user information or, for libpq and redis-py,
    in a ``password`` query parameter; the rest is kept, so that the
    command shown still names the same store.
    """
    if service_kind(spec) is None:
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


def key_path(key_file: Path | None) -> Path:
    """The key file ``--key-file`` names, or the default one."""
    if key_file is not None:
        return key_file
    return platformdirs.user_config_path("mfaflow") / "store.key"


def _store_key(key_file: Path | None, *, create: bool) -> bytes | None:
    if key_file is None and os.environ.get("MFAFLOW_STORE_KEY"):
        return _environment_key(os.environ["MFAFLOW_STORE_KEY"])
    path = key_path(key_file)
    if not create and not path.exists():
        return None
    return load_or_create_key(path)


def _environment_key(given: str) -> bytes:
    try:
        Sealer(given)
    except StoreError:
        raise StoreError(
            "MFAFLOW_STORE_KEY does not hold a Fernet key: expected 32 bytes in "
            "url-safe base64 (44 characters)."
        ) from None
    return given.encode()


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
