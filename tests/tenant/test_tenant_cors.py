"""CORS: browser pages on a client's allowed web origins may call the APIs."""

from __future__ import annotations

import attrs
import pytest
from _tenantkit import Api, Serve, error_of

from mfaflow.tenant import ClientConfig, TenantConfig

LOOPBACK_PAGE = "http://127.0.0.1:5173"


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("oauth/token", "POST"),
        ("oauth/revoke", "POST"),
        ("mfa/associate", "POST"),
        ("mfa/challenge", "POST"),
        ("mfa/authenticators", "GET"),
        ("mfa/authenticators/totp%7Cdev_1", "DELETE"),
        ("userinfo", "GET, POST"),
        (".well-known/openid-configuration", "GET"),
        (".well-known/jwks.json", "GET"),
    ],
)
def test_preflight_from_an_allowed_origin_is_answered(
    api: Api, path: str, methods: str
) -> None:
    """The demo SPA client's loopback origins pass the preflight of each API."""
    answer = api.session.options(
        api.url + path,
        headers={"Origin": LOOPBACK_PAGE, "Access-Control-Request-Method": "GET"},
    )

    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == LOOPBACK_PAGE
    assert answer.headers["Access-Control-Allow-Methods"] == methods
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "auth0-client"} <= {
        name.strip() for name in allowed.split(",")
    }
    assert "Origin" in answer.headers["Vary"]


def test_answers_to_an_allowed_origin_name_it(api: Api) -> None:
    """An actual call from an allowed origin gets Access-Control-Allow-Origin."""
    answer = api.session.post(
        api.url + "oauth/token",
        data={"grant_type": "password", "client_id": "mfaflow-demo"},
        headers={"Origin": "http://localhost:3000"},
    )

    assert answer.status_code == 400
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]


def test_other_origins_get_no_cors_headers(api: Api) -> None:
    """A foreign origin's preflight is 403 and its answers carry no CORS header."""
    refused = api.session.options(
        api.url + "oauth/token",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    answer = api.session.get(
        api.url + ".well-known/jwks.json", headers={"Origin": "https://evil.example"}
    )

    assert error_of(refused) == (
        403,
        "access_denied",
        "Origin 'https://evil.example' is not an allowed web origin of this "
        "tenant's clients; add it to a client's web_origins.",
    )
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["Vary"] == "Origin"


def test_login_pages_and_control_are_not_cross_origin(api: Api) -> None:
    """Only the APIs answer preflights; the pages and control surface do not."""
    for path in ("authorize", "u/login", "__control/clock"):
        answer = api.session.options(
            api.url + path,
            headers={"Origin": LOOPBACK_PAGE, "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in answer.headers, path


def test_configured_origins_match_exactly(
    base_config: TenantConfig, serve: Serve
) -> None:
    """A non-loopback origin matches only as written; a loopback one with a port too."""
    app = ClientConfig(
        "spa",
        grant_types=("authorization_code",),
        web_origins=("https://app.example.test/", "http://127.0.0.1:8080"),
    )
    with serve(attrs.evolve(base_config, clients=(app,))) as api:
        allowed = {
            origin: api.tenant.origin_allowed(origin)
            for origin in (
                "https://app.example.test",
                "https://app.example.test:8443",
                "http://app.example.test",
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8081",
                "null",
            )
        }

    assert allowed == {
        "https://app.example.test": True,
        "https://app.example.test:8443": False,
        "http://app.example.test": False,
        "http://127.0.0.1:8080": True,
        "http://127.0.0.1:8081": False,
        "null": False,
    }
