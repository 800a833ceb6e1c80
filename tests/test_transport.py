"""Transports: real HTTP on loopback, in-process WSGI, and the mock transport."""

from __future__ import annotations

import json
import logging
import math
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from _servers import (
    TLSFiles,
    closed_port,
    make_tls_files,
    read_request_head,
    serve_raw,
    serve_wsgi,
)
from hypothesis import given
from hypothesis import strategies as st

from mfaflow._errors import (
    ConnectError,
    ConnectionDropped,
    ConnectTimeout,
    ProtocolError,
    ResponseTooLarge,
    TLSError,
    TransportError,
    TransportTimeout,
)
from mfaflow._transport import (
    MockTransport,
    Request,
    RequestsTransport,
    Response,
    Transport,
    WSGITransport,
    default_user_agent,
    safe_url,
)
from mfaflow._version import __version__

SECRET = "s3cr3t-Value-1234"


class StreamLog:
    """What the streaming route of :func:`app` managed to send."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = threading.Event()


def _json(
    start_response: Any, status: str, obj: Any, *extra: tuple[str, str]
) -> list[bytes]:
    body = json.dumps(obj).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(status, [*headers, *extra])
    return [body]


def _stream(log: StreamLog, chunks: int) -> Iterator[bytes]:
    try:
        for _ in range(chunks):
            log.sent += 65536
            yield b"x" * 65536
    finally:
        log.closed.set()


def make_app(log: StreamLog | None = None) -> Any:
    """A small WSGI app whose routes the tests call."""
    stream_log = log or StreamLog()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        query = parse_qs(environ["QUERY_STRING"])
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return _json(start_response, f"{code} Whatever", {"status": code})
        if path == "/echo":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
            return _json(
                start_response,
                "200 OK",
                {
                    "method": environ["REQUEST_METHOD"],
                    "path": path,
                    "query": environ["QUERY_STRING"],
                    "content_type": environ.get("CONTENT_TYPE", ""),
                    "headers": headers,
                    "body": body.decode(),
                },
            )
        if path == "/redirect":
            return _json(start_response, "302 Found", {}, ("Location", "/echo"))
        if path == "/cookie":
            return _json(
                start_response,
                "200 OK",
                {"cookie": environ.get("HTTP_COOKIE")},
                ("Set-Cookie", "session=abc; Path=/"),
                ("Set-Cookie", "theme=dark; Path=/"),
            )
        if path == "/big":
            size = int(query["size"][0])
            start_response("200 OK", [("Content-Length", str(size))])
            return [b"y" * size]
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return _stream(stream_log, int(query["chunks"][0]))
        if path == "/html":
            start_response("503 Service Unavailable", [("Content-Type", "text/html")])
            return [b"<html><body>Down for maintenance</body></html>"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


@pytest.fixture
def base_url() -> Iterator[str]:
    """The base URL of :func:`make_app` served over HTTP on loopback."""
    with serve_wsgi(make_app()) as url:
        yield url


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    """A requests transport with short timeouts, closed after the test."""
    with RequestsTransport(connect_timeout=2.0, read_timeout=5.0) as made:
        yield made


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA and a server certificate for 127.0.0.1, made once for this module."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def no_ca_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the CA bundle variables that requests honours."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


# -- RequestsTransport over real HTTP ------------------------------------


@pytest.mark.parametrize("status", [200, 201, 400, 403, 429, 500, 503])
def test_every_status_comes_back_as_a_response(
    transport: RequestsTransport, base_url: str, status: int
) -> None:
    """2xx, 4xx and 5xx answers come back as responses with status and body."""
    response = transport.send(Request("GET", f"{base_url}/status/{status}"))

    assert response.status == status
    assert response.json() == {"status": status}
    assert response.header("content-type") == "application/json"


def test_request_method_headers_query_and_body_reach_the_server(
    transport: RequestsTransport, base_url: str
) -> None:
    """The server receives the method, query string, headers and body as sent."""
    request = Request(
        "post",
        f"{base_url}/echo?a=1&b=two",
        {"Content-Type": "application/x-www-form-urlencoded", "X-Thing": "42"},
        b"grant_type=password",
    )

    echoed = transport.send(request).json()

    assert echoed["method"] == "POST"
    assert echoed["query"] == "a=1&b=two"
    assert echoed["content_type"] == "application/x-www-form-urlencoded"
    assert echoed["headers"]["HTTP_X_THING"] == "42"
    assert echoed["body"] == "grant_type=password"


def test_user_agent_names_mfaflow_and_requests(
    transport: RequestsTransport, base_url: str
) -> None:
    """The default User-Agent is mfaflow/<version> python-requests/<version>."""
    echoed = transport.send(Request("GET", f"{base_url}/echo")).json()

    expected = f"mfaflow/{__version__} python-requests/{requests.__version__}"
    assert echoed["headers"]["HTTP_USER_AGENT"] == expected
    assert default_user_agent() == expected


def test_a_request_may_set_its_own_user_agent(
    transport: RequestsTransport, base_url: str
) -> None:
    """A User-Agent header on the request wins over the transport's."""
    request = Request("GET", f"{base_url}/echo", {"user-agent": "my-app/2"})

    echoed = transport.send(request).json()

    assert echoed["headers"]["HTTP_USER_AGENT"] == "my-app/2"


