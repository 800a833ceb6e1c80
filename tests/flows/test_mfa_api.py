"""mfa-api-token and manage-authenticators: MFA API tokens, listing, deleting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import jwt
import pytest
from _flow_helpers import (
    BROWSER_CLIENT,
    PASSWORD,
    SCRIPTED_APP,
    SCRIPTED_MFA_TOKEN,
    Driver,
    Scripted,
    edges,
    make_driver,
    mfa_api_refresh_token,
    mfa_token_of,
    scripted_driver,
    scripted_mfa,
)
from _servers import serve_wsgi

from mfaflow import Request, RequestsTransport, Response, RunResult
from mfaflow.tenant import Lifetimes, LoopbackServer, Tenant


def claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def mfa_audience(driver: Driver) -> str:
    """The MFA API's audience at the served tenant."""
    return f"https://{driver.engine.client.issuer_host}/mfa/"


def app_code(driver: Driver, email: str) -> str:
    """The code the user's authenticator app shows now."""
    app = next(a for a in driver.tenant.authenticators(email) if a.channel == "otp")
    return driver.tenant.current_totp(app.id)


def access_token_for(driver: Driver, user: str, **inputs: str) -> RunResult:
    """Get an MFA API access token for ``user``, passing MFA with the app if asked."""
    email = f"{user}@example.test"
    result = driver.start(
        "mfa-api-token",
        username=email,
        password=PASSWORD,
        authenticator_id="otp",
        **inputs,
    )
    if result.waiting_for:
        result = driver.resume(result, otp=app_code(driver, email))
    assert result.outcome == "success", result
    return result


