"""The password-grant flow: signing in with a password, and every way it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import jwt
import pytest
from _flow_helpers import (
    API,
    BROWSER_CLIENT,
    PASSWORD,
    SCRIPTED_MFA_TOKEN,
    SCRIPTED_TOKENS,
    START,
    Answer,
    Driver,
    Scripted,
    assert_unreachable,
    base_config,
    edges,
    scripted_driver,
    scripted_mfa,
)
from _servers import closed_port, serve_wsgi

from mfaflow import InputError, RunResult
from mfaflow.tenant import Limit


def claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the tenant's own tests check signatures)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_user_without_mfa_gets_tokens(driver: Driver, logs: pytest.LogCaptureFixture):
    """A user the tenant signs in without MFA ends signed in with every token."""
    result = driver.start(
        "password-grant", username="plain@example.test", password=PASSWORD
    )

    assert result.outcome == "success"
    assert result.state == "signed_in"
    assert result.message == "Signed in as plain@example.test."
    outputs = result.outputs
    assert claims(outputs["access_token"])["aud"][0] == API
    assert claims(outputs["id_token"])["email"] == "plain@example.test"
    assert outputs["refresh_token"]
    assert outputs["token_type"] == "Bearer"
    assert outputs["expires_in"] == 86400
    assert "offline_access" in outputs["scope"].split()
    assert outputs["recovery_code"] is None
    assert [entry.state for entry in result.history] == [
        "prepare",
        "request_token",
        "signed_in",
    ]
    driver.assert_no_secret_leaked(logs)


def test_confidential_client_sends_its_secret(
    server_driver: Driver, logs: pytest.LogCaptureFixture
):
    """A client with a secret authenticates with it and is signed in."""
    result = server_driver.start(
        "password-grant", username="plain@example.test", password=PASSWORD
    )

    assert result.outcome == "success"
    assert claims(result.outputs["access_token"])["azp"] == "flows-server"
    server_driver.assert_no_secret_leaked(logs)


def test_realm_uses_the_password_realm_grant(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Giving a realm signs in with the password-realm grant."""
    result = driver.start(
        "password-grant",
        username="plain@example.test",
        password=PASSWORD,
        realm="Username-Password-Authentication",
    )

    assert result.outcome == "success"
    document = driver.engine.store.load(result.run_id).document
    assert (
        document["frames"][0]["data"]["grant_type"]
        == "http://auth0.com/oauth/grant-type/password-realm"
    )
    driver.assert_no_secret_leaked(logs)


def test_unknown_realm_is_a_bad_request(driver: Driver, logs: pytest.LogCaptureFixture):
    """A realm the tenant does not have ends as a malformed request."""
    result = driver.start(
        "password-grant",
        username="plain@example.test",
        password=PASSWORD,
        realm="no-such-connection",
    )

    assert (result.outcome, result.state) == ("failure", "bad_request")
    assert result.outputs["error"] == "invalid_request"
    assert "no-such-connection" in result.outputs["error_description"]
    assert result.message == (
        "The tenant refused the request as malformed (invalid_request); "
        "error_description says why."
    )
    driver.assert_no_secret_leaked(logs)


def test_wrong_password_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A wrong password ends in wrong_password with a one-line message."""
    result = driver.start(
        "password-grant", username="plain@example.test", password="not-the-password"
    )

    assert (result.outcome, result.state) == ("failure", "wrong_password")
    assert result.message == "The username or password is wrong."
    assert result.outputs["error"] == "invalid_grant"
    driver.assert_no_secret_leaked(logs)


def test_unknown_audience_is_denied(driver: Driver, logs: pytest.LogCaptureFixture):
    """An audience the tenant does not know ends as denied, with the tenant's reason."""
    result = driver.start(
        "password-grant",
        username="plain@example.test",
        password=PASSWORD,
        audience="https://unknown.example.test/",
    )

    assert (result.outcome, result.state) == ("failure", "denied")
    assert result.outputs["error"] == "access_denied"
    assert "Service not found" in result.outputs["error_description"]
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("client_id", "error"),
    [("no-such-client", "invalid_client"), (BROWSER_CLIENT, "unauthorized_client")],
)
def test_client_the_tenant_refuses_fails(
    serve: Callable[..., Driver],
    logs: pytest.LogCaptureFixture,
    client_id: str,
    error: str,
):
    """An unknown client, or one without the password grant, ends as client_rejected."""
    driver = serve(client_id)

    result = driver.start(
        "password-grant", username="plain@example.test", password=PASSWORD
    )

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs["error"] == error
    assert result.message == (
        f"The tenant did not accept the application ({error}); check the client id, "
        "the client secret and the grant types the application may use."
    )
    driver.assert_no_secret_leaked(logs)


