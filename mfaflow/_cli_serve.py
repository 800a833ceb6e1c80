"""``mfaflow serve``: the embedded tenant on a loopback port, in the foreground."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

__all__ = ["serve"]


@click.command()
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
def serve(port: int, config_file: Path | None, control: bool, tls: bool) -> None:
    """Serve the embedded Auth0-compatible tenant on 127.0.0.1.

    Prints the tenant's URL on stdout; Ctrl-C stops it. It listens on
    loopback only: it is for demos and tests, not for real users. With
    --tls it serves HTTPS with a self-signed certificate kept in the user's
    data directory; trust that certificate (for example with
    --ca-bundle or REQUESTS_CA_BUNDLE) to call it.
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
    context, certificate = loopback_tls() if tls else (None, None)
    tenant = Tenant(config, control=control)
    server = LoopbackServer(tenant, port=port, ssl_context=context)
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
    # an interrupt arriving outside that loop is caught here).
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.stop()
    click.echo("Stopped.", err=True)
