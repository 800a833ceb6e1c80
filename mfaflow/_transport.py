"""HTTP transports: one small protocol and three implementations.

A transport sends a :class:`Request` and returns a :class:`Response`. Every
answer is a response, whatever its status: a 302, a 403 or a 503 comes back
as it was sent. A transport raises only when no complete answer could be
had, with the :class:`~mfaflow._errors.TransportError` subclass that names
the phase that failed:

- :class:`~mfaflow._errors.ConnectError`: the server was not reached
  (refused, unresolvable, or connecting took longer than allowed:
  :class:`~mfaflow._errors.ConnectTimeout`), or the URL names no server;
  nothing was sent;
- :class:`~mfaflow._errors.TLSError`: the handshake failed or the
  certificate is not trusted; nothing was sent;
- :class:`~mfaflow._errors.ConnectionDropped`: the connection was closed
  or reset after the request went out and before a complete answer came
  back, so the server may have acted on it;
- :class:`~mfaflow._errors.TransportTimeout`: the answer took longer than
  allowed, or the whole exchange did;
- :class:`~mfaflow._errors.ResponseTooLarge`: the body is larger than the
  transport's limit (reading stops there);
- :class:`~mfaflow._errors.ProtocolError`: the answer is not valid HTTP, was
  cut off, or (in process) the application crashed; or the request itself
  cannot be sent as HTTP (a header value that is not Latin-1, a line break
  in a header, a method that is not a token).

Messages name the URL without its user information, query string and
fragment, which may carry secrets; they never show headers or bodies.

The implementations:

- :class:`RequestsTransport` speaks HTTP through ``requests``;
- :class:`WSGITransport` calls a WSGI application in the same process;
- :class:`MockTransport` calls a plain function, for tests.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import io
import json
import logging
import math
import os
import re
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable
from urllib.parse import unquote_to_bytes, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from attrs import field, frozen

from ._deadline import Deadline, DeadlineAdapter
from ._errors import (
    ConnectError,
    ConnectionDropped,
    ConnectTimeout,
    ProtocolError,
    ResponseTooLarge,
    TLSError,
    TransportError,
    TransportTimeout,
)
from ._fields import MAX_SECONDS
from ._version import __version__

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_JSON_DEPTH",
    "MockTransport",
    "Request",
    "RequestsTransport",
    "Response",
    "Transport",
    "WSGITransport",
    "check_ca_bundle",
    "check_timeout",
    "default_user_agent",
    "parse_json",
    "safe_url",
]

logger = logging.getLogger(__name__)

#: The largest response body a transport reads by default: 1 MiB.
DEFAULT_MAX_BODY = 1_048_576
#: The deepest nesting of arrays and objects :func:`parse_json` accepts.
#: No answer of an authorization server comes near it; a deeper one would
#: only strain every step that walks the run's data.
MAX_JSON_DEPTH = 64

HeaderPairs: TypeAlias = tuple[tuple[str, str], ...]
HeadersLike: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

_CHUNK = 65_536
_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")
#: An HTTP token (RFC 9110), as a method must be.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def safe_url(url: str) -> str:
    """Return ``url`` without user information, query string and fragment.

    This is the form of a URL that reprs, logs and error messages show:
    the parts dropped are where URLs carry credentials and codes.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    host = parts.netloc.rpartition("@")[2]

    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def default_user_agent() -> str:
    """Return the User-Agent :class:`RequestsTransport` sends by default."""
    return f"mfaflow/{__version__} python-requests/{requests.__version__}"


def _upper(method: str) -> str:
    return method.upper()


def _frozen_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(headers or {}))


def _header_pairs(headers: HeadersLike | None) -> HeaderPairs:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers

    return tuple((str(name), str(value)) for name, value in items)


def _names(headers: Iterable[str]) -> str:
    return "[" + ", ".join(repr(name) for name in headers) + "]"


