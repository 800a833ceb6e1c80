"""The token endpoint over HTTP: password grants, client authentication, errors."""

from __future__ import annotations

import base64
import logging
from typing import Any

import attrs
import jwt
import pytest
import requests
from _tenantkit import Api, Serve, error_of

from mfaflow.tenant import (
    CLIENT_CREDENTIALS,
    DEMO_API,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_SERVER_CLIENT_ID,
    DEMO_SERVER_CLIENT_SECRET,
    PASSWORD,
    PASSWORD_REALM,
    ApiConfig,
    MemoryStore,
    TenantConfig,
    User,
)

EMAIL = "plain@example.test"
SECRET_PASSWORD = "plain-user-password-7"


@pytest.fixture
def plain_user(api: Api) -> User:
    """A user without MFA."""
    return api.tenant.add_user(EMAIL, SECRET_PASSWORD, name="Plain User")


def _login(api: Api, *, json: bool = False, **fields: Any) -> requests.Response:
    defaults = {
        "grant_type": PASSWORD,
        "username": EMAIL,
        "password": SECRET_PASSWORD,
        "audience": DEMO_API,
        "scope": "openid profile email offline_access",
    }
    send = api.token_json if json else api.token
    return send(**{**defaults, **fields})


@pytest.mark.parametrize("json", [False, True], ids=["form", "json"])
@pytest.mark.usefixtures("plain_user")
def test_password_grant_issues_tokens(api: Api, json: bool) -> None:
    """A user without MFA gets access, ID and refresh tokens, by form or JSON."""
    answer = _login(api, json=json)

    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert body["scope"] == "openid profile email read:data offline_access"
    assert {"access_token", "id_token", "refresh_token"} <= body.keys()
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.usefixtures("plain_user")
def test_password_realm_grant_needs_the_connection_as_realm(api: Api) -> None:
    """password-realm works with the connection's name and refuses another realm."""
    good = _login(
        api, grant_type=PASSWORD_REALM, realm="Username-Password-Authentication"
    )
    bad = _login(api, grant_type=PASSWORD_REALM, realm="other-db")
    missing = _login(api, grant_type=PASSWORD_REALM)

    assert good.status_code == 200
    status, error, description = error_of(bad)
    assert (status, error) == (400, "invalid_request")
    assert "'other-db'" in description
    assert error_of(missing)[:2] == (400, "invalid_request")


