"""Every exception mfaflow raises, under one root.

The tree::

    MfaflowError
    ├── DefinitionError            a flow file is broken (file, line, column)
    │   └── DefinitionErrors       several problems found in one pass
    ├── RunError                   a run cannot go on (flow, run id, state, event)
    │   ├── RunNotFound            no run with that id in the store
    │   ├── RunEnded               the run has already reached a final state
    │   ├── InputError             an input is missing or does not match its pattern
    │   └── UnhandledEvent         a state has no transition for an event
    │       └── UnhandledServerError   ...the event of an OAuth error (also below)
    ├── TransportError             an HTTP exchange failed, named by phase
    │   ├── ConnectError           the server could not be reached; nothing was sent
    │   │   └── ConnectTimeout     ...because connecting took too long (also below)
    │   ├── TLSError               the TLS handshake or certificate check failed
    │   ├── TransportTimeout       connect or read took longer than allowed
    │   ├── ConnectionDropped      the connection broke after the request went out
    │   ├── ResponseTooLarge       the body exceeded the size limit
    │   └── ProtocolError          the answer was not valid HTTP
    ├── AuthorizationServerError   the server answered with an OAuth error
    │   └── UnhandledServerError   ...that the run's state does not handle
    ├── StoreError                 the store failed
    │   ├── ConcurrencyError       a save carried a stale version; nothing changed
    │   └── EncryptionKeyMissing   secrets would be written in plaintext
    ├── RegistryError              an action or guard name is not registered
    └── ActionError                an action failed; its message is safe to show

Messages are one sentence ending in a full stop. They never contain a
secret value: where a value may be secret, only its name is shown.
"""

from __future__ import annotations

__all__ = [
    "ActionError",
    "AuthorizationServerError",
    "ConcurrencyError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionDropped",
    "DefinitionError",
    "DefinitionErrors",
    "EncryptionKeyMissing",
    "InputError",
    "MfaflowError",
    "ProtocolError",
    "RegistryError",
    "ResponseTooLarge",
    "RunEnded",
    "RunError",
    "RunNotFound",
    "StoreError",
    "TLSError",
    "TransportError",
    "TransportTimeout",
    "UnhandledEvent",
    "UnhandledServerError",
]


