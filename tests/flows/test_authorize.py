"""The authorize flow: the authorization code grant with PKCE, through the browser.

The tenant's login pages are stood in for by its Python API: where a person
would sign in on the page the authorize URL opens, the test asks the tenant
to issue the code for that URL's parameters, and builds the callback URL
the browser would be sent back to.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from _flow_helpers import (
    API,
    CALLBACK,
    PUBLIC_CLIENT,
    SERVER_CLIENT,
    Driver,
    Scripted,
    assert_unreachable,
    edges,
    make_driver,
    query_of,
    scripted_driver,
)
from _servers import serve_wsgi

from mfaflow import RunResult
from mfaflow.tenant import LoopbackServer, Tenant


def authorize_url(result: RunResult) -> str:
    """The URL the waiting run asks the person to open: the link of its wait."""
    (request,) = result.waiting_for
    assert request.name == "callback_url"
    assert request.link is not None
    return request.link


def sign_in_at(driver: Driver, result: RunResult, user: str, **extra: str) -> str:
    """Do what the login page does for ``user``; return the callback URL."""
    asked = query_of(authorize_url(result))
    code = driver.tenant.issue_authorization_code(
        asked["client_id"],
        user,
        asked["redirect_uri"],
        scope=asked["scope"],
        audience=asked.get("audience"),
        code_challenge=asked["code_challenge"],
        code_challenge_method=asked["code_challenge_method"],
        nonce=asked["nonce"],
        amr=("pwd", "mfa"),
    )
    driver.secrets.add(code)
    query = urlencode({"code": code, "state": asked["state"], **extra})
    return f"{asked['redirect_uri']}?{query}"


def claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_authorize_url_asks_for_a_code_with_pkce(driver: Driver):
    """The run waits with the authorize URL as its link, with every parameter."""
    result = driver.start("authorize")

    assert authorize_url(result).startswith(driver.engine.client.issuer + "authorize?")
    asked = query_of(authorize_url(result))
    assert asked["response_type"] == "code"
    assert asked["client_id"] == PUBLIC_CLIENT
    assert asked["redirect_uri"] == CALLBACK
    assert asked["scope"] == "openid profile email offline_access"
    assert asked["audience"] == API
    assert asked["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])
    assert len(asked["state"]) >= 20
    assert len(asked["nonce"]) >= 20
    assert asked["state"] != asked["nonce"]
    assert result.waiting_for[0].secret is True


def test_authorize_link_is_not_secret_and_is_stored_whole(driver: Driver):
    """The link holds no secret: the stored wait keeps it, and the prompt is words."""
    result = driver.start("authorize")

    (request,) = result.waiting_for
    assert request.link_is_secret is False
    assert request.prompt == (
        "Open the link in a browser, sign in, and paste the address you were sent "
        "back to."
    )
    stored = driver.engine.store.load(result.run_id).document
    (waiting,) = stored["wait"]["inputs"]
    assert (waiting["link"], waiting["link_is_secret"]) == (request.link, False)
    assert driver.engine.get(result.run_id).waiting_for[0].link == request.link


def test_callback_code_is_exchanged(driver: Driver, logs: pytest.LogCaptureFixture):
    """The code of the callback is exchanged with the verifier for tokens."""
    result = driver.start("authorize")
    callback = sign_in_at(driver, result, "plain@example.test")

    result = driver.resume(result, callback_url=callback)

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert result.message == "Signed in through the browser."
    id_token = claims(result.outputs["id_token"])
    assert id_token["nonce"] == result.outputs["nonce"]
    assert id_token["amr"] == ["pwd", "mfa"]
    assert claims(result.outputs["access_token"])["aud"][0] == API
    assert result.outputs["refresh_token"]
    assert result.outputs["mfa_access_token"] is None
    driver.assert_no_secret_leaked(logs)


def test_offline_access_can_be_left_out(driver: Driver, logs: pytest.LogCaptureFixture):
    """offline_access false asks for no refresh token, and none comes."""
    result = driver.start("authorize", offline_access="false", scope="openid")

    assert query_of(authorize_url(result))["scope"] == "openid"
    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "plain@example.test")
    )

    assert result.outcome == "success"
    assert result.outputs["refresh_token"] is None
    driver.assert_no_secret_leaked(logs)


def test_state_mismatch_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A callback whose state differs from the one sent is refused."""
    result = driver.start("authorize")
    callback = sign_in_at(driver, result, "plain@example.test")
    forged = re.sub(r"state=[^&]+", "state=forged-state", callback)

    result = driver.resume(result, callback_url=forged)

    assert (result.outcome, result.state) == ("failure", "state_mismatch")
    assert result.message == (
        "The callback's state does not match the one sent, so it does not answer "
        "this sign-in (possibly a forged request); start again."
    )
    driver.assert_no_secret_leaked(logs)