def test_access_token_by_password_passes_mfa(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """method password signs in for the MFA audience, passing MFA first."""
    result = driver.start(
        "mfa-api-token", username="otp@example.test", password=PASSWORD
    )

    assert result.state == "ask_otp"
    result = driver.resume(result, otp=driver.totp())

    assert (result.outcome, result.state) == ("success", "got_access_token")
    assert result.outputs["token_kind"] == "access_token"
    token = claims(result.outputs["token"])
    assert token["aud"] == mfa_audience(driver)
    assert token["scope"].split() == [
        "enroll",
        "read:authenticators",
        "remove:authenticators",
    ]
    assert result.outputs["expires_in"] == 600
    driver.assert_no_secret_leaked(logs)


def test_access_token_without_factors_needs_no_mfa(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A user with no authenticator gets an MFA API token at once, to enrol one."""
    result = driver.start(
        "mfa-api-token", username="new@example.test", password=PASSWORD
    )

    assert (result.outcome, result.state) == ("success", "got_access_token")
    driver.assert_no_secret_leaked(logs)


def test_access_token_by_refresh(driver: Driver, logs: pytest.LogCaptureFixture):
    """method refresh renews an MFA API token from a refresh token issued for it."""
    first = mfa_api_refresh_token(driver, "plain")
    driver.advance(60)

    result = driver.start("mfa-api-token", method="refresh", refresh_token=first)

    assert (result.outcome, result.state) == ("success", "got_access_token")
    assert claims(result.outputs["token"])["aud"] == mfa_audience(driver)
    assert result.outputs["refresh_token"] != first
    driver.assert_no_secret_leaked(logs)


def test_mfa_token_method(driver: Driver, logs: pytest.LogCaptureFixture):
    """method mfa_token keeps the mfa_token of the mfa_required answer."""
    result = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username="otp@example.test",
        password=PASSWORD,
    )

    assert (result.outcome, result.state) == ("success", "got_mfa_token")
    assert result.outputs["token_kind"] == "mfa_token"
    assert result.outputs["token"].startswith("Fe26.2**")
    assert result.message == (
        "Got an mfa_token; it can list authenticators but not delete them."
    )
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize("status", [401, 403])
def test_mfa_required_with_either_status_gives_the_mfa_token(
    logs: pytest.LogCaptureFixture, status: int
):
    """mfa_required is taken by its error code, whether the status is 403 or 401."""
    app = Scripted(scripted_mfa(status))
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "mfa-api-token",
            method="mfa_token",
            username="a@example.test",
            password=PASSWORD,
        )

    assert (result.outcome, result.state) == ("success", "got_mfa_token")
    assert result.outputs["token"] == SCRIPTED_MFA_TOKEN
    assert result.outputs["token_kind"] == "mfa_token"
    assert app.requests == ["POST /oauth/token password"]
    driver.assert_no_secret_leaked(logs)


def test_mfa_token_method_without_mfa_fails(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """A user signed in without MFA gives no mfa_token; the failure says what to use."""
    result = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username="plain@example.test",
        password=PASSWORD,
    )

    assert (result.outcome, result.state) == ("failure", "no_mfa_required")
    assert result.message == (
        "The tenant signed the user in without asking for MFA, so there is no "
        "mfa_token; use the method password instead."
    )
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    ("inputs", "state", "message"),
    [
        (
            {"method": "refresh"},
            "missing_inputs",
            "The method refresh needs more inputs: username and password for "
            "password and mfa_token, refresh_token for refresh.",
        ),
        (
            {"method": "magic", "username": "a@example.test", "password": PASSWORD},
            "unknown_method",
            "The method magic is not one of: password, refresh, mfa_token.",
        ),
    ],
)
def test_bad_method_inputs_fail(
    driver: Driver,
    logs: pytest.LogCaptureFixture,
    inputs: dict[str, str],
    state: str,
    message: str,
):
    """A method without its inputs, or an unknown one, fails without a request."""
    result = driver.start("mfa-api-token", **inputs)

    assert (result.outcome, result.state, result.message) == ("failure", state, message)
    assert result.outputs == {"error": "invalid_request"}
    assert [entry.state for entry in result.history] == ["route", state]
    assert "/oauth/token" not in logs.text
    driver.assert_no_secret_leaked(logs)


def test_list_authenticators(driver: Driver, logs: pytest.LogCaptureFixture):
    """Listing gives each authenticator's id, type, name and state, and no secret."""
    token = access_token_for(driver, "many")

    result = driver.start("manage-authenticators", token=token.outputs["token"])

    assert (result.outcome, result.state) == ("success", "listed")
    assert result.message == "The user has 3 authenticators."
    listed = result.outputs["authenticators"]
    assert [(a["type"], a["authenticator_type"], a["oob_channel"]) for a in listed] == [
        ("push-notification", "oob", "auth0"),
        ("otp", "otp", None),
        ("recovery-code", "recovery-code", None),
    ]
    assert all(
        set(a) == {"id", "type", "authenticator_type", "oob_channel", "name", "active"}
        for a in listed
    )
    assert all(a["active"] for a in listed)
    assert "authenticators" not in result.secret_outputs
    driver.assert_no_secret_leaked(logs)


def test_list_with_an_mfa_token(driver: Driver, logs: pytest.LogCaptureFixture):
    """An mfa_token is enough to list authenticators."""
    token = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username="sms@example.test",
        password=PASSWORD,
    )

    result = driver.start("manage-authenticators", token=token.outputs["token"])

    assert result.state == "listed"
    names = [a["name"] for a in result.outputs["authenticators"]]
    assert names == ["XXXXXXXX4567", "XXXXXXXX4567"]
    driver.assert_no_secret_leaked(logs)


def test_delete_with_an_access_token(driver: Driver, logs: pytest.LogCaptureFixture):
    """Deleting with an MFA API access token removes the authenticator and its twin."""
    push_id = next(
        a.id
        for a in driver.tenant.authenticators("many@example.test")
        if a.channel == "auth0"
    )

    result = driver.start(
        "manage-authenticators",
        username="many@example.test",
        password=PASSWORD,
        authenticator_id="otp",
        delete=push_id,
    )
    assert result.state == "ask_otp"
    result = driver.resume(result, otp=app_code(driver, "many@example.test"))

    assert (result.outcome, result.state) == ("success", "deleted")
    assert result.outputs["deleted"] == push_id
    assert [a["type"] for a in result.outputs["authenticators"]] == ["recovery-code"]
    assert result.message == (
        f"Deleted the authenticator {push_id}; the user has 1 authenticator left."
    )
    assert [a.channel for a in driver.tenant.authenticators("many@example.test")] == [
        "recovery-code"
    ]
    driver.assert_no_secret_leaked(logs)


def test_delete_with_an_mfa_token_fails_clearly(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Deleting with an mfa_token fails, saying an MFA API access token is needed."""
    (sms, _voice) = driver.tenant.authenticators("sms@example.test")

    result = driver.start(
        "manage-authenticators",
        method="mfa_token",
        username="sms@example.test",
        password=PASSWORD,
        delete=sms.id,
    )

    assert (result.outcome, result.state) == ("failure", "needs_access_token")
    host = driver.engine.client.issuer_host
    assert result.message == (
        "Deleting an authenticator needs an access token for the MFA API (audience "
        f"https://{host}/mfa/) with the remove:authenticators scope; the tenant "
        "refused the token given, and an mfa_token is never accepted."
    )
    assert result.outputs["error"] == "invalid_token"
    assert len(driver.tenant.authenticators("sms@example.test")) == 2
    driver.assert_no_secret_leaked(logs)


def test_delete_without_the_remove_scope_fails(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """An access token without remove:authenticators cannot delete."""
    token = access_token_for(driver, "otp", scope="read:authenticators")
    (app,) = driver.tenant.authenticators("otp@example.test")

    result = driver.start(
        "manage-authenticators", token=token.outputs["token"], delete=app.id
    )

    assert result.state == "needs_access_token"
    assert result.outputs["error"] == "insufficient_scope"
    driver.assert_no_secret_leaked(logs)


def test_delete_unknown_authenticator_fails(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Deleting an id the user does not have fails before any delete is sent."""
    token = access_token_for(driver, "otp")

    result = driver.start(
        "manage-authenticators", token=token.outputs["token"], delete="sms|dev_none"
    )

    assert (result.outcome, result.state) == ("failure", "not_found")
    assert result.message == "The user has no authenticator sms|dev_none."
    assert len(result.outputs["authenticators"]) == 1
    driver.assert_no_secret_leaked(logs)


# -- mfa-api-token failures ------------------------------------------------------------


@pytest.mark.parametrize("method", ["password", "mfa_token"])
def test_wrong_password_fails_either_way(
    driver: Driver, logs: pytest.LogCaptureFixture, method: str
):
    """A wrong password ends mfa-api-token in wrong_password, for either method."""
    result = driver.start(
        "mfa-api-token",
        method=method,
        username="otp@example.test",
        password="not-the-password-71",
    )

    assert (result.outcome, result.state) == ("failure", "wrong_password")
    assert result.message == "The username or password is wrong."
    assert result.outputs == {
        "error": "invalid_grant",
        "error_description": "Wrong email or password.",
    }
    driver.assert_no_secret_leaked(logs)


def test_revoked_refresh_token_gives_no_token(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """method refresh with a refresh token the tenant refuses ends as not_got,
    with the refresh flow's message."""
    result = driver.start(
        "mfa-api-token", method="refresh", refresh_token="v1.never-issued-8c2f"
    )

    assert (result.outcome, result.state) == ("failure", "not_got")
    assert result.message == (
        "The refresh token was revoked, has expired or was already used; sign in again."
    )
    assert result.outputs["error"] == "invalid_grant"
    driver.assert_no_secret_leaked(logs)


def test_client_without_the_password_grant_gets_no_mfa_token(
    served: LoopbackServer, logs: pytest.LogCaptureFixture
):
    """method mfa_token for a client the tenant refuses the password grant ends
    as not_got, with password-grant's message."""
    driver = make_driver(served, BROWSER_CLIENT)

    result = driver.start(
        "mfa-api-token",
        method="mfa_token",
        username="otp@example.test",
        password=PASSWORD,
    )

    assert (result.outcome, result.state) == ("failure", "not_got")
    assert result.message == (
        "The tenant did not accept the application (unauthorized_client); check the "
        "client id, the client secret and the grant types the application may use."
    )
    assert result.outputs["error"] == "unauthorized_client"
    driver.assert_no_secret_leaked(logs)


def test_rejected_push_gives_no_token(driver: Driver, logs: pytest.LogCaptureFixture):
    """method password whose MFA push is rejected ends as not_got, saying why."""
    result = driver.start(
        "mfa-api-token",
        username="push@example.test",
        password=PASSWORD,
        authenticator_id="push",
    )
    driver.tenant.reject_push("push@example.test")

    result = driver.after_wait(result)

    assert (result.outcome, result.state) == ("failure", "not_got")
    assert result.message == "The push notification was rejected on the device."
    assert result.outputs["error"] == "access_denied"
    driver.assert_no_secret_leaked(logs)


def test_mfa_left_unanswered_expires(driver: Driver, logs: pytest.LogCaptureFixture):
    """method password whose MFA is not passed within 10 minutes ends as expired."""
    result = driver.start(
        "mfa-api-token", username="otp@example.test", password=PASSWORD
    )
    assert result.state == "ask_otp"
    driver.advance(601)

    result = driver.engine.resume(result.run_id)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.message == (
        "The mfa_token expired before the second factor was verified; sign in again."
    )
    assert result.outputs == {"error": "expired_token"}
    driver.assert_no_secret_leaked(logs)


# -- manage-authenticators failures ----------------------------------------------------


def test_list_without_read_scope_fails(driver: Driver, logs: pytest.LogCaptureFixture):
    """An MFA API access token without read:authenticators cannot list."""
    token = driver.start(
        "mfa-api-token", username="new@example.test", password=PASSWORD, scope="enroll"
    )

    result = driver.start("manage-authenticators", token=token.outputs["token"])

    assert (result.outcome, result.state) == ("failure", "missing_read_scope")
    assert result.message == (
        "Listing authenticators needs the read:authenticators scope, which the "
        "access token lacks."
    )
    assert result.outputs["error"] == "insufficient_scope"
    assert "read:authenticators" in result.outputs["error_description"]
    driver.assert_no_secret_leaked(logs)


@pytest.mark.parametrize(
    "kind", ["forged mfa_token", "forged access token", "expired access token"]
)
def test_token_the_tenant_refuses_cannot_list(
    driver: Driver, logs: pytest.LogCaptureFixture, kind: str
):
    """A forged token, or an MFA API access token past its 10 minutes, is refused."""
    if kind == "forged mfa_token":
        token, error = "Fe26.2**forged-mfa-token-90b", "invalid_grant"
    elif kind == "forged access token":
        token, error = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.forged", "invalid_token"
    else:
        token = access_token_for(driver, "otp").outputs["token"]
        error = "invalid_token"
        driver.advance(601)

    result = driver.start("manage-authenticators", token=token)

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    assert result.message == (
        "The tenant did not accept the token for the MFA API; get a new one."
    )
    assert result.outputs["error"] == error
    driver.assert_no_secret_leaked(logs)


def test_expired_mfa_token_cannot_list(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """An mfa_token past its lifetime is refused as expired_token: get a new one."""
    driver = serve(lifetimes=Lifetimes(mfa_token=60))
    token = mfa_token_of(driver, "otp")
    driver.advance(61)

    result = driver.start("manage-authenticators", token=token)

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    assert result.outputs == {
        "error": "expired_token",
        "error_description": "mfa_token is expired",
        # Only a token got with mfa-api-token can come with recovery codes.
        "recovery_code": None,
        "recovery_codes": None,
    }
    driver.assert_no_secret_leaked(logs)


def test_no_token_without_the_right_password(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Without a token, a wrong password ends the run as no_token, saying why."""
    result = driver.start(
        "manage-authenticators",
        username="otp@example.test",
        password="not-the-password-71",
    )

    assert (result.outcome, result.state) == ("failure", "no_token")
    assert result.message == "The username or password is wrong."
    assert result.outputs["error"] == "invalid_grant"
    driver.assert_no_secret_leaked(logs)


def test_getting_a_token_left_unfinished_expires(
    driver: Driver, logs: pytest.LogCaptureFixture
):
    """Without a token, MFA left unanswered for 10 minutes ends the run as expired."""
    result = driver.start(
        "manage-authenticators",
        username="otp@example.test",
        password=PASSWORD,
        delete="totp|dev_any",
    )
    assert result.state == "ask_otp"
    driver.advance(601)

    result = driver.engine.resume(result.run_id)

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.outputs == {"error": "expired_token"}
    assert len(driver.tenant.authenticators("otp@example.test")) == 1
    driver.assert_no_secret_leaked(logs)


class DeletedMeanwhile:
    """A transport that lets someone else delete an authenticator just before
    the flow's own DELETE of it reaches the tenant."""

    def __init__(self, tenant: Tenant, user: str) -> None:
        self.tenant = tenant
        self.user = user
        self.inner = RequestsTransport()

    def send(self, request: Request) -> Response:
        """Delete the authenticator a DELETE names, then send the request."""
        if request.method == "DELETE":
            authenticator_id = unquote(request.url.rsplit("/", 1)[-1])
            self.tenant.delete_authenticator(self.user, authenticator_id)
        return self.inner.send(request)


def test_authenticator_deleted_meanwhile_is_not_found(
    served: LoopbackServer, logs: pytest.LogCaptureFixture
):
    """A DELETE answered 404 (someone deleted it first) ends as not_found, with
    the listing as it is now."""
    driver = make_driver(
        served, transport=DeletedMeanwhile(served.tenant, "many@example.test")
    )
    token = access_token_for(driver, "many")
    push_id = next(
        a.id
        for a in driver.tenant.authenticators("many@example.test")
        if a.channel == "auth0"
    )

    result = driver.start(
        "manage-authenticators", token=token.outputs["token"], delete=push_id
    )

    assert (result.outcome, result.state) == ("failure", "not_found")
    assert result.message == f"The user has no authenticator {push_id}."
    assert "manage-authenticators:delete --not_found--> list" in edges(result)
    assert [a["type"] for a in result.outputs["authenticators"]] == ["recovery-code"]
    assert result.outputs["error"] == "not_found"
    driver.assert_no_secret_leaked(logs)


SCRIPTED_ACCESS_TOKEN = "at-scripted-mfa-api-4c0e19"


@pytest.mark.parametrize(
    ("answer", "event", "state"),
    [
        (
            (401, {"error": "invalid_grant", "error_description": "Bad token."}),
            "invalid_grant",
            "needs_access_token",
        ),
        (
            (403, {"error": "access_denied", "error_description": "No."}),
            "access_denied",
            "needs_access_token",
        ),
        (
            (403, {"error": "unauthorized", "error_description": "No."}),
            "unauthorized",
            "needs_access_token",
        ),
        ((401, b"<html>Unauthorized</html>"), "http.401", "needs_access_token"),
        ((403, b"<html>Forbidden</html>"), "http.403", "needs_access_token"),
        ((404, b"<html>Not Found</html>"), "http.404", "not_found"),
    ],
)
def test_deletion_refused_by_other_servers_fails_clearly(
    logs: pytest.LogCaptureFixture, answer: Any, event: str, state: str
):
    """However a server refuses a DELETE (an OAuth error, or a bare status), the
    run ends in needs_access_token, or, for a 404, in not_found with the listing
    as it is now."""
    app_id = "totp|dev_scripted"
    app = Scripted(
        {
            "GET /mfa/authenticators": [(200, [{**SCRIPTED_APP, "id": app_id}])],
            f"DELETE /mfa/authenticators/{app_id}": [answer],
        }
    )
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start(
            "manage-authenticators", token=SCRIPTED_ACCESS_TOKEN, delete=app_id
        )

    assert (result.outcome, result.state) == ("failure", state)
    assert f"manage-authenticators:delete --{event}--> " in " ".join(edges(result))
    assert app.requests.count(f"DELETE /mfa/authenticators/{app_id}") == 1
    if state == "not_found":
        assert [a["id"] for a in result.outputs["authenticators"]] == [app_id]
    driver.assert_no_secret_leaked(logs)


def test_refresh_step_up_left_unfinished_expires(
    serve: Callable[..., Driver], logs: pytest.LogCaptureFixture
):
    """method refresh, whose refresh asks for MFA, left unanswered for 10 minutes
    ends mfa-api-token as expired."""
    driver = serve(step_up_on_refresh="always")
    token = mfa_api_refresh_token(driver, "otp")
    result = driver.start("mfa-api-token", method="refresh", refresh_token=token)
    assert result.state == "ask_otp"
    driver.advance(601)

    result = driver.seen(driver.engine.resume(result.run_id))

    assert (result.outcome, result.state) == ("expired", "expired")
    assert result.outputs == {"error": "expired_token"}
    assert "mfa-api-token:by_refresh --expired--> expired" in edges(result)
    driver.assert_no_secret_leaked(logs)


def test_listing_refused_with_a_bare_401_is_token_rejected(
    logs: pytest.LogCaptureFixture,
):
    """A listing answered with a bare 401 (no OAuth error) ends as token_rejected."""
    app = Scripted({"GET /mfa/authenticators": [(401, b"<html>Unauthorized</html>")]})
    with serve_wsgi(app) as url:
        driver = scripted_driver(url)
        result = driver.start("manage-authenticators", token=SCRIPTED_ACCESS_TOKEN)

    assert (result.outcome, result.state) == ("failure", "token_rejected")
    assert "manage-authenticators:list --http.401--> token_rejected" in edges(result)
    driver.assert_no_secret_leaked(logs)
