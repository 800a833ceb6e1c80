"""The tenant's logs never hold a password, secret, token or code, nor request data."""

from __future__ import annotations

import logging
import socket

import pytest
from _pagekit import Browser, Pkce, authorize_url, page_of, redirect_params
from _servers import read_request_head
from _tenantkit import Api, error_of

from mfaflow.tenant import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    MFA_OOB,
    MFA_RECOVERY_CODE,
    PASSWORD,
    REFRESH_TOKEN,
    LoopbackServer,
)

CALLBACK = "http://127.0.0.1:45123/callback"


def _run_everything(api: Api) -> list[str]:
    """Log in, enrol, challenge, refresh and recover; return every secret seen."""
    secrets: list[str] = [DEMO_PASSWORD, DEMO_SERVER_CLIENT_SECRET]
    mfa_token = api.mfa_token()
    enrolment = api.associate(mfa_token, authenticator_types=["otp"])
    otp = api.totp(enrolment["secret"])
    tokens = api.verify_otp(mfa_token, otp).json()
    secrets += [mfa_token, enrolment["secret"], otp, *enrolment["recovery_codes"]]
    secrets += [tokens["access_token"], tokens["id_token"], tokens["refresh_token"]]

    api.verify_otp(api.mfa_token(), otp)  # a reused code, refused
    refreshed = api.token(
        grant_type=REFRESH_TOKEN, refresh_token=tokens["refresh_token"]
    )
    secrets.append(refreshed.json()["refresh_token"])

    access = api.mfa_api_token(enrolment["secret"])["access_token"]
    sms = api.associate_sms(access, "+15550007777")
    code = api.tenant.last_code(api.tenant.outbox.messages()[-1].user_id, "sms")
    api.token(
        grant_type=MFA_OOB,
        mfa_token=access,
        oob_code=sms["oob_code"],
        binding_code=code,
    )
    secrets += [access, sms["oob_code"], code]

    recovered = api.token(
        grant_type=MFA_RECOVERY_CODE,
        mfa_token=api.mfa_token(),
        recovery_code=enrolment["recovery_codes"][0],
    ).json()
    secrets += [recovered["recovery_code"], recovered["access_token"]]

    api.session.post(
        api.url + "oauth/token",
        data={"grant_type": PASSWORD, "username": "x@example.test", "password": "p"},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )
    return secrets


def test_no_secret_reaches_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """A full flow logged at DEBUG leaves no secret value in any log record."""
    caplog.set_level(logging.DEBUG)

    secrets = _run_everything(api)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert any(r.name.startswith("mfaflow.tenant") for r in caplog.records)
    leaked = [secret[:6] + "..." for secret in secrets if secret in logged]
    assert leaked == []


