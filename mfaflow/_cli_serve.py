"""``mfaflow serve``: the embedded tenant on a loopback port, in the foreground."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

__all__ = ["serve"]

_LOOPBACK_NAMES = ("localhost",)


class _Terminated(Exception):
    """SIGTERM arrived: stop serving as Ctrl-C would."""


def _address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Check ``--host``, dropping the brackets of an IPv6 address (``[::1]``)."""
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if not bare.strip():
        msg = (
            "Give an address to listen on, such as 127.0.0.1; an empty one would "
            "listen on every interface (write 0.0.0.0 to mean that)."
        )
        raise click.BadParameter(msg)
    return bare


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=_address,
    help=(
        "The address to listen on, which clients use in the issuer too; "
        "anything but loopback is for trusted networks."
    ),
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The port to listen on; 0 lets the system choose a free one.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A tenant configuration (YAML); the demo tenant by default.",
)
@click.option(
    "--control",
    is_flag=True,
    help="Also serve the /__control endpoints (read sent codes, approve pushes).",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Serve HTTPS with a self-signed certificate, whose path is printed.",
)
def serve(
    host: str, port: int, config_file: Path | None, control: bool, tls: bool
) -> None:
    """Serve the embedded Auth0-compatible tenant, on 127.0.0.1 by default.

    Prints the tenant's URL on stdout; Ctrl-C or SIGTERM stops it. It is for
    demos and tests, not for real users: it listens on loopback unless
    --host names another address, and warns when it does. With --tls it
    serves HTTPS with a self-signed certificate kept in the user's data
    directory; trust that certificate (for example with --ca-bundle,
    REQUESTS_CA_BUNDLE, SSL_CERT_FILE or NODE_EXTRA_CA_CERTS) to call it.
    """
    # Imported here: the tenant is only needed by this command.
    from .tenant import (
        DEMO_CLIENT_ID,
        LoopbackServer,
        Tenant,
        load_config,
        loopback_tls,
    )

    config = load_config(config_file) if config_file is not None else None
    context, certificate = (None, None)
    if tls:
        context, certificate = loopback_tls(hosts=_certificate_hosts(host))
    tenant = Tenant(config, control=control)
    server = LoopbackServer(tenant, host=host, port=port, ssl_context=context)
    if not _is_loopback(host):
        click.echo(
            f"Warning: listening on {host}, not loopback: anyone who can reach "
            "this address can use the tenant and its test users.",
            err=True,
        )
    if _is_unspecified(host):
        click.echo(
            f"Warning: tokens name {server.url} as their issuer, which clients "
            "cannot use; give --host the address clients will call instead.",
            err=True,
        )
    click.echo(server.url)
    click.echo(f"Serving the tenant at {server.url}; Ctrl-C stops it.", err=True)
    if certificate is not None:
        click.echo(f"Its self-signed certificate: {certificate}", err=True)
    if config is None:
        click.echo(
            f"Try: mfaflow run password-grant --issuer {server.url} "
            f"--client-id {DEMO_CLIENT_ID}",
            err=True,
        )
    # Ctrl-C is how this command ends: werkzeug's loop returns on it (and
    # an interrupt arriving outside that loop is caught here). SIGTERM, sent
    # by service managers and test harnesses, ends it the same way.
    with _stopped_by_sigterm(), contextlib.suppress(KeyboardInterrupt, _Terminated):
        server.serve_forever()
    server.stop()
    click.echo("Stopped.", err=True)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    """Whether ``host`` means every interface (0.0.0.0, ::), no address of its own."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _certificate_hosts(host: str) -> tuple[str, ...]:
    """The names the certificate must cover: loopback, and ``host`` if it is not."""
    names = ("127.0.0.1", "localhost")
    return names if host in names else (*names, host)


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