def test_denied_callback_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """A callback with error=access_denied ends the run with the tenant's reason."""
    result = driver.start("authorize")
    state = query_of(authorize_url(result))["state"]
    callback = f"{CALLBACK}?" + urlencode(
        {
            "error": "access_denied",
            "error_description": "The user declined.",
            "state": state,
        }
    )

    result = driver.resume(result, callback_url=callback)

    assert (result.outcome, result.state) == ("failure", "denied")
    assert result.outputs == {
        "error": "access_denied",
        "error_description": "The user declined.",
    }
    driver.assert_no_secret_leaked(logs)


def test_login_required_callback_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """prompt=none without a session comes back as login_required and fails so."""
    result = driver.start("authorize", prompt="none")
    state = query_of(authorize_url(result))["state"]

    result = driver.resume(
        result,
        callback_url=f"{CALLBACK}?error=login_required&state={state}",
    )

    assert (result.outcome, result.state) == ("failure", "login_required")
    assert result.outputs == {"error": "login_required", "error_description": None}
    assert result.message == (
        "The tenant needs the person to sign in interactively (login_required); "
        "start again without prompt=none."
    )
    driver.assert_no_secret_leaked(logs)


def test_pasting_another_url_asks_again(driver: Driver, logs: pytest.LogCaptureFixture):
    """A pasted URL without code or error is asked for again, with a hint; the
    callback pasted next signs in."""
    result = driver.start("authorize")

    result = driver.resume(result, callback_url="https://example.test/somewhere")

    assert result.state == "wait_for_callback"
    assert result.waiting_for[0].prompt.startswith(
        "That URL carries neither a code nor an error. Open the link"
    )
    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "plain@example.test")
    )
    assert (result.outcome, result.state) == ("success", "signed_in")
    driver.assert_no_secret_leaked(logs)


def test_code_for_another_verifier_is_rejected(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A code issued for another PKCE challenge is refused at the token endpoint."""
    result = driver.start("authorize")
    asked = query_of(authorize_url(result))
    code = driver.tenant.issue_authorization_code(
        PUBLIC_CLIENT,
        "plain@example.test",
        CALLBACK,
        scope="openid",
        code_challenge="A" * 43,
        code_challenge_method="S256",
    )
    driver.secrets.add(code)

    result = driver.resume(
        result,
        callback_url=f"{CALLBACK}?"
        + urlencode({"code": code, "state": asked["state"]}),
    )

    assert (result.outcome, result.state) == ("failure", "code_rejected")
    assert result.outputs["error"] == "invalid_grant"
    driver.assert_no_secret_leaked(logs)


def test_mfa_api_token_needs_a_second_round_trip(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """mfa_api_token true asks for a second sign-in for the MFA API's audience."""
    result = driver.start("authorize", mfa_api_token="true")
    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "otp@example.test")
    )

    assert result.state == "wait_for_callback"
    asked = query_of(authorize_url(result))
    mfa_audience = f"https://{driver.engine.client.issuer_host}/mfa/"
    assert asked["audience"] == mfa_audience
    assert asked["scope"] == "enroll read:authenticators remove:authenticators"

    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "otp@example.test")
    )

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert claims(result.outputs["access_token"])["aud"][0] == API
    mfa_token = claims(result.outputs["mfa_access_token"])
    assert mfa_token["aud"] == mfa_audience
    assert "remove:authenticators" in mfa_token["scope"].split()
    driver.assert_no_secret_leaked(logs)


def test_without_redirect_uri_fails(served: LoopbackServer):
    """A client without a redirect_uri, given none, fails before any request."""
    driver = make_driver(served)

    result = driver.start("authorize")

    assert (result.outcome, result.state) == ("failure", "no_redirect_uri")
    assert result.message == (
        "No redirect_uri was given and the client has none; give the application's "
        "callback URL."
    )


def test_expires_after_an_hour(driver: Driver):
    """A sign-in not finished within an hour ends as expired."""
    result = driver.start("authorize")
    driver.advance(3601)

    result = driver.engine.resume(result.run_id)

    assert (result.outcome, result.state) == ("expired", "expired")


def callback_with_error(result: RunResult, error: str, description: str) -> str:
    """The callback URL of a sign-in the tenant ended with ``error``."""
    state = query_of(authorize_url(result))["state"]
    query = urlencode(
        {"error": error, "error_description": description, "state": state}
    )
    return f"{CALLBACK}?{query}"


def test_other_callback_errors_fail(driver: Driver, logs: pytest.LogCaptureFixture):
    """A callback error other than access_denied or login_required ends the run
    with the error and its description."""
    result = driver.start("authorize")

    result = driver.resume(
        result,
        callback_url=callback_with_error(result, "server_error", "The tenant broke."),
    )

    assert (result.outcome, result.state) == ("failure", "authorization_failed")
    assert (
        result.message
        == "The tenant sent the browser back with the error server_error."
    )
    assert result.outputs == {
        "error": "server_error",
        "error_description": "The tenant broke.",
    }
    driver.assert_no_secret_leaked(logs)