def parse_json(body: bytes | str) -> Any:
    """Return ``body`` parsed as strict JSON, as a server's answer must be.

    Every number must be finite: ``NaN``, ``Infinity`` and numbers too
    large for a float (``1e999``) are refused, since no JSON document can
    hold them and a run could not store them.

    Arrays and objects may nest :data:`MAX_JSON_DEPTH` levels deep.

    Raises:
        ValueError: the body is not JSON, not UTF-8 text, nested deeper than
            :data:`MAX_JSON_DEPTH` levels, or holds a number that is not
            finite or too long to read. The message never quotes the body.
    """
    try:
        parsed = json.loads(
            body,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_integer,
        )
    except json.JSONDecodeError as exc:
        msg = f"The response body is not JSON: {exc.msg} at line "
        raise ValueError(f"{msg}{exc.lineno} column {exc.colno}.") from exc
    except UnicodeDecodeError as exc:
        msg = f"The response body is not JSON: it is not {exc.encoding} text."
        raise ValueError(msg) from exc
    except RecursionError as exc:
        msg = "The response body is JSON nested too deeply to parse."
        raise ValueError(msg) from exc
    _check_depth(parsed)
    return parsed


def _check_depth(value: Any) -> None:
    """Refuse ``value`` when its arrays and objects nest too deeply; no recursion."""
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict | list):
            if depth > MAX_JSON_DEPTH:
                msg = (
                    "The response body is JSON nested deeper than "
                    f"{MAX_JSON_DEPTH} levels."
                )
                raise ValueError(msg)
            items = current.values() if isinstance(current, dict) else current
            pending.extend((item, depth + 1) for item in items)


def _refuse_constant(name: str) -> Any:
    msg = f"The response body is not JSON: it holds {name}, which JSON does not allow."
    raise ValueError(msg)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        msg = "The response body is not JSON: it holds a number too large for a float."
        raise ValueError(msg)
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # Python refuses integers of more than 4300 digits.
        msg = "The response body is not JSON: it holds an integer too long to read."
        raise ValueError(msg) from None


@frozen(repr=False)
class Request:
    """One HTTP request, as a transport sends it.

    ``method`` is upper-cased. ``timeout``, when given, replaces the
    transport's read timeout for this request. The repr shows the method,
    the URL without query string, the header names and the body's length,
    never a header value or the body: they carry passwords and tokens.
    """

    method: str = field(converter=_upper)
    url: str
    headers: Mapping[str, str] = field(factory=dict, converter=_frozen_headers)
    body: bytes | None = None
    timeout: float | None = None

    def header(self, name: str) -> str | None:
        """Return the value of header ``name`` (any case), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value

        return None

    def __repr__(self) -> str:
        body = "None" if self.body is None else f"<{len(self.body)} bytes>"
        return (
            f"Request(method={self.method!r}, url={safe_url(self.url)!r}, "
            f"headers={_names(self.headers)}, body={body}, "
            f"timeout={self.timeout!r})"
        )


@frozen(repr=False)
class Response:
    """One HTTP answer: status, headers in the order received, and body.

    Header names keep the case the server sent; lookups ignore case. The
    repr shows the status, the header names and the body's length only.
    """

    status: int
    headers: HeaderPairs = field(factory=tuple, converter=_header_pairs)
    body: bytes = b""

    @classmethod
    def json_response(
        cls, status: int, obj: Any, headers: HeadersLike | None = None
    ) -> Response:
        """Build a response whose body is ``obj`` as JSON.

        ``Content-Type: application/json`` is set unless ``headers`` gives
        one. Meant for the handlers of :class:`MockTransport`.
        """
        pairs = _header_pairs(headers)
        if not any(name.lower() == "content-type" for name, _ in pairs):
            pairs = (("Content-Type", "application/json"), *pairs)

        return cls(status, pairs, json.dumps(obj).encode("utf-8"))

    def header_values(self, name: str) -> list[str]:
        """Return every value of header ``name`` (any case), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str) -> str | None:
        """Return header ``name`` (any case), or ``None`` when absent.

        A header sent several times gives its values joined with ``", "``,
        as HTTP combines them; use :meth:`header_values` for ``Set-Cookie``,
        whose values cannot be combined.
        """
        values = self.header_values(name)
        return ", ".join(values) if values else None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Return the body parsed as JSON.

        Raises:
            ValueError: the body is empty or not JSON (see
                :func:`parse_json`). The message says where parsing failed
                and never quotes the body.
        """
        if not self.body.strip():
            raise ValueError("The response body is empty, not JSON.")
        return parse_json(self.body)

    def __repr__(self) -> str:
        names = _names(name for name, _ in self.headers)
        return (
            f"Response(status={self.status!r}, headers={names}, "
            f"body=<{len(self.body)} bytes>)"
        )


@runtime_checkable
class Transport(Protocol):
    """Anything that sends a request and returns the answer.

    ``send`` returns a :class:`Response` for every status and raises a
    :class:`~mfaflow._errors.TransportError` subclass only when no answer
    could be had.
    """

    def send(self, request: Request) -> Response:
        """Send ``request`` and return the server's answer."""
        ...


