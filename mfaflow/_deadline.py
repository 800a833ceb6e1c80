"""A deadline for a whole HTTP exchange, for :class:`~mfaflow.RequestsTransport`.

The timeouts of ``requests`` bound each read from the socket, not the
exchange: a server that sends one byte a second, of its head or of its
body, never trips them. A :class:`Deadline` bounds the whole of it. While
it is armed it watches the socket of the connection that carries the
answer, and when its time is up it shuts that socket down, which ends the
read that is waiting; the transport then sees :attr:`Deadline.expired` and
reports a timeout instead of a broken connection.

The socket is found by the connection classes of :class:`DeadlineAdapter`,
which a transport mounts on the sessions it creates: they watch the socket
as soon as the request is sent, so the head is bounded too. For a session
the caller passes in, the transport can watch the socket only once the
head has arrived (:meth:`Deadline.watch_response`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import requests
import urllib3
from urllib3 import poolmanager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Deadline", "DeadlineAdapter"]

_current = threading.local()


class Deadline:
    """The time by which an exchange must be over, armed in one thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._timer: threading.Timer | None = None
        #: Whether the time ran out while the exchange was going on.
        self.expired = False

    def __enter__(self) -> Deadline:
        _current.deadline = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.deadline = None
        if self._timer is not None:
            self._timer.cancel()

    @property
    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self._at

    def watch(self, sock: Any) -> None:
        """Shut ``sock`` down when the time is up; only the first socket counts."""
        if self._timer is not None or sock is None:
            return
        remaining = max(0.0, self._at - time.monotonic())
        self._timer = threading.Timer(remaining, self._expire, (sock,))
        self._timer.daemon = True
        self._timer.start()

    def watch_response(self, answer: requests.Response) -> None:
        """Watch the socket that carries the body of ``answer``.

        XXX: with a session passed in, this is where watching starts, so a
        head dripped line by line is bounded only by the read timeout;
        test_a_dripped_body_is_cut_off_with_a_session_passed_in pins what
        such a session does bound.
        """
        connection = getattr(answer.raw, "connection", None)
        self.watch(getattr(connection, "sock", None))

    def _expire(self, sock: socket.socket) -> None:
        self.expired = True
        # A socket closed already belongs to an exchange that is over. The
        # plain socket's method is called: an SSL socket's own would drop
        # its TLS state under the thread that is reading.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watching:
    """Connection behaviour: hand the socket to the deadline of this thread."""

    sock: Any

    def getresponse(self) -> Any:
        deadline: Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse()  # type: ignore[misc]


class _HTTPConnection(_Watching, HTTPConnection):
    pass


class _HTTPSConnection(_Watching, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections let a :class:`Deadline` watch them.

    Connections through a SOCKS proxy keep their own classes, and are
    watched from the head on only.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _use_watching_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        _use_watching_pools(manager)
        return manager


def _use_watching_pools(manager: urllib3.PoolManager) -> None:
    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = _POOLS