def test_reprs_hide_secrets(api: Api) -> None:
    """Reprs of users, authenticators, messages and enrolments show no secret."""
    mfa_token = api.mfa_token()
    enrolment = api.associate_sms(mfa_token, "+15550001111")
    tenant = api.tenant
    user = tenant.find_user("demo@example.test")
    assert user is not None
    message = tenant.outbox.messages()[-1]
    otp = tenant.enrol(user.id, "otp")

    shown = " ".join(
        repr(item)
        for item in (user, message, otp, *tenant.authenticators(user.id), tenant.config)
    )

    for secret in (user.password_hash, message.code, otp.secret, enrolment["oob_code"]):
        assert secret
        assert secret not in shown


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def test_login_pages_log_no_secret(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Signing in through the pages, enrolling OTP, logs no password, key or code."""
    caplog.set_level(logging.DEBUG)
    browser = Browser(api.url)
    pkce = Pkce.new()
    login = page_of(browser.get(authorize_url(api.url, pkce, redirect_uri=CALLBACK)))
    csrf = login.form("/u/login").fields["csrf"]
    enrol = page_of(
        browser.submit(login.form("/u/login"), email=DEMO_EMAIL, password=DEMO_PASSWORD)
    )
    secret = enrol.text("secret").replace(" ", "")
    otp = api.totp(secret)
    shown = page_of(browser.submit(enrol.form("/u/enrol"), code=otp))
    [recovery_code] = shown.text_of_class("recovery-code")
    back = browser.submit(shown.form("/u/recovery-code"))
    code = redirect_params(back)["code"]
    cookies = [cookie.value for cookie in browser.session.cookies if cookie.value]
    browser.close()

    secrets = [DEMO_PASSWORD, csrf, secret, otp, recovery_code, code, *cookies]
    logged = _logged(caplog)
    assert "/u/enrol" in logged
    assert [s[:6] + "..." for s in secrets if s in logged] == []


def test_push_approval_logs_no_secret(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Enrolling push, polling, approving and completing logs no token or code."""
    caplog.set_level(logging.DEBUG)
    mfa_token = api.mfa_token()
    enrolment = api.associate(
        mfa_token, authenticator_types=["oob"], oob_channels=["auth0"]
    )
    poll = {"grant_type": MFA_OOB, "mfa_token": mfa_token}
    api.token(**poll, oob_code=enrolment["oob_code"])
    pushes = api.get("__control/pushes").json()["pushes"]
    api.post("__control/pushes/approve", {"id": pushes[0]["id"]})
    tokens = api.token(**poll, oob_code=enrolment["oob_code"]).json()

    secrets = [mfa_token, enrolment["oob_code"], enrolment["barcode_uri"]]
    secrets += [tokens["access_token"], tokens["refresh_token"]]
    secrets += enrolment["recovery_codes"]
    logged = _logged(caplog)
    assert "Push" in logged
    assert [s[:6] + "..." for s in secrets if s in logged] == []


@pytest.mark.parametrize(
    "raw",
    [
        b"username=demo&password=HUNTER2SECRET\r\n\r\n",
        b"GET /authorize?code=HUNTER2SECRET HTTP/1.1 trailing\r\n\r\n",
        b"POST /oauth/token?password=HUNTER2SECRET HTTP/9\r\n\r\n",
        b"GET /" + b"HUNTER2SECRET" * 6000 + b" HTTP/1.1\r\n\r\n",
    ],
    ids=["form-as-request-line", "bad-version", "bad-protocol", "too-long"],
)
def test_malformed_requests_are_logged_without_their_content(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    """A request line the server cannot parse is logged by its status alone."""
    caplog.set_level(logging.DEBUG)

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(raw)
        answer = read_request_head(client)

    assert answer  # the HTTP server's own error answer, before the tenant
    logged = _logged(caplog)
    assert "HTTP server: refused a malformed request (4" in logged
    assert "HUNTER2" not in logged
    assert "Bad request" not in logged


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        (b"/%0aHUNTER2SECRET", "/%0AHUNTER2SECRET"),
        (b"/%0d%0aHUNTER2SECRET", "/%0D%0AHUNTER2SECRET"),
        (b"/%e2%80%a8HUNTER2SECRET", "/%E2%80%A8HUNTER2SECRET"),
        (b"/\x1b[2JHUNTER2SECRET", "/%1B[2JHUNTER2SECRET"),
    ],
    ids=["newline", "carriage-return", "line-separator", "escape-sequence"],
)
def test_control_characters_in_paths_cannot_forge_log_lines(
    server: LoopbackServer,
    caplog: pytest.LogCaptureFixture,
    target: bytes,
    shown: str,
) -> None:
    """A path with a newline or escape sequence is logged on one line, encoded."""
    caplog.set_level(logging.DEBUG)

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_request_head(client)

    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("mfaflow")
    ]
    assert answer.startswith(b"HTTP/1.1 404")
    assert [line for line in lines if not line.isprintable()] == []
    assert [line for line in lines if shown in line]


@pytest.mark.parametrize(
    ("body", "described"),
    [
        (
            {"email": "a\nforged@example.test", "password": "pw-123456789"},
            "email must not hold control characters; got 'a\\nforged@example.test'.",
        ),
        (
            {"email": "b@example.test", "password": "pw-123456789", "id": "x\ny"},
            "id must not hold control characters; got 'x\\ny'.",
        ),
    ],
    ids=["email", "id"],
)
def test_user_names_with_control_characters_are_refused(
    api: Api, body: dict[str, str], described: str
) -> None:
    """An email or user id with a newline, which logs would show, answers 400."""
    answer = api.post("__control/users", body)

    assert error_of(answer) == (400, "invalid_request", described)