def test_redirects_are_returned_not_followed(
    transport: RequestsTransport, base_url: str
) -> None:
    """A 302 comes back with its Location, and the target is not requested."""
    response = transport.send(Request("GET", f"{base_url}/redirect"))

    assert response.status == 302
    assert response.header("Location") == "/echo"
    assert response.json() == {}


def test_repeated_headers_are_kept_apart(
    transport: RequestsTransport, base_url: str
) -> None:
    """Each Set-Cookie header the server sent is its own value."""
    response = transport.send(Request("GET", f"{base_url}/cookie"))

    assert response.header_values("set-cookie") == [
        "session=abc; Path=/",
        "theme=dark; Path=/",
    ]


def test_cookies_are_not_carried_between_requests(
    transport: RequestsTransport, base_url: str
) -> None:
    """A cookie set by one answer is not sent with the next request."""
    transport.send(Request("GET", f"{base_url}/cookie"))

    second = transport.send(Request("GET", f"{base_url}/cookie")).json()

    assert second == {"cookie": None}


def test_a_non_json_body_is_read_and_json_raises_value_error(
    transport: RequestsTransport, base_url: str
) -> None:
    """An HTML error page comes back as a response whose json() raises ValueError."""
    response = transport.send(Request("GET", f"{base_url}/html"))

    assert response.status == 503
    assert b"maintenance" in response.body
    with pytest.raises(ValueError, match=r"^The response body is not JSON: .*\.$"):
        response.json()


def test_refused_connection_is_a_connect_error(transport: RequestsTransport) -> None:
    """A port nobody listens on gives ConnectError naming the URL without its query."""
    url = f"http://127.0.0.1:{closed_port()}/oauth/token"

    with pytest.raises(ConnectError) as caught:
        transport.send(Request("GET", f"{url}?code={SECRET}"))

    assert caught.value.url == url
    assert str(caught.value) == f"{url} refused the connection."
    assert SECRET not in str(caught.value)
    assert isinstance(caught.value.__cause__, requests.RequestException)


def test_an_url_without_a_host_is_a_connect_error(transport: RequestsTransport) -> None:
    """A URL that names no server gives ConnectError, not a requests exception."""
    with pytest.raises(ConnectError, match=r"not an http or https URL with a host\.$"):
        transport.send(Request("GET", "/oauth/token"))


def test_closing_without_answering_is_a_dropped_connection(
    transport: RequestsTransport,
) -> None:
    """A server that reads the request and hangs up may have acted on it."""

    def hang_up(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)

    with serve_raw(hang_up) as url, pytest.raises(ConnectionDropped) as caught:
        transport.send(Request("POST", f"{url}/token", body=b"otp=123456"))

    assert str(caught.value) == (
        f"{url}/token closed the connection without answering; "
        "it may have received the request."
    )
    assert caught.value.phase == "dropped"
    assert caught.value.sent is True
    assert not isinstance(caught.value, ConnectError)