# -- the tenant's attack protection and limits ------------------------------------


def _sign_in(driver: Driver, user: str, password: str = PASSWORD) -> RunResult:
    return driver.start("password-grant", username=user, password=password)


def _assert_failed_without_tokens(result: RunResult, state: str) -> None:
    """The run ended in the failure ``state`` after one token request."""
    assert (result.outcome, result.state) == ("failure", state)
    assert [entry.state for entry in result.history][:2] == ["prepare", "request_token"]
    assert result.history[-1].state == state
    assert not {"access_token", "refresh_token"} & set(result.outputs)


def test_blocked_user_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A user the tenant blocked ends in blocked, with the tenant's reason; a
    wrong password for them is only a wrong password, and unblocking lets
    them sign in."""
    driver.tenant.block_user("plain@example.test")

    result = _sign_in(driver, "plain@example.test")
    guessed = _sign_in(driver, "plain@example.test", "not-the-password")
    driver.tenant.unblock_user("plain@example.test")
    unblocked = _sign_in(driver, "plain@example.test")

    _assert_failed_without_tokens(result, "blocked")
    assert result.message == "The tenant has blocked this user."
    assert result.outputs == {
        "error": "unauthorized",
        "error_description": "user is blocked",
    }
    assert guessed.state == "wrong_password"
    assert unblocked.state == "signed_in"
    driver.assert_no_secret_leaked(logs)


def test_leaked_password_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A password the tenant knows from a data breach ends in password_leaked,
    with the tenant's description."""
    driver.tenant.add_user("leaked@example.test", PASSWORD, password_leaked=True)

    result = _sign_in(driver, "leaked@example.test")

    _assert_failed_without_tokens(result, "password_leaked")
    assert result.message == (
        "The tenant blocked the password because it appeared in a data breach; "
        "reset it."
    )
    assert result.outputs == {
        "error": "password_leaked",
        "error_description": (
            "This login attempt has been blocked because the password you're using "
            "was previously disclosed through a data breach (not in this "
            "application)."
        ),
    }
    driver.assert_no_secret_leaked(logs)


