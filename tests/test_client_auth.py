"""Client authentication: ``client_auth`` calls, HTTP Basic or the body, on the wire."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from mfaflow import (
    Client,
    DefinitionErrors,
    Engine,
    MockTransport,
    Request,
    Response,
    RunError,
    parse_flow,
)
from mfaflow._cli import cli

ISSUER = "https://tenant.example.test/"
CLIENT_ID = "server app"
#: A secret with characters that form-urlencoding changes (RFC 6749 2.3.1).
SECRET = "p:ss w/rd+é&=1"
PUBLIC_ID = "public-app"
PASSWORD = "correct horse battery staple"
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
API = "https://api.example.test/"
START = 1_750_000_123.0


def basic(client_id: str, secret: str) -> str:
    """The Authorization header RFC 6749 2.3.1 asks for, worked out by hand."""
    encode = {
        " ": "+",
        ":": "%3A",
        "/": "%2F",
        "+": "%2B",
        "é": "%C3%A9",
        "&": "%26",
        "=": "%3D",
    }
    pair = "".join(encode.get(c, c) for c in client_id) + ":"
    pair += "".join(encode.get(c, c) for c in secret)
    return "Basic " + base64.b64encode(pair.encode()).decode()


# -- the request the engine builds --------------------------------------------

FLOW = """
mfaflow: 1
name: calls
inputs:
  which: {}
initial: route
states:
  route:
    on:
      ok:
        - {to: token, when: {equals: ['${inputs.which}', token]}}
        - {to: challenge, when: {equals: ['${inputs.which}', challenge]}}
        - {to: associate}
  token:
    call:
      method: POST
      url: /oauth/token
      client_auth: true
      form: {grant_type: password, username: ann}
    on: {ok: done}
  challenge:
    call:
      method: POST
      url: /mfa/challenge
      client_auth: true
      json: {client_id: '${client.client_id}', mfa_token: tok}
    on: {ok: done}
  associate:
    call:
      method: POST
      url: /mfa/associate
      bearer: the-mfa-token
      client_auth: true
      json: {authenticator_types: [otp]}
    on: {ok: done}
  done: {final: true}
"""


def sent(client: Client, which: str) -> Request:
    """The request the state ``which`` of FLOW sends for ``client``."""
    seen: list[Request] = []

    def handle(request: Request) -> Response:
        seen.append(request)
        return Response(200, {"Content-Type": "application/json"}, b"{}")

    engine = Engine(client, transport=MockTransport(handle))
    engine.start(parse_flow(FLOW), {"which": which})
    (request,) = [r for r in seen if "well-known" not in r.url]
    return request


def form_of(request: Request) -> dict[str, str]:
    """The form fields of a request, one value each."""
    return {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}


def test_basic_puts_the_form_urlencoded_id_and_secret_in_the_header():
    """With basic, the token call has the Basic header and neither id nor secret
    in its body."""
    client = Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic")

    request = sent(client, "token")

    assert request.header("Authorization") == basic(CLIENT_ID, SECRET)
    assert form_of(request) == {"grant_type": "password", "username": "ann"}


def test_post_puts_the_id_and_secret_in_the_form():
    """By default a confidential client sends its id and secret in the body."""
    request = sent(Client(ISSUER, CLIENT_ID, SECRET), "token")

    assert request.header("Authorization") is None
    assert form_of(request) == {
        "grant_type": "password",
        "username": "ann",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


@pytest.mark.parametrize("method", ["post", "basic"])
def test_a_public_client_sends_only_its_id(method: str):
    """A client without a secret sends its client_id, however it is configured."""
    request = sent(Client(ISSUER, PUBLIC_ID, client_auth=method), "token")

    assert request.header("Authorization") is None
    assert form_of(request)["client_id"] == PUBLIC_ID
    assert "client_secret" not in form_of(request)


def test_a_json_body_keeps_its_client_id_beside_the_basic_header():
    """/mfa/challenge takes client_id in its JSON: basic adds the header only."""
    request = sent(Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic"), "challenge")

    assert request.header("Authorization") == basic(CLIENT_ID, SECRET)
    assert json.loads(request.body or b"") == {
        "client_id": CLIENT_ID,
        "mfa_token": "tok",
    }


def test_a_call_with_a_bearer_token_carries_the_credentials_in_its_body():
    """The Authorization header of a bearer call is taken, so basic falls back
    to the body."""
    request = sent(Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic"), "associate")

    assert request.header("Authorization") == "Bearer the-mfa-token"
    assert json.loads(request.body or b"") == {
        "authenticator_types": ["otp"],
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


def test_an_unknown_method_is_refused():
    """Client refuses a client_auth other than post or basic, naming the choices."""
    with pytest.raises(ValueError, match=r"one of 'post', 'basic', not 'jwt'\.$"):
        Client(ISSUER, CLIENT_ID, SECRET, client_auth="jwt")


def test_the_secret_stays_out_of_the_repr():
    """The repr of a client shows how it authenticates, never its secret."""
    shown = repr(Client(ISSUER, CLIENT_ID, SECRET, client_auth="basic"))

    assert SECRET not in shown
    assert "client_auth='basic'" in shown


def test_a_json_body_filled_in_as_a_list_stops_the_run():
    """A json reference that gives no object fails the run with a clear error."""
    flow = parse_flow(
        """
mfaflow: 1
name: listed
inputs:
  body: {}
initial: send
states:
  send:
    call: {method: POST, url: /x, client_auth: true, json: '${inputs.body}'}
    on: {ok: done}
  done: {final: true}
"""
    )
    engine = Engine(Client(ISSUER, CLIENT_ID, SECRET), transport=MockTransport(None))

    with pytest.raises(RunError) as caught:
        engine.start(flow, {"body": ["a", "b"]})

    assert str(caught.value) == (
        "The json of the state 'send' must be an object to carry the client's "
        "credentials (client_auth), not a list."
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "{url: /x, client_auth: true}",
            "7:21: 'call' of state 'send' has 'client_auth' but no 'form' or 'json'",
        ),
        (
            "{url: /x, client_auth: true, json: [1]}",
            "7:46: 'json' in 'call' of state 'send' must be an object, or one "
            "reference giving one",
        ),
        (
            "{url: /x, client_auth: true, form: {client_secret: s}}",
            "7:47: 'call' of state 'send' has 'client_auth' and writes "
            "'client_secret' in its 'form'",
        ),
    ],
)
def test_a_call_that_cannot_carry_the_credentials_is_a_definition_error(
    call: str, message: str
):
    """client_auth without a body, beside a json list, or beside a hand-written
    client_secret is refused where it is written."""
    text = f"""
mfaflow: 1
name: broken
initial: send
states:
  send:
    call: {call}
    on: {{ok: done}}
  done: {{final: true}}
"""
    with pytest.raises(DefinitionErrors) as caught:
        parse_flow(text, "broken.yaml")

    assert str(caught.value).startswith(f"broken.yaml:{message}")


# -- the command line ---------------------------------------------------------


def test_the_cli_refuses_an_unknown_method():
    """--client-auth takes basic or post, and says so."""
    result = CliRunner().invoke(
        cli,
        [
            *("run", "password-grant", "--issuer", ISSUER, "--client-id", CLIENT_ID),
            *("--client-auth", "jwt"),
        ],
    )

    assert result.exit_code == 2
    assert "'jwt' is not one of 'post', 'basic'" in result.output