def test_a_reset_after_the_request_is_a_dropped_connection(
    transport: RequestsTransport,
) -> None:
    """A server that resets the connection once it has the request dropped it."""

    def reset(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        # SO_LINGER with a zero timeout makes close() send a reset.
        connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )

    with serve_raw(reset) as url, pytest.raises(ConnectionDropped) as caught:
        transport.send(Request("POST", f"{url}/token", body=b"otp=123456"))

    assert caught.value.sent is True


def test_a_refused_connection_was_not_sent(transport: RequestsTransport) -> None:
    """Refusal is a connect failure: the request certainly did not go out."""
    with pytest.raises(ConnectError) as caught:
        transport.send(Request("POST", f"http://127.0.0.1:{closed_port()}/token"))

    assert caught.value.phase == "connect"
    assert caught.value.sent is False


def test_connecting_too_slowly_is_a_connect_timeout_that_sent_nothing() -> None:
    """A server that never accepts gives ConnectTimeout, a connect failure."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        # With its backlog full, the listener leaves further connections unanswered.
        filler = socket.create_connection(listener.getsockname())
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/token"
        with (
            filler,
            RequestsTransport(connect_timeout=0.3) as transport,
            pytest.raises(ConnectTimeout) as caught,
        ):
            transport.send(Request("POST", url, body=b"otp=123456"))

    assert str(caught.value) == f"Connecting to {url} took longer than 0.3 s."
    assert caught.value.phase == "connect"
    assert caught.value.sent is False
    assert isinstance(caught.value, ConnectError)
    assert isinstance(caught.value, TransportTimeout)


def test_no_answer_within_the_read_timeout_is_a_timeout(base_url: str) -> None:
    """A server that never answers gives TransportTimeout after the read timeout."""

    def stall(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        stop.wait()

    with (
        RequestsTransport(read_timeout=0.2) as transport,
        serve_raw(stall) as url,
        pytest.raises(TransportTimeout) as caught,
    ):
        transport.send(Request("GET", f"{url}/slow"))

    assert str(caught.value) == f"{url}/slow did not answer within 0.2 s."
    assert caught.value.phase == "timeout"
    assert caught.value.sent is True
    assert not isinstance(caught.value, ConnectError)


def test_the_request_timeout_overrides_the_read_timeout(
    transport: RequestsTransport,
) -> None:
    """Request.timeout replaces the transport's (long) read timeout for that request."""

    def stall(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        stop.wait()

    with serve_raw(stall) as url, pytest.raises(TransportTimeout):
        transport.send(Request("GET", f"{url}/slow", timeout=0.2))


def test_a_body_that_stalls_is_a_timeout(transport: RequestsTransport) -> None:
    """A server that sends its head and then stalls gives TransportTimeout."""

    def half_answer(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        stop.wait()

    with serve_raw(half_answer) as url, pytest.raises(TransportTimeout) as caught:
        transport.send(Request("GET", f"{url}/slow", timeout=0.2))

    assert "stopped sending its answer" in str(caught.value)


def drip(first: bytes, drop: bytes) -> Any:
    """A raw handler that sends ``first``, then ``drop`` every 0.05 s until stopped."""

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        connection.sendall(first)
        while not stop.wait(0.05):
            try:
                connection.sendall(drop)
            except OSError:
                return  # the client gave up

    return handle


DRIPS = {
    "head": drip(b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n"),
    "body": drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b" "),
    "chunked-body": drip(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n \r\n"
    ),
}


@pytest.mark.parametrize("part", DRIPS)
def test_an_answer_dripped_byte_by_byte_is_a_timeout_at_the_total_deadline(
    part: str,
) -> None:
    """A server that never pauses long enough for the read timeout is still cut off."""
    with (
        RequestsTransport(read_timeout=5, total_timeout=0.5) as transport,
        serve_raw(DRIPS[part]) as url,
        pytest.raises(TransportTimeout) as caught,
    ):
        transport.send(Request("GET", f"{url}/drip?code={SECRET}"))

    assert (
        str(caught.value) == f"{url}/drip did not send its whole answer within 0.5 s."
    )


def test_a_body_dripped_over_tls_is_a_timeout_at_the_total_deadline(
    tls_files: TLSFiles,
) -> None:
    """The deadline cuts off a TLS connection too, as a timeout."""

    def dripping(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "100000")])
        for _ in range(100_000):
            time.sleep(0.05)
            yield b" "

    with (
        serve_wsgi(dripping, tls=tls_files) as url,
        RequestsTransport(ca_bundle=tls_files.ca_cert, total_timeout=0.5) as sent,
        pytest.raises(TransportTimeout, match=r"whole answer within 0\.5 s\.$"),
    ):
        sent.send(Request("GET", f"{url}/drip"))