def test_ten_wrong_passwords_lock_the_user(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """After ten wrong passwords in a row even the right one ends in locked,
    with the tenant's Retry-After as retry_after, until the user is unblocked."""
    wrong = [_sign_in(driver, "plain@example.test", f"guess-{n}") for n in range(10)]

    result = _sign_in(driver, "plain@example.test")
    other = driver.start(
        "password-grant",
        username="otp@example.test",
        password=PASSWORD,
        step_up="false",
    )
    driver.tenant.unblock_user("plain@example.test")
    unblocked = _sign_in(driver, "plain@example.test")

    assert {attempt.state for attempt in wrong} == {"wrong_password"}
    _assert_failed_without_tokens(result, "locked")
    assert result.message == (
        "Too many failed attempts; the tenant blocks sign-in for this user for a while."
    )
    assert result.outputs == {
        "error": "too_many_attempts",
        "error_description": (
            "Your account has been blocked after multiple consecutive login attempts."
        ),
        "retry_after": "2592000",
        "retry_at": None,
    }
    assert other.state == "mfa_required"
    assert unblocked.state == "signed_in"
    driver.assert_no_secret_leaked(logs)


def test_login_rate_limit_says_when_to_try_again(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """Logins beyond the tenant's limit end in rate_limited, saying when to try
    again from the 429's headers; by then the login goes through."""
    limits = attrs.evolve(base_config().limits, logins=Limit(2, 30))
    driver = serve(limits=limits)

    allowed = [_sign_in(driver, "plain@example.test") for _ in range(2)]
    result = _sign_in(driver, "plain@example.test")
    driver.advance(30)
    later = _sign_in(driver, "plain@example.test")

    assert [attempt.state for attempt in allowed] == ["signed_in", "signed_in"]
    _assert_failed_without_tokens(result, "rate_limited")
    assert result.message == "The tenant's rate limit was reached; try again in 30 s."
    assert result.outputs == {
        "error": "too_many_requests",
        "error_description": (
            "Too many logins for this user; wait before trying again."
        ),
        "retry_after": "30",
        "retry_at": str(int(START) + 30),
    }
    assert [entry.state for entry in result.history] == [
        "prepare",
        "request_token",
        "read_retry_time",
        "rate_limited",
    ]
    assert later.state == "signed_in"
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("answer", "state", "outputs", "message"),
    [
        (
            (429, b"<html>Too many requests</html>"),
            "rate_limited",
            {
                "error": "http.429",
                "error_description": "The server answered http.429.",
                "retry_after": None,
                "retry_at": None,
            },
            "The tenant's rate limit was reached; try again later.",
        ),
        (
            (
                429,
                {"error": "too_many_requests", "error_description": "Slow down."},
                {"retry-after": "12", "x-ratelimit-reset": "1750000135"},
            ),
            "rate_limited",
            {
                "error": "too_many_requests",
                "error_description": "Slow down.",
                "retry_after": "12",
                "retry_at": "1750000135",
            },
            "The tenant's rate limit was reached; try again in 12 s.",
        ),
        (
            (
                429,
                {"error": "too_many_requests", "error_description": "Slow down."},
                {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"},
            ),
            "rate_limited",
            {
                "error": "too_many_requests",
                "error_description": "Slow down.",
                "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT",
                "retry_at": None,
            },
            "The tenant's rate limit was reached; try again later.",
        ),
        (
            (
                429,
                {"error": "too_many_attempts", "error_description": "Blocked."},
                {"X-Ratelimit-Reset": "1750003723"},
            ),
            "locked",
            {
                "error": "too_many_attempts",
                "error_description": "Blocked.",
                "retry_after": None,
                "retry_at": "1750003723",
            },
            "Too many failed attempts; the tenant blocks sign-in for this user for a "
            "while.",
        ),
    ],
    ids=["html-no-headers", "lower-case-headers", "http-date", "go-style-reset"],
)
def test_429_of_other_servers_say_when_to_try_again(
    logs: pytest.LogCaptureFixture,
    answer: Answer,
    state: str,
    outputs: dict[str, Any],
    message: str,
):
    """A 429 the embedded tenant never gives (no JSON, no headers, headers in
    lower case or another capitalisation, Retry-After as an HTTP date) ends
    in its failure with whatever retry time the server said."""
    app = Scripted([answer])
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "password-grant", username="someone@example.test", password=PASSWORD
        )

    assert (result.outcome, result.state) == ("failure", state)
    assert result.outputs == outputs
    assert result.message == message
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("status", "answer", "state", "error", "description"),
    [
        (
            403,
            {"error": "invalid_user_password", "error_description": "Wrong."},
            "wrong_password",
            "invalid_user_password",
            "Wrong.",
        ),
        (
            200,
            b"<html>A login page</html>",
            "unreachable",
            "response.invalid",
            "The server answered response.invalid.",
        ),
        (
            418,
            {"error": "teapot", "error_description": "Odd."},
            "failed",
            "teapot",
            "Odd.",
        ),
        (
            400,
            {"error": "unsupported_grant_type", "error_description": "No ROPG."},
            "client_rejected",
            "unsupported_grant_type",
            "No ROPG.",
        ),
        (
            400,
            {"error": "invalid_scope", "error_description": "Unknown scope."},
            "bad_request",
            "invalid_scope",
            "Unknown scope.",
        ),
    ],
)
def test_error_answers_end_in_clear_failures(
    logs: pytest.LogCaptureFixture,
    status: int,
    answer: Any,
    state: str,
    error: str,
    description: str,
):
    """Error answers the embedded tenant never gives (Auth0's legacy code for a
    wrong password, a login page, an unknown error) each end in their own
    failure state, with the error and description as outputs and no secret
    shown."""
    app = Scripted([(status, answer)])
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "password-grant", username="someone@example.test", password=PASSWORD
        )

    assert (result.outcome, result.state) == ("failure", state)
    assert result.outputs == {
        "error": error,
        "error_description": description,
    }
    assert result.message
    assert result.message.endswith(".")
    assert "\n" not in result.message
    assert app.received[0]["grant_type"] == "password"
    driver.assert_no_secret_leaked(logs)


