"""The login the tests drive: a flow that waits for a code, and its server.

The flow signs in with a password, gets ``mfa_required``, waits for a
one-time code and exchanges it for an access token; a wrong password, a
wrong code and an unreachable server each have a way out. :func:`token_endpoint`
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
    "OTP_GRANT",
    "PASSWORD",
    "RECOVERY_CODE",
    "SECRETS",
    "USERNAME",
    "token_endpoint",
]

CLIENT_ID = "login-test-client"
USERNAME = "alice@example.com"
PASSWORD = "pw-never-shown-93kd"
MFA_TOKEN = "mfa-token-never-shown-4f0a"
OTP = "246810"
ACCESS_TOKEN = "access-token-never-shown-77c2"
#: Handed out with the access token; a flow shows it only if it outputs it.
RECOVERY_CODE = "RECOVERYCODESHOWNONCE2468"
#: Every secret the login handles.
SECRETS = (PASSWORD, MFA_TOKEN, OTP, ACCESS_TOKEN)
OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp"
FLOW_NAME = "otp-login"
FLOW = """\
mfaflow: 1
name: otp-login
summary: Password grant, then a one-time code.
description: Signs a user in with a password and a code from their app.
inputs:
  username: {description: The user's email address.}
  password: {secret: true}
  scope: {default: openid profile}
data:
  mfa_token: {secret: true}
  tokens: {secret: true}
  problem: {}
outputs:
  access_token: {secret: true, description: The API access token.}
  user: {}
initial: request_token
states:
  request_token:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: password
        username: ${inputs.username}
        password: ${inputs.password}
        scope: ${inputs.scope}
        client_id: ${client.client_id}
        client_secret: ${client.client_secret}
    on:
      ok: {to: done, save: {tokens: '${response.body}'}}
      mfa_required: {to: ask_code, save: {mfa_token: '${response.body.mfa_token}'}}
      invalid_grant: {to: rejected, save: {problem: '${error.description}'}}
      transport.*: unreachable
  ask_code:
    input:
      otp: {prompt: One-time code, secret: true, pattern: '^[0-9]{6}$'}
    on: {ok: verify}
  verify:
    call:
      method: POST
      url: /oauth/token
      form:
        grant_type: http://auth0.com/oauth/grant-type/mfa-otp
        mfa_token: ${data.mfa_token}
        otp: ${inputs.otp}
        client_id: ${client.client_id}
        client_secret: ${client.client_secret}
    on:
      ok: {to: done, save: {tokens: '${response.body}'}}
      invalid_grant: ask_code
      transport.*: unreachable
  done:
    final: true
    message: Signed in.
    output:
      access_token: ${data.tokens.access_token}
      user: ${inputs.username}
  rejected:
    final: true
    outcome: failure
    message: ${data.problem}
  unreachable:
    final: true
    outcome: failure
    message: The authorization server could not be reached.
"""


def token_endpoint(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """The token endpoint: the password gets mfa_required, the code a token."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size).decode()
    fields = {name: values[0] for name, values in parse_qs(body).items()}
    status, answer = _answer(environ["PATH_INFO"], fields)
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]


def _answer(path: str, fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    if path != "/oauth/token":
        return "404 Not Found", {"error": "not_found"}
    if fields.get("client_id") != CLIENT_ID:
        return "401 Unauthorized", {
            "error": "access_denied",
            "error_description": "Unknown client.",
        }
    if fields.get("grant_type") == "password":
        if fields.get("username") == USERNAME and fields.get("password") == PASSWORD:
            return "403 Forbidden", {"error": "mfa_required", "mfa_token": MFA_TOKEN}
        return "403 Forbidden", {
            "error": "invalid_grant",
            "error_description": "Wrong email or password.",
        }
    if fields.get("grant_type") == OTP_GRANT and fields.get("mfa_token") == MFA_TOKEN:
        if fields.get("otp") == OTP:
            return "200 OK", {
                "access_token": ACCESS_TOKEN,
                "token_type": "Bearer",
                "recovery_code": RECOVERY_CODE,
            }
        return "403 Forbidden", {
            "error": "invalid_grant",
            "error_description": "Invalid otp_code.",
        }
    return "400 Bad Request", {"error": "invalid_request"}