def test_the_total_deadline_follows_the_timeouts_by_default() -> None:
    """Without total_timeout, an exchange may take connect plus read timeout."""
    with (
        RequestsTransport(connect_timeout=0.2, read_timeout=0.3) as transport,
        serve_raw(DRIPS["body"]) as url,
        pytest.raises(TransportTimeout, match=r"within 0\.5 s\.$"),
    ):
        transport.send(Request("GET", f"{url}/drip"))


def test_a_dripped_body_is_cut_off_with_a_session_passed_in() -> None:
    """The deadline bounds the body of an answer carried by the caller's session."""
    with (
        requests.Session() as session,
        RequestsTransport(read_timeout=5, total_timeout=0.5, session=session) as sent,
        serve_raw(DRIPS["body"]) as url,
        pytest.raises(TransportTimeout, match=r"whole answer within 0\.5 s\.$"),
    ):
        sent.send(Request("GET", f"{url}/drip"))


def test_a_connection_is_reused_after_an_exchange_within_its_deadline(
    base_url: str,
) -> None:
    """Answers that arrive in time leave the pooled connection usable."""
    with RequestsTransport(total_timeout=0.5) as transport:
        first = transport.send(Request("GET", f"{base_url}/echo"))
        second = transport.send(Request("GET", f"{base_url}/echo"))

    assert (first.status, second.status) == (200, 200)


def test_garbage_instead_of_http_is_a_protocol_error(
    transport: RequestsTransport,
) -> None:
    """A server that answers with something other than HTTP gives ProtocolError."""

    def junk(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        connection.sendall(b"SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n")

    with serve_raw(junk) as url, pytest.raises(ProtocolError) as caught:
        transport.send(Request("GET", f"{url}/token"))

    assert str(caught.value) == f"The answer from {url}/token is not valid HTTP."


def test_a_cut_off_body_is_a_protocol_error(transport: RequestsTransport) -> None:
    """A body cut short of its Content-Length gives ProtocolError."""

    def cut_off(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":')

    with serve_raw(cut_off) as url, pytest.raises(ProtocolError) as caught:
        transport.send(Request("GET", f"{url}/token"))

    assert "broke off before the whole body arrived" in str(caught.value)


def test_a_header_with_a_line_break_is_refused_without_showing_it(
    transport: RequestsTransport, base_url: str
) -> None:
    """A header value with a line break gives ProtocolError naming only the header."""
    request = Request(
        "GET", f"{base_url}/echo", {"Authorization": f"Bearer {SECRET}\r\nX: y"}
    )

    with pytest.raises(ProtocolError) as caught:
        transport.send(request)

    assert "'Authorization'" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Name": f"Jérôme € {SECRET}"}, "'X-Name' has a value that is not Latin-1"),
        ({"Authorization": f"Bearer tok€n{SECRET}"}, "'Authorization' has a value"),
        ({"X-Nämé€": SECRET}, "has a name that is not ASCII"),
    ],
)
@pytest.mark.parametrize("kind", ["requests", "wsgi"])
def test_a_header_http_cannot_carry_is_refused_without_showing_it(
    base_url: str, headers: dict[str, str], problem: str, kind: str
) -> None:
    """A header that is not Latin-1 gives ProtocolError naming only the header."""
    request = Request("GET", f"{base_url}/echo", headers)
    transport: Transport = (
        RequestsTransport(connect_timeout=2, read_timeout=5)
        if kind == "requests"
        else WSGITransport(make_app())
    )

    with pytest.raises(ProtocolError) as caught:
        transport.send(request)

    assert problem in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_method_that_is_not_a_token_is_refused(
    transport: RequestsTransport, base_url: str
) -> None:
    """A method HTTP cannot carry gives ProtocolError, not http.client's ValueError."""
    with pytest.raises(ProtocolError, match=r"its method is not an HTTP token"):
        transport.send(Request("PÖST", f"{base_url}/echo"))