def test_wrong_client_secret_fails_at_the_exchange(
    served: LoopbackServer, logs: pytest.LogCaptureFixture
):
    """A confidential client with the wrong secret gets its code refused as
    client_rejected."""
    driver = make_driver(
        served,
        SERVER_CLIENT,
        "not-the-client-secret-8b2",
        redirect_uri=CALLBACK,
        audience=API,
    )
    result = driver.start("authorize")

    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "plain@example.test")
    )

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs["error"] == "invalid_client"
    assert result.message == (
        "The tenant did not accept the application (invalid_client); check the "
        "client id, the client secret and the grant types the application may use."
    )
    driver.secrets.add("not-the-client-secret-8b2")
    driver.assert_no_secret_leaked(logs)


def test_failed_second_round_trip_fails_the_sign_in(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """When the MFA API round trip comes back denied, the run fails saying so."""
    result = driver.start("authorize", mfa_api_token="true")
    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "otp@example.test")
    )
    assert result.state == "wait_for_callback"

    result = driver.resume(
        result,
        callback_url=callback_with_error(result, "access_denied", "Not for you."),
    )

    assert (result.outcome, result.state) == ("failure", "mfa_round_trip_failed")
    assert result.message == (
        "The sign-in was denied (access_denied); error_description says why."
    )
    assert result.outputs == {
        "error": "access_denied",
        "error_description": "Not for you.",
    }
    assert "access_token" not in result.outputs
    driver.assert_no_secret_leaked(logs)


def test_second_round_trip_not_finished_in_time_expires(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """An hour after the sign-in started, a pending MFA API round trip ends it as
    expired, tokens of the first round trip included."""
    result = driver.start("authorize", mfa_api_token="true")
    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "otp@example.test")
    )
    callback = sign_in_at(driver, result, "otp@example.test")
    driver.advance(3601)

    result = driver.resume(result, callback_url=callback)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == "The sign-in was not finished within an hour; start again."
    assert result.outputs == {"error": "expired"}
    assert edges(result)[-1] == "authorize:mfa_round_trip --expired--> expired"
    driver.assert_no_secret_leaked(logs)


def test_unreachable_tenant_fails_after_retries(
    tenant: Tenant, logs: pytest.LogCaptureFixture
):
    """A tenant gone down before the code is exchanged ends the run as unreachable."""
    with LoopbackServer(tenant) as server:
        driver = make_driver(server, redirect_uri=CALLBACK, audience=API)
        result = driver.start("authorize")
        callback = sign_in_at(driver, result, "plain@example.test")

    result = driver.resume(result, callback_url=callback)
    result = driver.after_wait(driver.after_wait(result))

    assert_unreachable(result, server.url)
    driver.assert_no_secret_leaked(logs)


def test_audience_input_chooses_the_api(
    served: LoopbackServer, logs: pytest.LogCaptureFixture
):
    """The audience input asks for an access token of that API, where the client
    has no audience of its own."""
    driver = make_driver(served, redirect_uri=CALLBACK)
    without = driver.start("authorize")
    assert "audience" not in query_of(authorize_url(without))

    result = driver.start("authorize", audience=API)

    assert query_of(authorize_url(result))["audience"] == API
    result = driver.resume(
        result, callback_url=sign_in_at(driver, result, "plain@example.test")
    )
    assert (result.outcome, result.state) == ("success", "signed_in")
    assert claims(result.outputs["access_token"])["aud"][0] == API
    driver.assert_no_secret_leaked(logs)


def test_exchange_refused_as_unauthorized_client_fails(logs: pytest.LogCaptureFixture):
    """A server that refuses the code exchange as unauthorized_client (the
    application may not use the grant) ends the run as client_rejected."""
    refusal = {
        "error": "unauthorized_client",
        "error_description": "Grant not allowed.",
    }
    app = Scripted({"POST /oauth/token authorization_code": [(403, refusal)]})
    with serve_wsgi(app) as url:
        driver = scripted_driver(url, redirect_uri=CALLBACK)
        result = driver.start("authorize")
        state = query_of(result.waiting_for[0].link or "")["state"]
        callback = (
            f"{CALLBACK}?{urlencode({'code': 'code-scripted-91d2', 'state': state})}"
        )
        result = driver.resume(result, callback_url=callback)

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs == {
        "error": "unauthorized_client",
        "error_description": "Grant not allowed.",
    }
    assert "authorize:exchange --unauthorized_client--> client_rejected" in edges(
        result
    )
    driver.assert_no_secret_leaked(logs)
