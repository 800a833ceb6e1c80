"""Serving a tenant over HTTP on loopback, from a thread or in the foreground.

The server binds its port first, then serves a view of the tenant whose
issuer is the server's own URL (``http://127.0.0.1:PORT/``), so tokens name
the address clients actually use. Access lines are logged at DEBUG without
query strings, which may carry codes.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ._http import loggable_path

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ._tenant import Tenant

__all__ = ["LoopbackServer"]

logger = logging.getLogger(__name__)

_QUERY = re.compile(r"\?[^\s\"']*")


class _Handler(WSGIRequestHandler):
    """Logs through mfaflow's logger: method, path and status, nothing sent.

    A query string may carry codes and a malformed request line may be a
    form body sent as one (``username=...&password=...``), so neither is
    ever logged: a request that could not be parsed is logged by its status
    alone. Control characters of what is logged are percent-encoded, so
    that a request cannot forge a log line.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.command is None or not hasattr(self, "path"):
            logger.debug("HTTP server: refused a malformed request (%s)", code)
            return
        path = loggable_path(_QUERY.sub("", self.path))
        logger.debug('"%s %s" %s', loggable_path(self.command), path, code)

    def log_error(self, format: str, *args: Any) -> None:
        # The arguments are the server's reason, which quotes the request.
        code = args[0] if args and isinstance(args[0], int) else "no status"
        logger.debug(
            "HTTP server: a request failed before the tenant saw it (%s)", code
        )

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(
            "HTTP server: %s", loggable_path(_QUERY.sub("?...", format % args))
        )


def _not_ready(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"The tenant is starting.\n"]


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen ourselves: werkzeug would print and exit when a port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        msg = f"Cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise OSError(exc.errno, msg) from exc


class LoopbackServer:
    """A tenant served over HTTP (or HTTPS) on a local address.

    Use it as a context manager, which serves from a daemon thread::

        with LoopbackServer(Tenant(control=True)) as server:
            requests.post(server.url + "oauth/token", data=...)

    or call :meth:`serve_forever` to serve in the foreground.

    Args:
        tenant: The tenant to serve; :attr:`tenant` is its view with the
            server's URL as issuer.
        host: The address to listen on; an IPv6 address may be written in
            brackets (``[::1]``), as in a URL.
        port: The port; 0 lets the system choose.
        ssl_context: Serve HTTPS with this context.

    Raises:
        ValueError: ``host`` is empty.
        OSError: the address cannot be listened on (such as a port in use).
    """

    def __init__(
        self,
        tenant: Tenant,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host.strip():
            msg = f"host must name an address to listen on; got {host!r}."
            raise ValueError(msg)
        listener = _listen(host, port)
        try:
            self._server: BaseWSGIServer = make_server(
                host,
                port,
                _not_ready,
                threaded=True,
                request_handler=_Handler,
                ssl_context=ssl_context,
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # the server keeps its own duplicate of the socket
        scheme = "https" if ssl_context is not None else "http"
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{netloc}:{self.port}/"
        self.tenant = tenant.with_issuer(self.url)
        self._server.app = self.tenant.wsgi_app
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def start(self) -> LoopbackServer:
        """Serve from a daemon thread; return the server."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"mfaflow-tenant-{self.port}",
                daemon=True,
            )
            self._thread.start()
            logger.debug("Serving the tenant on port %d", self.port)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C)."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LoopbackServer {self.url}>"