def test_credentials_in_the_url_that_http_cannot_encode_are_refused(
    transport: RequestsTransport, base_url: str
) -> None:
    """User information that Basic auth cannot encode gives ProtocolError."""
    host = base_url.removeprefix("http://")
    request = Request("GET", f"http://us€r:{SECRET}@{host}/echo")

    with pytest.raises(ProtocolError) as caught:
        transport.send(request)

    assert str(caught.value) == (
        f"The request to {base_url}/echo cannot be sent: "
        "it holds text that HTTP cannot encode."
    )


def test_an_announced_oversized_body_is_refused(base_url: str) -> None:
    """A Content-Length above max_body gives ResponseTooLarge at once."""
    with (
        RequestsTransport(max_body=1000) as transport,
        pytest.raises(ResponseTooLarge) as caught,
    ):
        transport.send(Request("GET", f"{base_url}/big?size=5000"))

    assert str(caught.value) == (
        f"The answer from {base_url}/big (it announced 5000 bytes) "
        "is larger than the limit of 1000 bytes."
    )


def test_a_body_at_the_limit_is_read_whole(base_url: str) -> None:
    """A body of exactly max_body bytes is not too large."""
    with RequestsTransport(max_body=1000) as transport:
        response = transport.send(Request("GET", f"{base_url}/big?size=1000"))

    assert response.body == b"y" * 1000


def test_an_endless_body_stops_being_read_at_the_limit() -> None:
    """An endless body is cut at max_body and the connection is dropped."""
    log = StreamLog()
    total = 64 * 65536 * 16

    with (
        serve_wsgi(make_app(log)) as url,
        RequestsTransport(max_body=100_000) as transport,
        pytest.raises(ResponseTooLarge),
    ):
        transport.send(Request("GET", f"{url}/stream?chunks={total // 65536}"))

    assert log.closed.wait(10)
    assert log.sent < total // 2


def test_an_untrusted_certificate_is_a_tls_error(
    tls_files: TLSFiles, no_ca_environment: None, transport: RequestsTransport
) -> None:
    """A certificate from an unknown CA gives TLSError."""
    with (
        serve_wsgi(make_app(), tls=tls_files) as url,
        pytest.raises(TLSError) as caught,
    ):
        transport.send(Request("GET", f"{url}/echo"))

    assert str(caught.value) == (
        f"The TLS handshake with {url}/echo failed or its certificate is not trusted."
    )


def test_ca_bundle_makes_the_certificate_trusted(
    tls_files: TLSFiles, no_ca_environment: None
) -> None:
    """With ca_bundle naming the CA, the HTTPS request succeeds."""
    with (
        serve_wsgi(make_app(), tls=tls_files) as url,
        RequestsTransport(ca_bundle=tls_files.ca_cert) as transport,
    ):
        response = transport.send(Request("GET", f"{url}/status/200"))

    assert response.status == 200


def test_requests_ca_bundle_variable_is_honoured(
    tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch, transport: RequestsTransport
) -> None:
    """REQUESTS_CA_BUNDLE naming the CA makes the certificate trusted by default."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca_cert))

    with serve_wsgi(make_app(), tls=tls_files) as url:
        response = transport.send(Request("GET", f"{url}/status/200"))

    assert response.status == 200


def test_an_explicit_ca_bundle_wins_over_the_variable(
    tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ca_bundle is used even where REQUESTS_CA_BUNDLE would trust the server."""
    other = make_tls_files(tmp_path, name="another test CA")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca_cert))

    with (
        serve_wsgi(make_app(), tls=tls_files) as url,
        RequestsTransport(ca_bundle=other.ca_cert) as transport,
        pytest.raises(TLSError),
    ):
        transport.send(Request("GET", f"{url}/status/200"))


def test_a_missing_ca_bundle_is_refused_up_front(tmp_path: Path) -> None:
    """A ca_bundle path that does not exist is a ValueError naming it."""
    missing = tmp_path / "nope.pem"

    with pytest.raises(ValueError, match="does not exist"):
        RequestsTransport(ca_bundle=missing)


