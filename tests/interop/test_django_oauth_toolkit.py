"""The shipped flows, unchanged, against django-oauth-toolkit.

django-oauth-toolkit is an OAuth 2.0 and OpenID Connect provider for
Django, written by others; a flow that works against it keeps to the
protocols rather than to the embedded tenant's habits. The engines find the
token endpoint through the provider's discovery document and are given no
Auth0-specific input (no audience, no realm).
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from _interop_kit import (
    Provider,
    RecordingTransport,
    userinfo,
    verified_id_token,
    watched_engine,
)
from _pagekit import Page
from _runs import assert_no_run_leaked

import mfaflow
from mfaflow import Request, RunResult

# The provider warns on every use of the password grant, which RFC 9700
# discourages; it still answers it as RFC 6749 says, and that is under test.
password_grant_allowed = pytest.mark.filterwarnings(
    "ignore:The OAuth 2.0 resource owner password credentials grant:DeprecationWarning"
)


# -- helpers ---------------------------------------------------------------------


def _sign_in(engine: mfaflow.Engine, provider: Provider) -> RunResult:
    result = engine.start(
        "password-grant",
        {"username": provider.site.username, "password": provider.site.password},
    )
    assert result.ended, result
    return result


def _known_secrets(provider: Provider) -> set[str]:
    """The user's password and every application's client secret."""
    site = provider.site
    return {site.password, site.password_client_secret, site.code_client_secret}


def _form(request: Request) -> dict[str, str]:
    assert request.body is not None
    return dict(parse_qsl(request.body.decode(), strict_parsing=True))


def _authorize_url(result: RunResult) -> str:
    """The URL the waiting authorize run asks the person to open: its link."""
    assert [request.name for request in result.waiting_for] == ["callback_url"]
    link = result.waiting_for[0].link
    assert link is not None, "the wait gives no link"
    return link


def _browse(provider: Provider, authorize_url: str) -> str:
    """Sign the user in and consent in a browser; the URL the browser is sent back to.

    The user's sign-in cookie is set as if they had signed in on the
    provider's own pages. Like a browser, this opens the URL the flow built
    (the discovered ``authorization_endpoint``, so no redirect happens on the
    way), reads the consent form's fields and posts them with ``allow``; the
    provider's 302 names the callback URL.
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client as DjangoClient

    django_client = DjangoClient()
    django_client.force_login(
        get_user_model().objects.get(username=provider.site.username)
    )
    browser = requests.Session()
    cookie = settings.SESSION_COOKIE_NAME
    browser.cookies.set(cookie, django_client.cookies[cookie].value)

    consent = browser.get(authorize_url, timeout=5)
    assert consent.status_code == 200, consent.text
    assert consent.history == [], "the authorization endpoint redirected"
    (form,) = Page(consent.text).forms
    answer = browser.post(
        consent.url,
        data={**form.fields, "allow": "Authorize"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **changes}
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- password grant ----------------------------------------------------------------


@password_grant_allowed
def test_password_grant_signs_in_without_mfa(
    provider: Provider,
    password_engine: mfaflow.Engine,
    transport: RecordingTransport,
    logs: pytest.LogCaptureFixture,
) -> None:
    """The right password signs in at the discovered token endpoint, without MFA."""
    result = _sign_in(password_engine, provider)

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert [entry.state for entry in result.history] == [
        "prepare",
        "request_token",
        "signed_in",
    ]
    outputs = result.outputs
    assert outputs["access_token"]
    assert outputs["refresh_token"]
    assert outputs["token_type"] == "Bearer"
    assert outputs["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert userinfo(provider.discovery, outputs["access_token"]).status_code == 200

    token_requests = [r for r in transport.sent if r.method == "POST"]
    assert [r.url for r in token_requests] == [provider.discovery["token_endpoint"]]
    assert _form(token_requests[0]) == {
        "grant_type": "password",
        "username": provider.site.username,
        "password": provider.site.password,
        "scope": "openid profile email offline_access",
        "client_id": provider.site.password_client_id,
        "client_secret": provider.site.password_client_secret,
    }
    assert_no_run_leaked(password_engine, logs, _known_secrets(provider))


@password_grant_allowed
def test_password_grant_wrong_password(
    provider: Provider,
    password_engine: mfaflow.Engine,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A wrong password (invalid_grant from the provider) ends in wrong_password."""
    result = password_engine.start(
        "password-grant",
        {"username": provider.site.username, "password": "not the password"},
    )

    assert (result.outcome, result.state) == ("failure", "wrong_password")
    assert result.outputs["error"] == "invalid_grant"
    assert "access_token" not in result.outputs
    assert result.message == "The username or password is wrong."
    assert_no_run_leaked(password_engine, logs, _known_secrets(provider))


@password_grant_allowed
@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [("password-app", "not-the-secret"), ("no-such-app", "any-secret")],
    ids=["wrong-secret", "unknown-client"],
)
def test_password_grant_client_rejected(
    provider: Provider,
    client_id: str,
    client_secret: str,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A client the provider cannot authenticate ends in client_rejected."""
    engine = watched_engine(mfaflow.Client(provider.issuer, client_id, client_secret))

    result = _sign_in(engine, provider)

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs["error"] == "invalid_client"
    assert "invalid_client" in str(result.message)
    assert client_secret not in str(result.message)

    # -- refresh -----------------------------------------------------------------------
    assert_no_run_leaked(engine, logs, _known_secrets(provider))


@password_grant_allowed
def test_refresh_rotates_and_the_old_token_is_revoked(
    provider: Provider,
    password_engine: mfaflow.Engine,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A refresh keeps the rotated refresh token; the old one then ends in revoked."""
    old = _sign_in(password_engine, provider).outputs["refresh_token"]

    refreshed = password_engine.start("refresh", {"refresh_token": old})
    reused = password_engine.start("refresh", {"refresh_token": old})

    assert (refreshed.outcome, refreshed.state) == ("success", "refreshed")
    assert refreshed.outputs["rotated"] is True
    assert refreshed.outputs["refresh_token"]
    assert refreshed.outputs["refresh_token"] != old
    answer = userinfo(provider.discovery, refreshed.outputs["access_token"])
    assert answer.status_code == 200
    assert (reused.outcome, reused.state) == ("failure", "revoked")
    assert reused.outputs["error"] == "invalid_grant"
    assert_no_run_leaked(password_engine, logs, _known_secrets(provider))


@password_grant_allowed
def test_refresh_without_rotation_keeps_the_token(
    provider: Provider,
    password_engine: mfaflow.Engine,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A provider that does not rotate answers with the same refresh token,
    which the flow keeps and does not report as rotated."""
    from django.conf import settings
    from django.test import override_settings

    old = _sign_in(password_engine, provider).outputs["refresh_token"]
    keeping = {**settings.OAUTH2_PROVIDER, "ROTATE_REFRESH_TOKEN": False}
    with override_settings(OAUTH2_PROVIDER=keeping):
        refreshed = password_engine.start("refresh", {"refresh_token": old})
        again = password_engine.start("refresh", {"refresh_token": old})

    assert (refreshed.outcome, refreshed.state) == ("success", "refreshed")
    assert refreshed.outputs["rotated"] is False
    assert refreshed.outputs["refresh_token"] == old
    assert (again.outcome, again.outputs["rotated"]) == ("success", False)
    assert again.outputs["refresh_token"] == old
    answer = userinfo(provider.discovery, again.outputs["access_token"])
    assert answer.status_code == 200

    # -- authorization code with PKCE --------------------------------------------------
    assert_no_run_leaked(password_engine, logs, _known_secrets(provider))


def test_authorize_url_is_the_discovered_authorization_endpoint(
    provider: Provider,
    code_engine: mfaflow.Engine,
    logs: pytest.LogCaptureFixture,
) -> None:
    """The authorize run shows a URL on the discovered authorization_endpoint."""
    url = _authorize_url(code_engine.start("authorize"))

    parts = urlsplit(url)
    assert (
        urlunsplit(parts._replace(query="", fragment=""))
        == (provider.discovery["authorization_endpoint"])
    )
    assert_no_run_leaked(code_engine, logs, _known_secrets(provider))


def test_authorize_with_pkce_signs_in(
    provider: Provider,
    code_engine: mfaflow.Engine,
    transport: RecordingTransport,
    logs: pytest.LogCaptureFixture,
) -> None:
    """The code grant with PKCE signs in, with an ID token carrying the run's nonce."""
    waiting = code_engine.start("authorize")
    url = _authorize_url(waiting)
    sent = parse_qs(urlsplit(url).query)
    callback = _browse(provider, url)

    result = code_engine.resume(waiting.run_id, {"callback_url": callback})

    assert sorted(sent) == [
        "client_id",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ]
    assert sent["code_challenge_method"] == ["S256"]
    assert callback.startswith(provider.site.redirect_uri + "?")
    assert (result.outcome, result.state) == ("success", "signed_in")
    outputs = result.outputs
    assert outputs["refresh_token"]
    assert userinfo(provider.discovery, outputs["access_token"]).status_code == 200
    claims = verified_id_token(
        provider.discovery, outputs["id_token"], provider.site.code_client_id
    )
    assert claims["nonce"] == outputs["nonce"] == sent["nonce"][0]

    exchange = [r for r in transport.sent if r.method == "POST"]
    assert [r.url for r in exchange] == [provider.discovery["token_endpoint"]]
    assert _form(exchange[0])["grant_type"] == "authorization_code"
    assert "code_verifier" in _form(exchange[0])
    assert_no_run_leaked(code_engine, logs, _known_secrets(provider))


def test_authorize_state_mismatch_spends_no_code(
    provider: Provider,
    code_engine: mfaflow.Engine,
    transport: RecordingTransport,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A callback with a forged state ends in state_mismatch, the code unspent."""
    from oauth2_provider.models import get_grant_model

    waiting = code_engine.start("authorize")
    callback = _browse(provider, _authorize_url(waiting))
    code = parse_qs(urlsplit(callback).query)["code"][0]

    result = code_engine.resume(
        waiting.run_id, {"callback_url": _with_query(callback, state="forged")}
    )

    assert (result.outcome, result.state) == ("failure", "state_mismatch")
    assert result.outputs == {"error": "state_mismatch"}
    assert [r for r in transport.sent if r.method == "POST"] == []
    assert get_grant_model().objects.filter(code=code).exists()
    assert_no_run_leaked(code_engine, logs, _known_secrets(provider))


# -- client_secret_basic -----------------------------------------------------------


@password_grant_allowed
def test_basic_client_auth_signs_in_and_refreshes(
    provider: Provider, transport: RecordingTransport, logs: pytest.LogCaptureFixture
) -> None:
    """With client_auth basic, the password and refresh grants authenticate the
    application in an Authorization: Basic header (RFC 6749 section 2.3.1),
    never in the form, and the provider accepts it."""
    site = provider.site
    client = mfaflow.Client(
        provider.issuer,
        site.password_client_id,
        site.password_client_secret,
        client_auth="basic",
    )
    engine = watched_engine(client, transport)

    signed_in = _sign_in(engine, provider)
    refreshed = engine.start(
        "refresh", {"refresh_token": signed_in.outputs["refresh_token"]}
    )

    assert (signed_in.outcome, signed_in.state) == ("success", "signed_in")
    assert (refreshed.outcome, refreshed.state) == ("success", "refreshed")
    answer = userinfo(provider.discovery, refreshed.outputs["access_token"])
    assert answer.status_code == 200
    posts = [request for request in transport.sent if request.method == "POST"]
    assert [_form(request)["grant_type"] for request in posts] == [
        "password",
        "refresh_token",
    ]
    expected = base64.b64encode(
        f"{site.password_client_id}:{site.password_client_secret}".encode()
    ).decode()
    for request in posts:
        assert request.header("Authorization") == f"Basic {expected}"
        assert "client_secret" not in _form(request)
    assert_no_run_leaked(engine, logs, _known_secrets(provider))