@pytest.mark.usefixtures("plain_user")
@pytest.mark.parametrize(
    ("username", "password"),
    [(EMAIL, "not-the-password"), ("nobody@example.test", SECRET_PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_wrong_credentials_answer_invalid_grant_403(
    api: Api, username: str, password: str
) -> None:
    """A wrong password and an unknown user get the same 403 answer."""
    answer = _login(api, username=username, password=password)

    assert error_of(answer) == (403, "invalid_grant", "Wrong email or password.")


@pytest.mark.usefixtures("plain_user")
def test_without_api_scopes_every_api_scope_is_granted(api: Api) -> None:
    """Requesting no API scope grants all of the API's scopes, and says so in scope."""
    answer = _login(api, scope="openid")

    assert answer.json()["scope"] == "openid read:data"
    assert "refresh_token" not in answer.json()


@pytest.mark.usefixtures("plain_user")
def test_unknown_audience_is_access_denied(api: Api) -> None:
    """An audience that names no API answers 403 access_denied."""
    status, error, description = error_of(_login(api, audience="https://nope.test/"))

    assert (status, error) == (403, "access_denied")
    assert "https://nope.test/" in description


@pytest.mark.usefixtures("plain_user")
def test_tokens_verify_with_the_published_jwks(api: Api) -> None:
    """Access and ID tokens are RS256 JWTs verifiable with the tenant's JWKS."""
    body = _login(api).json()
    jwks_client = jwt.PyJWKClient(api.url + ".well-known/jwks.json")

    access_key = jwks_client.get_signing_key_from_jwt(body["access_token"])
    access = jwt.decode(
        body["access_token"],
        access_key.key,
        algorithms=["RS256"],
        audience=DEMO_API,
        issuer=api.url,
    )
    identity = jwt.decode(
        body["id_token"],
        jwks_client.get_signing_key_from_jwt(body["id_token"]).key,
        algorithms=["RS256"],
        audience=DEMO_CLIENT_ID,
        issuer=api.url,
    )

    assert jwt.get_unverified_header(body["access_token"])["kid"] == access_key.key_id
    assert access["aud"] == [DEMO_API, api.url + "userinfo"]
    assert access["scope"] == "openid profile email read:data offline_access"
    assert access["azp"] == DEMO_CLIENT_ID
    assert identity["email"] == EMAIL
    assert identity["name"] == "Plain User"
    assert identity["amr"] == ["pwd"]


def test_discovery_describes_the_tenant(api: Api) -> None:
    """The OpenID configuration names the issuer, endpoints and Auth0's MFA endpoint."""
    metadata = api.get(".well-known/openid-configuration").json()

    assert metadata["issuer"] == api.url
    assert metadata["token_endpoint"] == api.url + "oauth/token"
    assert metadata["jwks_uri"] == api.url + ".well-known/jwks.json"
    assert metadata["userinfo_endpoint"] == api.url + "userinfo"
    assert metadata["authorization_endpoint"] == api.url + "authorize"
    assert metadata["mfa_challenge_endpoint"] == api.url + "mfa/challenge"
    assert (
        "http://auth0.com/oauth/grant-type/mfa-oob" in metadata["grant_types_supported"]
    )
    assert metadata["code_challenge_methods_supported"] == ["S256", "plain"]


@pytest.mark.usefixtures("plain_user")
def test_userinfo_returns_the_claims_the_scope_allows(api: Api) -> None:
    """/userinfo answers a bearer access token with profile and email claims."""
    token = _login(api).json()["access_token"]

    answer = api.get("userinfo", token=token)

    assert answer.status_code == 200
    assert answer.json() == {
        "sub": api.tenant.find_user(EMAIL).id,  # type: ignore[union-attr]
        "name": "Plain User",
        "nickname": "plain",
        "email": EMAIL,
        "email_verified": True,
    }


@pytest.mark.usefixtures("plain_user")
def test_userinfo_refuses_missing_and_foreign_tokens(api: Api) -> None:
    """/userinfo answers 401 invalid_token without a token or for an API-only token."""
    api_only = _login(api, scope="read:data").json()["access_token"]

    assert error_of(api.get("userinfo"))[:2] == (401, "invalid_token")
    assert error_of(api.get("userinfo", token=api_only))[:2] == (401, "invalid_token")
    assert error_of(api.get("userinfo", token="a.b.c"))[:2] == (401, "invalid_token")


# --- Clients --------------------------------------------------------------------------


def test_unknown_client_is_invalid_client(api: Api) -> None:
    """An unknown client_id answers 401 invalid_client."""
    answer = _login(api, client_id="no-such-client")

    assert error_of(answer)[:2] == (401, "invalid_client")


def _server_login(api: Api, **fields: str) -> requests.Response:
    return api.token(
        client_id=DEMO_SERVER_CLIENT_ID,
        grant_type=PASSWORD,
        username=EMAIL,
        password=SECRET_PASSWORD,
        **fields,
    )


@pytest.mark.usefixtures("plain_user")
def test_confidential_client_authenticates_by_post_or_basic(api: Api) -> None:
    """A confidential client may send its secret in the body or by HTTP Basic."""
    by_post = _server_login(api, client_secret=DEMO_SERVER_CLIENT_SECRET)
    by_basic = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": PASSWORD, "username": EMAIL, "password": SECRET_PASSWORD},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )

    assert by_post.status_code == 200
    assert by_basic.status_code == 200


@pytest.mark.usefixtures("plain_user")
def test_confidential_client_authentication_failures(api: Api) -> None:
    """Missing or wrong secrets are 401 invalid_client; two methods at once are 400."""
    missing = _server_login(api)
    wrong = _server_login(api, client_secret="wrong")
    wrong_basic = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": PASSWORD, "username": EMAIL, "password": SECRET_PASSWORD},
        auth=(DEMO_SERVER_CLIENT_ID, "wrong"),
    )
    both = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": PASSWORD, "client_secret": DEMO_SERVER_CLIENT_SECRET},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )
    garbled = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": PASSWORD},
        headers={"Authorization": "Basic %%%"},
    )

    assert error_of(missing)[:2] == (401, "invalid_client")
    assert error_of(wrong)[:2] == (401, "invalid_client")
    assert error_of(wrong_basic)[:2] == (401, "invalid_client")
    assert wrong_basic.headers["WWW-Authenticate"].startswith("Basic")
    assert error_of(both)[:2] == (400, "invalid_request")
    assert error_of(garbled)[:2] == (401, "invalid_client")


def test_grant_not_allowed_for_the_client_is_unauthorized_client(api: Api) -> None:
    """A grant the client may not use answers 403 with Auth0's description."""
    answer = api.token(grant_type=CLIENT_CREDENTIALS, audience=DEMO_API)

    assert error_of(answer) == (
        403,
        "unauthorized_client",
        "Grant type `client_credentials` not allowed for the client.",
    )


def test_unknown_grant_type_is_unsupported(api: Api) -> None:
    """A grant type the tenant does not implement answers 400 unsupported_grant_type."""
    answer = api.token(grant_type="urn:example:grant")

    assert error_of(answer)[:2] == (400, "unsupported_grant_type")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("text/plain", b"grant_type=password"),
        ("application/x-www-form-urlencoded", b"grant_type=password&grant_type=x"),
        ("application/x-www-form-urlencoded", b"client_id=mfaflow-demo"),
        ("application/json", b'{"grant_type": 7, "client_id": "mfaflow-demo"}'),
    ],
    ids=["not-json", "json-array", "text-plain", "repeated", "no-grant", "not-string"],
)
def test_malformed_bodies_are_invalid_request(
    api: Api, content_type: str, body: bytes
) -> None:
    """Bodies that are not JSON objects or forms, or lack fields, answer 400."""
    answer = api.session.post(
        api.url + "oauth/token", data=body, headers={"Content-Type": content_type}
    )

    status, error, description = error_of(answer)
    assert (status, error) == (400, "invalid_request")
    assert description.endswith(".")