def test_a_ca_bundle_that_is_not_pem_is_refused_up_front(tmp_path: Path) -> None:
    """A file without a PEM certificate is a ValueError, not a TLS failure later."""
    der = tmp_path / "ca.der"
    der.write_bytes(b"0\x82\x01\x0a\x02\x82\x01\x01")

    with pytest.raises(ValueError, match="holds no PEM certificate") as caught:
        RequestsTransport(ca_bundle=der)

    assert str(caught.value) == (
        f"The CA bundle {str(der)!r} holds no PEM certificate (a "
        "'-----BEGIN CERTIFICATE-----' block); give a PEM file."
    )


def test_invalid_max_body_is_refused() -> None:
    """max_body must be a positive integer."""
    with pytest.raises(
        ValueError, match=r"^max_body must be a positive number of bytes, not 0\.$"
    ):
        RequestsTransport(max_body=0)


def test_a_session_passed_in_is_used_and_left_open(base_url: str) -> None:
    """A caller's session carries the requests and is not closed with the transport."""
    with requests.Session() as session:
        session.headers["X-Session"] = "mine"
        with RequestsTransport(session=session) as transport:
            echoed = transport.send(Request("GET", f"{base_url}/echo")).json()
        again = session.get(f"{base_url}/status/200", timeout=5)

    assert echoed["headers"]["HTTP_X_SESSION"] == "mine"
    assert again.status_code == 200


def test_exchanges_are_logged_without_secrets(
    transport: RequestsTransport, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An exchange is logged with method, URL and status, never query or headers."""
    caplog.set_level(logging.DEBUG, logger="mfaflow._transport")
    request = Request(
        "GET", f"{base_url}/echo?code={SECRET}", {"Authorization": SECRET}
    )

    transport.send(request)

    assert f"GET {base_url}/echo answered 200" in caplog.text
    assert SECRET not in caplog.text


# -- Request and Response ------------------------------------------------


def test_request_repr_hides_header_values_query_and_body() -> None:
    """A request's repr shows method, URL path, header names and body length only."""
    request = Request(
        "POST",
        f"https://user:{SECRET}@tenant.example/oauth/token?password={SECRET}",
        {"Authorization": f"Bearer {SECRET}", "Cookie": f"s={SECRET}"},
        f"password={SECRET}".encode(),
    )

    shown = repr(request)

    assert SECRET not in shown
    assert shown == (
        "Request(method='POST', url='https://tenant.example/oauth/token', "
        "headers=['Authorization', 'Cookie'], body=<26 bytes>, timeout=None)"
    )


def test_response_repr_hides_header_values_and_body() -> None:
    """A response's repr shows status, header names and body length only."""
    response = Response(200, {"Set-Cookie": f"s={SECRET}"}, SECRET.encode())

    assert repr(response) == (
        "Response(status=200, headers=['Set-Cookie'], body=<17 bytes>)"
    )


def test_response_headers_are_looked_up_in_any_case() -> None:
    """header() ignores case and joins repeated values; absent headers are None."""
    response = Response(
        200, [("WWW-Authenticate", "Bearer"), ("www-authenticate", "Basic")]
    )

    assert response.header("Www-Authenticate") == "Bearer, Basic"
    assert response.header("Location") is None


def test_json_response_builds_a_json_answer() -> None:
    """Response.json_response sets the status, a JSON content type and the body."""
    response = Response.json_response(403, {"error": "mfa_required"}, {"X-Id": "1"})

    assert response.status == 403
    assert response.header("Content-Type") == "application/json"
    assert response.header("X-Id") == "1"
    assert response.json() == {"error": "mfa_required"}


def test_an_empty_body_is_not_json() -> None:
    """json() on an empty body raises ValueError saying it is empty."""
    with pytest.raises(ValueError, match=r"^The response body is empty, not JSON\.$"):
        Response(200).json()


@given(st.binary(max_size=200))
def test_json_raises_only_value_error_and_never_quotes_the_body(body: bytes) -> None:
    """For any body, json() parses or raises ValueError that never quotes the body."""
    try:
        Response(200, (), body).json()
    except ValueError as exc:
        message = str(exc)
    else:
        message = "parsed."
    with pytest.raises(ValueError, match=r"^The response body is not JSON") as caught:
        Response(200, (), SECRET.encode() + body).json()

    assert message.endswith(".")
    assert SECRET not in str(caught.value)


def test_deeply_nested_json_is_a_value_error() -> None:
    """A body nested too deeply to parse raises ValueError, not RecursionError."""
    with pytest.raises(ValueError, match=r"nested too deeply to parse\.$"):
        Response(200, (), b"[" * 200_000).json()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"a": NaN}', "holds NaN"),
        (b"[Infinity]", "holds Infinity"),
        (b'{"a": -Infinity}', "holds -Infinity"),
        (b'{"a": 1e400}', "too large for a float"),
        (b"[" + b"9" * 5000 + b"]", "too long to read"),
    ],
)
def test_json_refuses_numbers_no_json_document_can_hold(body: bytes, said: str) -> None:
    """NaN, infinities and overlong numbers raise ValueError, as the stores need."""
    with pytest.raises(ValueError, match=r"^The response body is not JSON: ") as caught:
        Response(200, (), body).json()

    assert said in str(caught.value)


