"""The shipped flows, unchanged, against node oidc-provider.

oidc-provider is a certified OpenID provider for Node.js, written by
others. It keeps to the specifications more strictly than the embedded
tenant: PKCE is required, offline_access (a refresh token) is granted only
with ``prompt=consent``, a public client's refresh tokens rotate while a
confidential client's do not, and a reused refresh token or authorization
code revokes everything its grant issued. The engines find every endpoint
through the provider's discovery document and are given no Auth0-specific
input.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qs, parse_qsl, unquote_plus, urlsplit

import pytest
from _interop_kit import RecordingTransport, userinfo, verified_id_token
from _runs import Harvesting, Runs
from op_site import OidcProvider, Person

from mfaflow import Request, RunResult

LOGIN = "ann@example.test"


# -- steps of the tests ----------------------------------------------------------


def _waiting(runs: Runs, **inputs: str) -> RunResult:
    """An authorize run waiting for the callback, asking for a refresh token."""
    result = runs.start("authorize", prompt="consent", **inputs)
    assert [request.name for request in result.waiting_for] == ["callback_url"]
    return result


def _link(result: RunResult) -> str:
    link = result.waiting_for[0].link
    assert link is not None, "the wait gives no link"
    return link


def _signed_in(runs: Runs, provider: OidcProvider) -> RunResult:
    """Sign in through the provider's pages; the ended authorize run."""
    waiting = _waiting(runs)
    callback = Person(provider, LOGIN).consent(_link(waiting))
    result = runs.resume(waiting, callback_url=callback)
    assert (result.outcome, result.state) == ("success", "signed_in"), result
    return result


def _posts(runs: Runs) -> list[Request]:
    """The POST requests the runs' engine sent."""
    assert isinstance(runs.engine.transport, Harvesting)
    recorded = runs.engine.transport.inner
    assert isinstance(recorded, RecordingTransport)
    return [request for request in recorded.sent if request.method == "POST"]


def _form(request: Request) -> dict[str, str]:
    assert request.body is not None
    return dict(parse_qsl(request.body.decode(), strict_parsing=True))


def _accepted(provider: OidcProvider, access_token: str) -> bool:
    """Whether the provider's userinfo endpoint takes the access token."""
    answer = userinfo(provider.discovery, access_token)
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


# -- authorization code with PKCE ------------------------------------------------