def _check_request(request: Request, url: str) -> None:
    """Refuse a method or headers that HTTP/1.1 cannot carry, naming no value.

    The method must be a token such as ``POST``. Header names must be ASCII
    and values Latin-1 (the bytes HTTP sends them as), and neither may hold
    a line break or a NUL character. A header's value is never shown: it
    may be a password or a token.

    Raises:
        ProtocolError: the request cannot be sent.
    """
    if not _TOKEN.fullmatch(request.method):
        msg = (
            f"The request to {url} cannot be sent: its method is not an HTTP "
            "token such as 'POST'."
        )
        raise ProtocolError(msg, url=url)
    for name, value in request.headers.items():
        problem = None
        if _FORBIDDEN_IN_HEADERS.intersection(name + value):
            problem = "contains a line break or a NUL character"
        elif not name.isascii():
            problem = "has a name that is not ASCII"
        elif not _is_latin_1(value):
            problem = "has a value that is not Latin-1 text, as HTTP headers must be"
        if problem is not None:
            msg = f"The request to {url} cannot be sent: header {name!r} {problem}."
            raise ProtocolError(msg, url=url)


def _is_latin_1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def check_timeout(seconds: float, name: str) -> float:
    """Return ``seconds`` as a timeout, or refuse it naming ``name``.

    A timeout is a number of seconds above 0 and at most
    :data:`~mfaflow._fields.MAX_SECONDS` (ten years): ``nan``, an infinity
    or ``1e308`` would reach the socket and fail there, as a ``ValueError``
    or an ``OverflowError`` naming no option.

    Raises:
        ValueError: ``seconds`` is not such a number.
    """
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if number and math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS:
        return float(seconds)
    msg = (
        f"{name} must be a number of seconds above 0 and at most {MAX_SECONDS} "
        f"(ten years), not {seconds!r}."
    )
    raise ValueError(msg)


def _check_max_body(max_body: int) -> int:
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(
            f"max_body must be a positive number of bytes, not {max_body!r}."
        )
    return max_body


def _too_large(url: str, limit: int, declared: int | None = None) -> ResponseTooLarge:
    said = f" (it announced {declared} bytes)" if declared is not None else ""
    msg = f"The answer from {url}{said} is larger than the limit of {limit} bytes."
    return ResponseTooLarge(msg, url=url)


# requests.RequestException derives from OSError already; the other two are
# what urllib3 and http.client raise where requests does not wrap them.
# UnicodeError is how http.client and idna refuse text they cannot encode.
_FAILURES = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    UnicodeError,
)
_BAD_URLS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and every exception it wraps, as requests and urllib3 nest them."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = (current.__cause__, getattr(current, "reason", None), *current.args)
        pending.extend(item for item in inner if isinstance(item, BaseException))