def test_safe_url_drops_credentials_query_and_fragment() -> None:
    """safe_url keeps scheme, host, port and path only."""
    url = f"https://me:{SECRET}@host.example:8443/a/b?code={SECRET}#frag"

    assert safe_url(url) == "https://host.example:8443/a/b"


# -- WSGITransport ---------------------------------------------------------


def test_wsgi_transport_builds_a_pep_3333_environ() -> None:
    """The app sees method, path, query, host, port, scheme, headers and body."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("201 Created", [("X-Id", "7")])
        return [b"made"]

    transport = WSGITransport(app)
    request = Request(
        "put",
        "https://tenant.example:8443/a%20b/c?x=1&y=%20",
        {"Content-Type": "application/json", "X-Request-Id": "r1"},
        b'{"k": 1}',
    )

    response = transport.send(request)

    assert (response.status, response.header("x-id"), response.body) == (
        201,
        "7",
        b"made",
    )
    assert seen["REQUEST_METHOD"] == "PUT"
    assert seen["PATH_INFO"] == "/a b/c"
    assert seen["QUERY_STRING"] == "x=1&y=%20"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("tenant.example", "8443")
    assert seen["HTTP_HOST"] == "tenant.example:8443"
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["CONTENT_TYPE"] == "application/json"
    assert seen["CONTENT_LENGTH"] == "8"
    assert seen["HTTP_X_REQUEST_ID"] == "r1"
    assert seen["body"] == b'{"k": 1}'


def test_wsgi_transport_resolves_relative_urls_against_base_url() -> None:
    """A relative URL is sent to base_url's host, default port of its scheme."""
    transport = WSGITransport(make_app(), base_url="https://tenant.example")

    echoed = transport.send(Request("GET", "/echo?q=1")).json()

    assert echoed["path"] == "/echo"
    assert echoed["query"] == "q=1"
    assert echoed["headers"]["HTTP_HOST"] == "tenant.example"


def test_wsgi_transport_gives_the_same_answers_as_http(base_url: str) -> None:
    """The in-process transport and real HTTP give the same status, headers and body."""
    in_process = WSGITransport(make_app(), base_url=base_url)

    with RequestsTransport() as over_http:
        for path in ("/status/418", "/redirect", "/cookie", "/html"):
            local = in_process.send(Request("GET", path))
            remote = over_http.send(Request("GET", base_url + path))
            assert (local.status, local.body) == (remote.status, remote.body)
            assert local.header_values("Set-Cookie") == remote.header_values(
                "Set-Cookie"
            )
            assert local.header("Location") == remote.header("Location")