def test_server_errors_are_retried(logs: pytest.LogCaptureFixture):
    """Two 503 answers are retried after a wait, and the third attempt signs in."""
    app = Scripted(
        [
            (503, b"busy"),
            (503, {"error": "temporarily_unavailable"}),
            (200, SCRIPTED_TOKENS),
        ]
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "password-grant", username="someone@example.test", password=PASSWORD
        )
        waits = []
        while not result.ended:
            assert result.resume_at is not None
            waits.append(result.resume_at - driver.clock.now())
            result = driver.after_wait(result)

    assert waits == [1.0, 2.0]
    assert len(app.received) == 3
    assert (result.outcome, result.state) == ("success", "signed_in")
    assert result.outputs["access_token"] == SCRIPTED_TOKENS["access_token"]
    assert result.outputs["refresh_token"] == SCRIPTED_TOKENS["refresh_token"]
    driver.assert_no_secret_leaked(logs)


def test_unreachable_tenant_fails_after_retries(logs: pytest.LogCaptureFixture):
    """A tenant that cannot be reached ends as unreachable after the retries."""
    issuer = f"http://127.0.0.1:{closed_port()}/"
    driver = scripted_driver(issuer)

    result = driver.start(
        "password-grant", username="someone@example.test", password=PASSWORD
    )
    waits = 0
    while not result.ended:
        waits += 1
        result = driver.after_wait(result)

    assert waits == 2
    assert_unreachable(result, issuer)
    assert driver.clock.now() == START + 3
    driver.assert_no_secret_leaked(logs)


def test_step_up_false_stops_at_mfa_required(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """With step_up false, mfa_required ends the run with the mfa_token and the
    requirements, for another flow to answer MFA its own way."""
    result = driver.start(
        "password-grant",
        username="otp@example.test",
        password=PASSWORD,
        step_up="false",
    )

    assert (result.outcome, result.state) == ("success", "mfa_required")
    assert result.message == (
        "The password was accepted; the tenant asks for a second factor "
        "(the output mfa_token)."
    )
    assert result.outputs["mfa_token"].startswith("Fe26.2**")
    assert "mfa_token" in result.secret_outputs
    assert result.outputs["mfa_requirements"] == {"challenge": [{"type": "otp"}]}
    assert "mfa-challenge" not in {entry.flow for entry in result.history}
    driver.assert_no_secret_leaked(logs)


def test_step_up_must_be_true_or_false(driver: Driver):
    """A step_up other than true or false is refused before any request."""
    with pytest.raises(InputError, match="'step_up' 'later' does not match"):
        driver.start(
            "password-grant",
            username="otp@example.test",
            password=PASSWORD,
            step_up="later",
        )


@pytest.mark.parametrize(
    ("step_up", "target", "state"),
    [("true", "step_up", "ask_otp"), ("false", "mfa_required", "mfa_required")],
)
def test_legacy_mfa_required_code_is_mfa_required(
    logs: pytest.LogCaptureFixture, step_up: str, target: str, state: str
):
    """Auth0's legacy a0.mfa_required answer leads into MFA as mfa_required does,
    or, with step_up false, ends with its mfa_token."""
    legacy = {
        "error": "a0.mfa_required",
        "error_description": "Multifactor authentication required",
        "mfa_token": SCRIPTED_MFA_TOKEN,
    }
    app = Scripted(scripted_mfa(password=[(403, legacy)]))
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "password-grant",
            username="someone@example.test",
            password=PASSWORD,
            step_up=step_up,
        )

    assert result.state == state
    edge = f"password-grant:request_token --a0.mfa_required--> {target}"
    assert edge in edges(result)
    if step_up == "false":
        assert result.outputs["mfa_token"] == SCRIPTED_MFA_TOKEN
    driver.assert_no_secret_leaked(logs)