def _is_timeout(exc: BaseException) -> bool:
    # urllib3 derives NewConnectionError (a refusal) from ConnectTimeoutError.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False
    timeouts = (TimeoutError, urllib3.exceptions.TimeoutError, requests.Timeout)
    return isinstance(exc, timeouts)


def _is_tls(exc: BaseException) -> bool:
    failures = (ssl.SSLError, requests.exceptions.SSLError, urllib3.exceptions.SSLError)
    return isinstance(exc, failures)


class RequestsTransport:
    """Sends requests over the network with ``requests``.

    One :class:`requests.Session` is shared by every request, so
    connections are reused. TLS certificates are verified: against
    ``ca_bundle`` when given (it wins over ``verify`` and over the
    ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` variables), else against
    ``verify`` when it is a path, else against the bundle those variables
    name, else against certifi's bundle. Redirects are never followed: a
    302 from ``/authorize`` is an answer the flow must see. Bodies are read
    in chunks and reading stops past ``max_body`` bytes.

    A session the transport creates itself keeps no cookies, so that runs
    sharing the transport never share a login; a ``session`` passed in is
    used as it is configured, and is not closed by :meth:`close`.

    Every exchange has a deadline too, however the server spreads its
    answer out: a server that sends one byte a second, of its head or of
    its body, is a :class:`~mfaflow._errors.TransportTimeout` once
    ``total_timeout`` has passed. (With a ``session`` passed in, the
    deadline bounds the body only; the head, each of its reads.)

    Args:
        connect_timeout: seconds allowed to connect (and finish TLS).
        read_timeout: seconds allowed between bytes of the answer;
            :attr:`Request.timeout` overrides it per request.
        total_timeout: seconds allowed for a whole exchange, from sending
            the request to the last byte of the answer; by default
            ``connect_timeout`` plus the read timeout of the request.
        verify: ``False`` to skip certificate checks, or a CA bundle path.
        ca_bundle: a PEM file of certificates to trust.
        max_body: the largest body, in bytes, that is read.
        session: a session to use instead of a new one.
        user_agent: the User-Agent sent unless a request sets its own;
            :func:`default_user_agent` by default.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        total_timeout: float | None = None,
        verify: bool | str = True,
        ca_bundle: str | os.PathLike[str] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        session: requests.Session | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._verify = _verification(verify, ca_bundle)
        self._connect_timeout = check_timeout(connect_timeout, "connect_timeout")
        self._read_timeout = check_timeout(read_timeout, "read_timeout")
        self._total_timeout = (
            None
            if total_timeout is None
            else check_timeout(total_timeout, "total_timeout")
        )
        self._max_body = _check_max_body(max_body)
        self._owns_session = session is None
        self._session = session if session is not None else _new_session()
        self._user_agent = user_agent or default_user_agent()

    def __repr__(self) -> str:
        return (
            f"RequestsTransport(connect_timeout={self._connect_timeout!r}, "
            f"read_timeout={self._read_timeout!r}, "
            f"total_timeout={self._total_timeout!r}, verify={self._verify!r}, "
            f"max_body={self._max_body!r})"
        )

    def __enter__(self) -> RequestsTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections of a session this transport created."""
        if self._owns_session:
            self._session.close()

    def send(self, request: Request) -> Response:
        """Send ``request`` and return the answer, whatever its status."""
        url = safe_url(request.url)
        read_timeout = (
            self._read_timeout
            if request.timeout is None
            else check_timeout(request.timeout, "The request's timeout")
        )
        total = self._total_timeout or self._connect_timeout + read_timeout
        with Deadline(total) as deadline:
            answer = self._open(request, url, read_timeout, deadline)
            deadline.watch_response(answer)
            with answer:
                body = self._read_body(answer, url, read_timeout, deadline)
                headers = answer.raw.headers.items()
                response = Response(answer.status_code, headers, body)
        if deadline.expired:
            # A head cut off by the deadline can look complete to http.client.
            raise _late(url, deadline)
        logger.debug(
            "%s %s answered %d with %d bytes",
            request.method,
            url,
            response.status,
            len(body),
        )

        return response

    def _headers(self, request: Request, url: str) -> dict[str, str]:
        _check_request(request, url)
        headers = dict(request.headers)
        if request.header("User-Agent") is None:
            headers["User-Agent"] = self._user_agent

        return headers

    def _open(
        self, request: Request, url: str, read_timeout: float, deadline: Deadline
    ) -> requests.Response:
        headers = self._headers(request, url)
        try:
            return self._session.request(
                request.method,
                request.url,
                headers=headers,
                data=request.body,
                timeout=(self._connect_timeout, read_timeout),
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.InvalidHeader:
            # requests quotes the offending value, which may be a secret:
            # the cause is dropped on purpose.
            msg = f"The request to {url} cannot be sent: a header is not valid HTTP."
            raise ProtocolError(msg, url=url) from None
        except _FAILURES as exc:
            if deadline.expired:
                raise _late(url, deadline) from exc
            raise self._send_failure(exc, url, read_timeout) from exc

    def _read_body(
        self,
        answer: requests.Response,
        url: str,
        read_timeout: float,
        deadline: Deadline,
    ) -> bytes:
        declared = answer.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise _too_large(url, self._max_body, int(declared))
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in answer.iter_content(_CHUNK):
                size += len(chunk)
                if size > self._max_body:
                    raise _too_large(url, self._max_body)
                if deadline.passed:
                    raise _late(url, deadline)
                chunks.append(chunk)
        except _FAILURES as exc:
            if deadline.expired:
                raise _late(url, deadline) from exc
            raise self._read_failure(exc, url, read_timeout) from exc

        return b"".join(chunks)

    def _send_failure(
        self, exc: BaseException, url: str, read_timeout: float
    ) -> TransportError:
        """Translate a failure before the answer's head arrived."""
        chain = list(_chain(exc))
        if any(_is_timeout(item) for item in chain):
            if isinstance(exc, requests.ConnectTimeout):
                msg = f"Connecting to {url} took longer than {self._connect_timeout} s."
                return ConnectTimeout(msg, url=url)
            msg = f"{url} did not answer within {read_timeout} s."
            return TransportTimeout(msg, url=url)
        if any(_is_tls(item) for item in chain):
            msg = (
                f"The TLS handshake with {url} failed "
                "or its certificate is not trusted."
            )
            return TLSError(msg, url=url)
        if isinstance(exc, UnicodeError):
            msg = (
                f"The request to {url} cannot be sent: it holds text "
                "that HTTP cannot encode."
            )
            return ProtocolError(msg, url=url)
        if isinstance(exc, _BAD_URLS):
            msg = (
                f"Cannot send a request to {url}: "
                "it is not an http or https URL with a host."
            )
            return ConnectError(msg, url=url)
        return _connect_or_protocol_error(chain, url)

    def _read_failure(
        self, exc: BaseException, url: str, read_timeout: float
    ) -> TransportError:
        """Translate a failure while the body was being read."""
        chain = list(_chain(exc))
        if any(_is_timeout(item) for item in chain):
            msg = f"{url} stopped sending its answer for longer than {read_timeout} s."
            return TransportTimeout(msg, url=url)
        if any(_is_tls(item) for item in chain):
            # The handshake is long done: the request went out.
            msg = f"The TLS connection to {url} broke off while reading the answer."
            return ConnectionDropped(msg, url=url)
        if isinstance(exc, requests.exceptions.ContentDecodingError):
            msg = f"The body from {url} does not match its Content-Encoding."
            return ProtocolError(msg, url=url)
        msg = f"The connection to {url} broke off before the whole body arrived."
        return ProtocolError(msg, url=url)


def _late(url: str, deadline: Deadline) -> TransportTimeout:
    msg = f"{url} did not send its whole answer within {deadline.seconds} s."
    return TransportTimeout(msg, url=url)


def _connect_or_protocol_error(chain: list[BaseException], url: str) -> TransportError:
    """Tell a server that was not reached from one that dropped or garbled the answer.

    A failure to open the connection means nothing was sent; one after it
    was open (a reset, a hang-up) may have come after the server read the
    request, so it is :class:`ConnectionDropped`, which a flow must not
    take as license to repeat a request that is not idempotent.
    """
    if any(isinstance(item, ConnectionRefusedError) for item in chain):
        return ConnectError(f"{url} refused the connection.", url=url)
    if any(isinstance(item, urllib3.exceptions.NameResolutionError) for item in chain):
        return ConnectError(f"The host of {url} could not be resolved.", url=url)
    if any(isinstance(item, urllib3.exceptions.NewConnectionError) for item in chain):
        return ConnectError(f"{url} could not be reached.", url=url)
    # RemoteDisconnected is both a reset and a bad status line: a reset wins.
    if any(isinstance(item, ConnectionError) for item in chain):
        msg = (
            f"{url} closed the connection without answering; "
            "it may have received the request."
        )
        return ConnectionDropped(msg, url=url)
    invalid = (http.client.HTTPException, urllib3.exceptions.ProtocolError)
    if any(isinstance(item, invalid) for item in chain):
        return ProtocolError(f"The answer from {url} is not valid HTTP.", url=url)
    return ConnectError(f"{url} could not be reached.", url=url)


def _verification(
    verify: bool | str, ca_bundle: str | os.PathLike[str] | None
) -> bool | str:
    """Return what to pass as requests' ``verify`` for every request.

    Passing a path on each request (rather than setting the session's
    ``verify``) is what keeps an explicit bundle ahead of the environment.
    """
    if ca_bundle is not None:
        if verify is False:
            raise ValueError(
                "ca_bundle was given with verify=False; give one or the other."
            )
        verify = os.fspath(ca_bundle)
    if isinstance(verify, str):
        check_ca_bundle(verify)

    return verify


def check_ca_bundle(path: str | os.PathLike[str]) -> None:
    """Refuse a CA bundle that is missing or holds no PEM certificate.

    A folder (of hashed certificates, as OpenSSL reads them) is taken as
    it is. Checked up front: a file of another kind would otherwise show
    as a TLS failure of every request.

    Raises:
        ValueError: the file does not exist, cannot be read, or holds no
            ``-----BEGIN CERTIFICATE-----`` block.
    """
    shown = os.fspath(path)
    if os.path.isdir(shown):
        return
    try:
        with open(shown, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        msg = f"The CA bundle {shown!r} does not exist; give a PEM file's path."
        raise ValueError(msg) from None
    except OSError as exc:
        msg = f"The CA bundle {shown!r} cannot be read: {exc.strerror}."
        raise ValueError(msg) from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        msg = (
            f"The CA bundle {shown!r} holds no PEM certificate (a "
            "'-----BEGIN CERTIFICATE-----' block); give a PEM file."
        )
        raise ValueError(msg)


def _new_session() -> requests.Session:
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, DeadlineAdapter())
    # An empty list of allowed domains refuses every cookie, set or sent.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class _AppErrors(io.TextIOBase):
    """The ``wsgi.errors`` stream: what the application writes is logged."""

    def write(self, text: str) -> int:
        if text.strip():
            logger.warning("The WSGI application reported: %s", text.rstrip())
        return len(text)


class _BodyTooLarge(Exception):
    """The application produced more than the limit; raised out of its body."""


class _Body:
    """Collects body chunks up to a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise _BodyTooLarge
        self.chunks.append(bytes(chunk))


class _Started:
    """What the application passed to ``start_response``."""

    def __init__(self, body: _Body) -> None:
        self.body = body
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Callable[[bytes], object]:
        # The whole answer is buffered, so nothing has been sent yet and
        # an error page may always replace the first status (PEP 3333).
        if self.status is not None and exc_info is None:
            raise RuntimeError("start_response was called twice without exc_info.")
        self.status = status
        self.headers = list(headers)

        return self.body.add


class WSGITransport:
    """Calls a WSGI application in this process, without sockets.

    Each request becomes a PEP 3333 environ; the status, headers and body
    the application produces become the response. A relative URL (such as
    ``/oauth/token``) is resolved against ``base_url``, by default
    ``http://localhost``. The host and port of the URL give ``SERVER_NAME``,
    ``SERVER_PORT`` and ``Host``. Timeouts do not apply in process.

    An application that raises, or breaks the WSGI protocol, is a server
    that failed to answer: :class:`~mfaflow._errors.ProtocolError`, with the
    application's exception as its cause. Headers HTTP could not carry (a
    value that is not Latin-1, a line break) are refused as
    :class:`RequestsTransport` refuses them, before the application is called.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        base_url: str | None = None,
    ) -> None:
        self._app = app
        self._max_body = _check_max_body(max_body)
        self._base_url = base_url or "http://localhost"

    def __repr__(self) -> str:
        return f"WSGITransport({self._app!r}, base_url={self._base_url!r})"

    def send(self, request: Request) -> Response:
        """Call the application with ``request`` and return its answer."""
        url = urljoin(self._base_url, request.url)
        shown = safe_url(url)
        _check_request(request, shown)
        environ = _environ(request, url)
        started = _Started(_Body(self._max_body))
        try:
            self._run(environ, started)
        except _BodyTooLarge:
            raise _too_large(shown, self._max_body) from None
        except Exception as exc:
            name = type(exc).__name__
            msg = (
                f"The WSGI application raised {name} "
                f"while answering {request.method} {shown}."
            )
            raise ProtocolError(msg, url=shown) from exc
        status = _status_code(started.status, shown)
        response = Response(status, started.headers, b"".join(started.body.chunks))
        logger.debug(
            "%s %s answered %d in process", request.method, shown, response.status
        )

        return response

    def _run(self, environ: WSGIEnvironment, started: _Started) -> None:
        start_response: StartResponse = started
        result = self._app(environ, start_response)
        try:
            for chunk in result:
                started.body.add(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def _status_code(status: str | None, url: str) -> int:
    if status is None:
        msg = f"The WSGI application answering {url} never called start_response."
        raise ProtocolError(msg, url=url)
    code = status.split(" ", 1)[0]
    if len(code) != 3 or not code.isdigit():
        msg = (
            f"The WSGI application answering {url} gave the status {status!r}; "
            "expected a three-digit code and a reason, such as '200 OK'."
        )
        raise ProtocolError(msg, url=url)

    return int(code)


def _environ(request: Request, url: str) -> WSGIEnvironment:
    """Build the PEP 3333 environ for ``request`` sent to ``url``."""
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ConnectError(
            f"The port of {safe_url(url)} is not a number.", url=safe_url(url)
        ) from exc
    body = request.body or b""
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        # PEP 3333: the path is unquoted, its bytes carried as latin-1.
        "PATH_INFO": unquote_to_bytes(parts.path or "/").decode("latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname or "localhost",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": parts.netloc.rpartition("@")[2] or "localhost",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": _AppErrors(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = value
    if request.body is not None:
        environ["CONTENT_LENGTH"] = str(len(body))

    return environ


class MockTransport:
    """Answers requests by calling ``handler``, a plain function.

    For tests: the handler gets the :class:`Request` and returns a
    :class:`Response` (:meth:`Response.json_response` builds JSON ones). A
    :class:`~mfaflow._errors.TransportError` it raises stands for a network
    failure and reaches the caller as it is; any other exception is a bug
    in the handler and propagates unchanged too.
    """

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self._handler = handler

    def __repr__(self) -> str:
        return f"MockTransport({self._handler!r})"

    def send(self, request: Request) -> Response:
        """Return what the handler answers to ``request``."""
        response = self._handler(request)
        if not isinstance(response, Response):
            name = type(response).__name__
            raise TypeError(
                f"The MockTransport handler must return a Response, not {name}."
            )

        return response