@pytest.mark.parametrize(
    "path", ["oauth/token", "mfa/challenge", "oauth/revoke", "__control/users"]
)
@pytest.mark.parametrize(
    "body",
    [b"[" * 20_000 + b"]" * 20_000, b'{"a": ' * 8_000 + b"1" + b"}" * 8_000],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_is_invalid_request(
    api: Api, path: str, body: bytes
) -> None:
    """A JSON body nested thousands deep answers 400, not a server error."""
    answer = api.session.post(
        api.url + path, data=body, headers={"Content-Type": "application/json"}
    )

    assert error_of(answer) == (
        400,
        "invalid_request",
        "The request body nests JSON values too deeply.",
    )


def test_missing_password_is_invalid_request(api: Api) -> None:
    """A password grant without a password names the missing parameter."""
    answer = api.token(grant_type=PASSWORD, username=DEMO_EMAIL)

    assert error_of(answer) == (
        400,
        "invalid_request",
        "Missing required parameter: password.",
    )


def test_oversized_body_is_refused(api: Api) -> None:
    """A body over 64 KiB answers 413 with a JSON error."""
    answer = api.token(grant_type=PASSWORD, username="x" * 70_000)

    assert error_of(answer)[:2] == (413, "invalid_request")


# --- Client credentials ---------------------------------------------------------------


def test_client_credentials_issue_an_api_token(api: Api) -> None:
    """A confidential client gets an API token for its api_access, without ID token."""
    answer = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": CLIENT_CREDENTIALS, "audience": DEMO_API},
        auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
    )

    body = answer.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert answer.status_code == 200
    assert body["scope"] == "read:data"
    assert "id_token" not in body
    assert claims["sub"] == f"{DEMO_SERVER_CLIENT_ID}@clients"
    assert claims["aud"] == DEMO_API


def test_client_credentials_need_an_audience_the_client_may_use(
    api: Api, base_config: TenantConfig, serve: Serve
) -> None:
    """Client credentials fail without audience, or for an API not granted."""
    other = ApiConfig("https://other.test/", scopes=("x",))
    config = attrs.evolve(base_config, apis=(*base_config.apis, other))

    def ask(client: Api, **fields: str) -> requests.Response:
        return client.session.post(
            client.url + "oauth/token",
            data={"grant_type": CLIENT_CREDENTIALS, **fields},
            auth=(DEMO_SERVER_CLIENT_ID, DEMO_SERVER_CLIENT_SECRET),
        )

    with serve(config) as with_other_api:
        not_granted = ask(with_other_api, audience="https://other.test/")

    assert error_of(ask(api))[:2] == (400, "invalid_request")
    assert error_of(ask(api, audience="https://nope.test/"))[:2] == (
        403,
        "access_denied",
    )
    assert error_of(not_granted)[:2] == (403, "access_denied")


# --- The application ------------------------------------------------------------------


def test_unknown_paths_and_methods_answer_json(api: Api) -> None:
    """Unknown paths are 404 and wrong methods 405, both as JSON errors."""
    missing = api.get("no/such/path")
    wrong_method = api.get("oauth/token")

    assert error_of(missing)[:2] == (404, "not_found")
    assert error_of(wrong_method)[:2] == (405, "method_not_allowed")
    assert wrong_method.headers["Allow"] == "POST"


class _BrokenStore(MemoryStore):
    """A store whose user lookups fail, as a broken database would."""

    def find_user(self, email: str) -> User | None:
        raise RuntimeError(f"database is gone while looking up {email}")


def test_unexpected_failure_is_a_json_500_without_details(
    base_config: TenantConfig, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception answers 500 server_error; neither body nor log leak."""
    caplog.set_level(logging.DEBUG)
    config = attrs.evolve(base_config, users=())
    with serve(config, store=_BrokenStore()) as broken:
        answer = broken.token(
            grant_type=PASSWORD, username=DEMO_EMAIL, password=DEMO_PASSWORD
        )

    assert answer.status_code == 500
    assert answer.json() == {
        "error": "server_error",
        "error_description": "The tenant met an unexpected error.",
    }
    assert "RuntimeError" in caplog.text
    assert "Traceback" not in answer.text
    assert DEMO_PASSWORD not in caplog.text
    assert DEMO_EMAIL not in caplog.text


def test_basic_credentials_are_form_decoded(api: Api) -> None:
    """HTTP Basic credentials are form-urlencoded before base64, per RFC 6749."""
    raw = f"{DEMO_SERVER_CLIENT_ID}:{DEMO_SERVER_CLIENT_SECRET}".replace("-", "%2D")
    header = "Basic " + base64.b64encode(raw.encode()).decode()

    answer = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": CLIENT_CREDENTIALS, "audience": DEMO_API},
        headers={"Authorization": header},
    )

    assert answer.status_code == 200
