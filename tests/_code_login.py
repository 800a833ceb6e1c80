"""A small login for tests of stores: a flow that waits for a code, and its server.

The flow signs in with a password, gets ``mfa_required``, waits for a
one-time code and exchanges it for an access token. :func:`token_endpoint`
is the WSGI app that answers it, in process (``WSGITransport``) or served
on loopback. Every secret of the exchange is a known string, so that tests
can look for it where it must not be.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "ACCESS_TOKEN",
    "CLIENT_ID",
    "FLOW",
    "FLOW_NAME",
    "MFA_TOKEN",
    "OTP",
    "PASSWORD",
    "SECRETS",
    "token_endpoint",
]

CLIENT_ID = "store-test-client"
PASSWORD = "pw-kept-sealed-71c2"
MFA_TOKEN = "mfa-token-kept-sealed-2f1c"
OTP = "482913"
ACCESS_TOKEN = "access-token-kept-sealed-8d3a"
#: Every secret the login handles.
SECRETS = (PASSWORD, MFA_TOKEN, OTP, ACCESS_TOKEN)
FLOW_NAME = "code-login"
FLOW = """\
mfaflow: 1
name: code-login
summary: A password, then a one-time code.
inputs:
  username: {}
  password: {secret: true}
data:
  mfa_token: {secret: true}
  tokens: {secret: true}
outputs:
  access_token: {secret: true}
initial: request_token
states:
  request_token:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: password
        client_id: ${client.client_id}
        username: ${inputs.username}
        password: ${inputs.password}
    on:
      mfa_required: {to: ask_code, save: {mfa_token: '${response.body.mfa_token}'}}
  ask_code:
    input:
      otp: {prompt: One-time code, secret: true}
    on: {ok: verify}
  verify:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: http://auth0.com/oauth/grant-type/mfa-otp
        client_id: ${client.client_id}
        mfa_token: ${data.mfa_token}
        otp: ${inputs.otp}
    on:
      ok: {to: done, save: {tokens: '${response.body}'}}
  done:
    final: true
    message: Signed in.
    output:
      access_token: ${data.tokens.access_token}
"""


def token_endpoint(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """The token endpoint: the password gets mfa_required, the code a token."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size).decode()
    fields = {name: values[0] for name, values in parse_qs(body).items()}
    status, answer = _answer(fields)
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]


def _answer(fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    if fields.get("client_id") != CLIENT_ID:
        return "401 Unauthorized", {"error": "access_denied"}
    if fields.get("password") == PASSWORD:
        return "403 Forbidden", {"error": "mfa_required", "mfa_token": MFA_TOKEN}
    if fields.get("otp") == OTP and fields.get("mfa_token") == MFA_TOKEN:
        return "200 OK", {"access_token": ACCESS_TOKEN, "token_type": "Bearer"}
    return "400 Bad Request", {"error": "invalid_request"}