@pytest.mark.parametrize("kind", ["public", "confidential"])
def test_authorize_with_pkce_signs_in(
    oidc_provider: OidcProvider,
    public_app: Runs,
    confidential_app: Runs,
    logs: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """The code grant with PKCE signs a public or a confidential client in: every
    token, an ID token for the application carrying the run's nonce."""
    runs, client_id = {
        "public": (public_app, "public-app"),
        "confidential": (confidential_app, "confidential-app"),
    }[kind]
    waiting = _waiting(runs)
    sent = parse_qs(urlsplit(_link(waiting)).query)
    callback = Person(oidc_provider, LOGIN).consent(_link(waiting))

    result = runs.resume(waiting, callback_url=callback)

    assert _link(waiting).startswith(
        oidc_provider.discovery["authorization_endpoint"] + "?"
    )
    assert sent["code_challenge_method"] == ["S256"]
    assert (result.outcome, result.state) == ("success", "signed_in")
    assert result.message == "Signed in through the browser."
    outputs = result.outputs
    assert outputs["token_type"] == "Bearer"
    assert outputs["expires_in"] == 3600
    assert outputs["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert outputs["refresh_token"]
    assert outputs["mfa_access_token"] is None
    assert userinfo(oidc_provider.discovery, outputs["access_token"]).json() == {
        "sub": LOGIN,
        "email": LOGIN,
    }
    claims = verified_id_token(oidc_provider.discovery, outputs["id_token"], client_id)
    assert claims["sub"] == LOGIN
    assert claims["nonce"] == outputs["nonce"] == sent["nonce"][0]

    (exchange,) = _posts(runs)
    assert exchange.url == oidc_provider.discovery["token_endpoint"]
    form = _form(exchange)
    assert form["grant_type"] == "authorization_code"
    assert "code_verifier" in form
    if kind == "public":
        assert "client_secret" not in form
    else:
        assert form["client_secret"] == oidc_provider.confidential_secret
    runs.assert_no_secret_leaked(logs)


def test_cancelled_sign_in_is_denied(
    oidc_provider: OidcProvider, public_app: Runs, logs: pytest.LogCaptureFixture
) -> None:
    """A person who cancels on the provider's page ends the run as denied, with
    the provider's reason, and no code is asked for."""
    waiting = _waiting(public_app)
    callback = Person(oidc_provider, LOGIN).cancel(_link(waiting))

    result = public_app.resume(waiting, callback_url=callback)

    assert (result.outcome, result.state) == ("failure", "denied")
    assert result.message == (
        "The sign-in was denied (access_denied); error_description says why."
    )
    assert result.outputs == {
        "error": "access_denied",
        "error_description": "End-User aborted interaction",
    }
    assert _posts(public_app) == []
    public_app.assert_no_secret_leaked(logs)


def test_reused_code_is_rejected_and_revokes_the_grant(
    oidc_provider: OidcProvider,
    runs_for: Callable[..., Runs],
    logs: pytest.LogCaptureFixture,
) -> None:
    """The same code exchanged again, by a copy of the waiting run (as a second
    worker holding the stored run would send it), ends in code_rejected; the
    provider then revokes what the first exchange got."""
    first, second = runs_for("public-app"), runs_for("public-app")
    waiting = _waiting(first)
    second.engine.store.create(first.engine.store.load(waiting.run_id))
    # The copy was never started through second, which must check it too.
    second.run_ids.append(waiting.run_id)
    callback = Person(oidc_provider, LOGIN).consent(_link(waiting))

    signed_in = first.resume(waiting, callback_url=callback)
    tokens = signed_in.outputs
    usable_before = _accepted(oidc_provider, tokens["access_token"])
    reused = second.resume(waiting, callback_url=callback)

    assert signed_in.state == "signed_in"
    assert usable_before
    assert (reused.outcome, reused.state) == ("failure", "code_rejected")
    assert reused.message == (
        "The tenant did not accept the authorization code (it expired, was used, "
        "or the code_verifier or redirect_uri differ)."
    )
    assert reused.outputs == {
        "error": "invalid_grant",
        "error_description": "grant request is invalid",
    }
    assert "access_token" not in reused.outputs
    assert not _accepted(oidc_provider, tokens["access_token"])
    refresh = first.start("refresh", refresh_token=tokens["refresh_token"])
    assert (refresh.outcome, refresh.state) == ("failure", "revoked")
    first.assert_no_secret_leaked(logs)
    second.secrets |= first.secrets
    second.assert_no_secret_leaked(logs)


def test_wrong_client_secret_is_rejected(
    oidc_provider: OidcProvider,
    runs_for: Callable[..., Runs],
    logs: pytest.LogCaptureFixture,
) -> None:
    """A confidential client with a wrong secret signs the person in on the
    provider's pages, but its code exchange ends in client_rejected."""
    wrong = "not-the-confidential-secret-4d1f"
    runs = runs_for("confidential-app", wrong)
    waiting = _waiting(runs)
    callback = Person(oidc_provider, LOGIN).consent(_link(waiting))

    result = runs.resume(waiting, callback_url=callback)

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.message == (
        "The tenant did not accept the application (invalid_client); check the "
        "client id, the client secret and the grant types the application may use."
    )
    assert result.outputs == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    assert _form(_posts(runs)[0])["client_secret"] == wrong
    runs.assert_no_secret_leaked(logs)


# -- refresh -----------------------------------------------------------------------


def test_public_client_refresh_rotates_and_reuse_revokes(
    oidc_provider: OidcProvider, public_app: Runs, logs: pytest.LogCaptureFixture
) -> None:
    """A public client's refresh gives a new refresh token (rotated true); the old
    one then ends in revoked, and takes the new one with it."""
    old = _signed_in(public_app, oidc_provider).outputs["refresh_token"]

    refreshed = public_app.start("refresh", refresh_token=old)
    reused = public_app.start("refresh", refresh_token=old)
    successor = public_app.start(
        "refresh", refresh_token=refreshed.outputs["refresh_token"]
    )

    assert (refreshed.outcome, refreshed.state) == ("success", "refreshed")
    assert refreshed.message == "The tokens were refreshed."
    assert refreshed.outputs["rotated"] is True
    assert refreshed.outputs["refresh_token"] not in (None, old)
    assert refreshed.outputs["scope"].split() == [
        "openid",
        "profile",
        "email",
        "offline_access",
    ]
    assert refreshed.outputs["id_token"]
    assert (reused.outcome, reused.state) == ("failure", "revoked")
    assert reused.outputs == {
        "error": "invalid_grant",
        "error_description": "grant request is invalid",
    }
    assert (successor.outcome, successor.state) == ("failure", "revoked")
    assert not _accepted(oidc_provider, refreshed.outputs["access_token"])
    public_app.assert_no_secret_leaked(logs)


def test_confidential_client_refresh_keeps_the_token(
    oidc_provider: OidcProvider,
    confidential_app: Runs,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A confidential client's refresh answers with the same refresh token:
    rotated is false, and the token keeps working."""
    old = _signed_in(confidential_app, oidc_provider).outputs["refresh_token"]

    refreshed = confidential_app.start("refresh", refresh_token=old)
    again = confidential_app.start("refresh", refresh_token=old)

    for result in (refreshed, again):
        assert (result.outcome, result.state) == ("success", "refreshed")
        assert result.outputs["rotated"] is False
        assert result.outputs["refresh_token"] == old
        assert _accepted(oidc_provider, result.outputs["access_token"])
    assert refreshed.outputs["access_token"] != again.outputs["access_token"]
    confidential_app.assert_no_secret_leaked(logs)


def test_refresh_with_a_wider_scope_is_a_bad_request(
    oidc_provider: OidcProvider, public_app: Runs, logs: pytest.LogCaptureFixture
) -> None:
    """A refresh asking for a scope the refresh token lacks ends in bad_request
    with the provider's reason, and the refresh token is not spent."""
    token = _signed_in(public_app, oidc_provider).outputs["refresh_token"]

    wider = public_app.start("refresh", refresh_token=token, scope="openid phone")
    narrower = public_app.start("refresh", refresh_token=token, scope="openid")

    assert (wider.outcome, wider.state) == ("failure", "bad_request")
    assert wider.message == (
        "The tenant refused the request (invalid_scope); a refresh may only "
        "narrow the scope."
    )
    assert wider.outputs == {
        "error": "invalid_scope",
        "error_description": "refresh token missing requested scope",
    }
    assert (narrower.outcome, narrower.state) == ("success", "refreshed")
    assert narrower.outputs["scope"] == "openid"
    assert narrower.outputs["rotated"] is True
    public_app.assert_no_secret_leaked(logs)


# -- client_secret_basic -----------------------------------------------------------


def _basic_credentials(request: Request) -> tuple[str, str]:
    """The client id and secret of a request's Authorization: Basic header,
    decoded as RFC 6749 section 2.3.1 encodes them."""
    scheme, _, encoded = (request.header("Authorization") or "").partition(" ")
    assert scheme == "Basic", "no Authorization: Basic header"
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


def test_basic_client_signs_in_and_refreshes(
    oidc_provider: OidcProvider, basic_app: Runs, logs: pytest.LogCaptureFixture
) -> None:
    """A client registered for client_secret_basic, given client_auth basic,
    exchanges its code and refreshes with its secret in the header only."""
    signed_in = _signed_in(basic_app, oidc_provider)
    old = signed_in.outputs["refresh_token"]

    refreshed = basic_app.start("refresh", refresh_token=old)

    assert (refreshed.outcome, refreshed.state) == ("success", "refreshed")
    assert refreshed.outputs["rotated"] is False  # a confidential client's
    assert _accepted(oidc_provider, signed_in.outputs["access_token"])
    assert _accepted(oidc_provider, refreshed.outputs["access_token"])
    exchange, refresh = _posts(basic_app)
    assert _form(exchange)["grant_type"] == "authorization_code"
    assert _form(refresh)["grant_type"] == "refresh_token"
    for request in (exchange, refresh):
        assert _basic_credentials(request) == (
            "basic-app",
            oidc_provider.confidential_secret,
        )
        assert "client_secret" not in _form(request)
    basic_app.assert_no_secret_leaked(logs)


def test_basic_client_with_a_wrong_secret_is_rejected(
    oidc_provider: OidcProvider,
    runs_for: Callable[..., Runs],
    logs: pytest.LogCaptureFixture,
) -> None:
    """The provider checks the secret of the Basic header: a wrong one ends the
    code exchange in client_rejected."""
    wrong = "not-the-basic-secret-77e0"
    runs = runs_for("basic-app", wrong, "basic")
    waiting = _waiting(runs)
    callback = Person(oidc_provider, LOGIN).consent(_link(waiting))

    result = runs.resume(waiting, callback_url=callback)

    assert (result.outcome, result.state) == ("failure", "client_rejected")
    assert result.outputs == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    (exchange,) = _posts(runs)
    assert _basic_credentials(exchange) == ("basic-app", wrong)
    runs.assert_no_secret_leaked(logs)