def test_wsgi_app_crash_is_a_protocol_error() -> None:
    """An exception in the app becomes ProtocolError caused by it."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("password")

    with pytest.raises(ProtocolError) as caught:
        WSGITransport(app).send(Request("POST", "/oauth/token?x=1"))

    assert str(caught.value) == (
        "The WSGI application raised KeyError while answering "
        "POST http://localhost/oauth/token."
    )
    assert isinstance(caught.value.__cause__, KeyError)


def test_wsgi_body_over_the_limit_is_too_large_and_the_iterable_is_closed() -> None:
    """A body over max_body gives ResponseTooLarge, and the app's iterable is closed."""
    log = StreamLog()
    transport = WSGITransport(make_app(log), max_body=100_000)

    with pytest.raises(ResponseTooLarge):
        transport.send(Request("GET", "/stream?chunks=1000"))

    assert log.closed.is_set()
    assert log.sent <= 2 * 65536


def test_wsgi_write_callable_and_exc_info_restart_are_supported() -> None:
    """write() bytes come first; start_response may restart with exc_info."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise RuntimeError("late failure")
        except RuntimeError:
            write = start_response("500 Oops", [("X-Error", "1")], sys.exc_info())
        write(b"partial ")
        return [b"error page"]

    response = WSGITransport(app).send(Request("GET", "/"))

    assert (response.status, response.header("X-Error")) == (500, "1")
    assert response.body == b"partial error page"


@pytest.mark.parametrize(
    ("app_status", "expected"),
    [
        (None, "never called start_response"),
        ("OK", "gave the status 'OK'"),
    ],
)
def test_wsgi_protocol_violations_are_protocol_errors(
    app_status: str | None, expected: str
) -> None:
    """An app without start_response or with a bad status gives ProtocolError."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if app_status is not None:
            start_response(app_status, [])
        return []

    with pytest.raises(ProtocolError, match=expected):
        WSGITransport(app).send(Request("GET", "/"))


# -- MockTransport ---------------------------------------------------------


def test_mock_transport_answers_with_the_handler() -> None:
    """The handler receives the request and its response is returned."""
    received: list[Request] = []

    def handler(request: Request) -> Response:
        received.append(request)
        return Response.json_response(200, {"access_token": "at"})

    transport = MockTransport(handler)
    request = Request("POST", "https://t.example/oauth/token", body=b"x")

    response = transport.send(request)

    assert received == [request]
    assert response.json() == {"access_token": "at"}
    assert isinstance(transport, Transport)


def test_mock_transport_lets_transport_errors_through() -> None:
    """A TransportError raised by the handler reaches the caller as it is."""
    timeout = TransportTimeout("t.example did not answer within 1 s.", url="t.example")

    def handler(request: Request) -> Response:
        raise timeout

    with pytest.raises(TransportTimeout) as caught:
        MockTransport(handler).send(Request("GET", "https://t.example/"))

    assert caught.value is timeout


def test_mock_transport_lets_handler_bugs_through_unchanged() -> None:
    """Any other exception from the handler propagates unchanged."""

    def handler(request: Request) -> Response:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        MockTransport(handler).send(Request("GET", "https://t.example/"))


def test_mock_transport_refuses_a_handler_that_returns_no_response() -> None:
    """A handler that returns no Response gives a TypeError naming the type."""
    # Deliberately wrong: the point is what happens at run time.
    transport = MockTransport(lambda request: {"status": 200})  # type: ignore[arg-type,return-value]

    with pytest.raises(TypeError, match=r"must return a Response, not dict\.$"):
        transport.send(Request("GET", "https://t.example/"))


def test_every_transport_error_is_a_transport_error() -> None:
    """The phase-named errors share TransportError, to be caught together."""
    for kind in (
        ConnectError,
        ConnectTimeout,
        ConnectionDropped,
        TLSError,
        TransportTimeout,
        ResponseTooLarge,
        ProtocolError,
    ):
        assert issubclass(kind, TransportError)


@pytest.mark.parametrize("seconds", [math.nan, math.inf, 1e308, 0, -1])
@pytest.mark.parametrize("name", ["connect_timeout", "read_timeout", "total_timeout"])
def test_timeouts_out_of_bounds_are_refused_up_front(name: str, seconds: float) -> None:
    """A timeout the socket would choke on is a ValueError naming it, at once."""
    with pytest.raises(ValueError, match=rf"^{name} must be a number of seconds above"):
        RequestsTransport(**{name: seconds})