class MfaflowError(Exception):
    """The root of every exception mfaflow raises."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg

    def __str__(self) -> str:
        return self.msg


class DefinitionError(MfaflowError, ValueError):
    """A flow definition is broken.

    ``file``, ``line`` and ``column`` locate the problem; lines and columns
    count from 1. A problem of the file as a whole (empty, too large) is at
    line 1, column 1; ``line`` and ``column`` are 0 where no file was read
    (a flow made in code).
    """

    def __init__(
        self, msg: str, file: str = "<string>", line: int = 0, column: int = 0
    ) -> None:
        super().__init__(msg)
        self.file = file
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.msg}"


class DefinitionErrors(DefinitionError):
    """Several problems found in one flow file, in the order of the file."""

    def __init__(self, errors: list[DefinitionError]) -> None:
        first = errors[0]
        super().__init__(first.msg, first.file, first.line, first.column)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class RunError(MfaflowError):
    """A run cannot go on.

    Carries the flow name, the run id, the state the run was in and the
    event being handled, any of which may be ``None`` where unknown.
    """

    def __init__(
        self,
        msg: str,
        *,
        flow: str | None = None,
        run_id: str | None = None,
        state: str | None = None,
        event: str | None = None,
    ) -> None:
        super().__init__(msg)
        self.flow = flow
        self.run_id = run_id
        self.state = state
        self.event = event


class RunNotFound(RunError, KeyError):
    """No run with the given id exists in the store."""

    def __str__(self) -> str:
        return self.msg


class RunEnded(RunError):
    """The run has already reached a final state and cannot be resumed."""


class InputError(RunError, ValueError):
    """An input is missing, unknown, or does not match its pattern.

    ``name`` is the input's name; the value itself is never shown when the
    input is secret.
    """

    def __init__(self, msg: str, *, name: str, **context: str | None) -> None:
        super().__init__(msg, **context)
        self.name = name


class UnhandledEvent(RunError):
    """A state received an event for which it declares no transition."""


class TransportError(MfaflowError):
    """An HTTP exchange failed before an answer could be read.

    ``phase`` names what failed: ``connect``, ``tls``, ``timeout``,
    ``dropped``, ``read`` or ``protocol``. ``url`` is the request's URL
    without its query string, which may carry secrets.

    ``sent`` says whether the request may have reached the server. It is
    ``False`` only where it certainly did not (the connection or the TLS
    handshake failed), so that a caller may repeat any request then, even a
    ``POST`` that verifies a one-time code; where it is ``True`` the server
    may have acted on the request, and only an idempotent one is safe to
    repeat.
    """

    phase = "transport"
    sent = True

    def __init__(self, msg: str, *, url: str = "") -> None:
        super().__init__(msg)
        self.url = url


class ConnectError(TransportError):
    """The server could not be reached (refused, unresolvable, too slow to connect).

    No byte of the request was sent.
    """

    phase = "connect"
    sent = False


class TLSError(TransportError):
    """The TLS handshake failed or the certificate was not trusted.

    No byte of the request was sent.
    """

    phase = "tls"
    sent = False


class TransportTimeout(TransportError):
    """Connecting or reading took longer than the configured timeout."""

    phase = "timeout"


class ConnectTimeout(ConnectError, TransportTimeout):
    """Connecting took longer than the connect timeout; nothing was sent.

    Both a :class:`ConnectError` (the server was not reached) and a
    :class:`TransportTimeout` (a timeout ran out).
    """

    phase = "connect"
    sent = False


class ConnectionDropped(TransportError):
    """The connection broke off after the request went out, before an answer.

    The server may have received the request and acted on it: a code it
    verified is used up even though its answer was lost.
    """

    phase = "dropped"


class ResponseTooLarge(TransportError):
    """The response body exceeded the transport's size limit."""

    phase = "read"


class ProtocolError(TransportError):
    """The server's answer was not valid HTTP."""

    phase = "protocol"


class AuthorizationServerError(MfaflowError):
    """The authorization server answered with an OAuth error.

    ``error`` is the OAuth ``error`` code, ``description`` its
    ``error_description`` (possibly empty), ``status`` the HTTP status.
    """

    def __init__(self, error: str, description: str = "", status: int = 0) -> None:
        text = f"The authorization server answered {error!r}"
        if description:
            text += f": {description.rstrip('.')}"
        super().__init__(text + f" (HTTP {status}).")
        self.error = error
        self.description = description
        self.status = status


class UnhandledServerError(UnhandledEvent, AuthorizationServerError):
    """A state has no transition for the OAuth error a server answered.

    Both a :class:`RunError` (the run is stored as failed; ``flow``,
    ``run_id``, ``state`` and ``event`` say where) and an
    :class:`AuthorizationServerError` (``error``, ``description`` and
    ``status`` say what the server answered).
    """

    def __init__(
        self,
        error: str,
        description: str = "",
        status: int = 0,
        *,
        flow: str,
        run_id: str,
        state: str,
    ) -> None:
        AuthorizationServerError.__init__(self, error, description, status)
        self.msg = (
            f"{self.msg[:-1]}, and the state {state!r} of the flow {flow!r} "
            "has no transition for it."
        )
        self.flow = flow
        self.run_id = run_id
        self.state = state
        self.event = error


class StoreError(MfaflowError):
    """The run store failed to load or save a run."""


class ConcurrencyError(StoreError):
    """A save carried a version older than the stored one; nothing was changed."""


class EncryptionKeyMissing(StoreError):
    """A run holds secrets but the store has no key to encrypt them with."""


class RegistryError(MfaflowError, LookupError):
    """An action or guard name is not registered."""


class ActionError(MfaflowError, ValueError):
    """An action failed, with a message that is safe to show.

    An action raises it to say why it failed in words a person may read:
    the message becomes the run's ``${error.message}``, which flows save
    and print, so it must hold no secret. The engine shows any other
    exception an action raises by its class alone, as its text may quote
    a value of the run.
    """
