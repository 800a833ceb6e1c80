"""The callback's iss (RFC 9207): the authorize flow refuses another issuer's."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mfaflow import Client, Engine, MemoryStore, RequestsTransport, RunResult
from mfaflow._auth0_actions import parse_callback
from mfaflow._registry import ActionContext
from mfaflow.tenant import (
    ClientConfig,
    Clock,
    LoopbackServer,
    Tenant,
    TenantConfig,
    UserConfig,
)

CLIENT_ID = "browser-app"
CALLBACK = "http://127.0.0.1/callback"
USER = "ann@example.test"
ISSUER = "https://tenant.example.test/"


def read(url: str, issuer: str | None = ISSUER) -> tuple[str, dict[str, str | None]]:
    """The event and result of parse_callback for ``url``."""
    context = ActionContext(
        run_id="r", flow="authorize", state="read", client=None, now=0.0
    )
    found = parse_callback(context, {"url": url, "issuer": issuer})
    return found.event, found.result


def test_the_callback_iss_is_read():
    """parse_callback gives the callback's iss beside its code and state."""
    event, result = read(f"{CALLBACK}?code=c1&state=s1&iss={ISSUER}")

    assert event == "ok"
    assert (result["code"], result["state"], result["iss"]) == ("c1", "s1", ISSUER)


@pytest.mark.parametrize(
    "url",
    [
        f"{CALLBACK}?code=c1&state=s1&iss=https://evil.example.test/",
        f"{CALLBACK}?error=access_denied&state=s1&iss=https://evil.example.test/",
        f"{CALLBACK}#code=c1&iss=https://tenant.example.test.evil/",
    ],
)
def test_another_issuer_is_wrong(url: str):
    """A code or an error from another issuer, in the query or the fragment,
    is the event wrong_issuer."""
    assert read(url)[0] == "wrong_issuer"


def test_a_trailing_slash_does_not_count():
    """The issuer as configured and the iss may differ by a trailing slash."""
    assert read(f"{CALLBACK}?code=c1&iss=https://tenant.example.test")[0] == "ok"
    url = f"{CALLBACK}?code=c1&iss={ISSUER}"
    assert read(url, issuer="https://tenant.example.test")[0] == "ok"


def test_a_callback_without_iss_is_accepted():
    """A server that sends no iss is not refused; iss is then null."""
    event, result = read(f"{CALLBACK}?code=c1&state=s1")

    assert event == "ok"
    assert result["iss"] is None


# -- the authorize flow, at the embedded tenant ---------------------------------


@pytest.fixture
def served() -> Iterator[LoopbackServer]:
    """A tenant with a browser client and one user, served on loopback."""
    config = TenantConfig(
        name="issuer",
        clients=(
            ClientConfig(
                CLIENT_ID, grant_types=("authorization_code",), callbacks=(CALLBACK,)
            ),
        ),
        users=(UserConfig.with_password(USER, "pw-9d1e0b", work_factor=10),),
        password_work_factor=10,
    )
    with (
        Tenant(config, clock=Clock.fixed(1_750_000_000.0), control=True) as tenant,
        LoopbackServer(tenant) as server,
    ):
        yield server


@pytest.fixture
def engine(served: LoopbackServer) -> Iterator[Engine]:
    """An engine for the browser client at the served tenant."""
    client = Client(served.url, CLIENT_ID, redirect_uri=CALLBACK)
    with RequestsTransport() as transport:
        yield Engine(
            client,
            transport=transport,
            store=MemoryStore(),
            clock=served.tenant.clock.now,
        )


def callback(served: LoopbackServer, waiting: RunResult, **extra: str) -> str:
    """The callback URL the tenant's login pages send the browser to, plus ``extra``."""
    link = waiting.waiting_for[0].link
    assert link is not None
    asked = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    code = served.tenant.issue_authorization_code(
        CLIENT_ID,
        USER,
        asked["redirect_uri"],
        scope=asked["scope"],
        code_challenge=asked["code_challenge"],
        code_challenge_method=asked["code_challenge_method"],
        nonce=asked["nonce"],
    )
    return f"{CALLBACK}?{urlencode({'code': code, 'state': asked['state'], **extra})}"


def test_a_callback_from_another_issuer_fails_the_sign_in(
    served: LoopbackServer, engine: Engine
):
    """The run ends as issuer_mismatch without exchanging the code."""
    waiting = engine.start("authorize")
    url = callback(served, waiting, iss="https://evil.example.test/")

    result = engine.resume(waiting.run_id, {"callback_url": url})

    assert (result.outcome, result.state) == ("failure", "issuer_mismatch")
    assert result.outputs["error"] == "issuer_mismatch"
    assert result.message == (
        f"The callback's iss names another issuer than {served.url}, so another "
        "server sent it (possibly a mix-up attack); start again."
    )
    assert "exchange" not in [entry.state for entry in result.history]


@pytest.mark.parametrize("iss", [None, "own"])
def test_a_callback_without_iss_or_with_the_issuer_signs_in(
    served: LoopbackServer, engine: Engine, iss: str | None
):
    """The tenant's own callback (it sends no iss), or one naming the tenant,
    is exchanged for tokens."""
    waiting = engine.start("authorize")
    extra = {} if iss is None else {"iss": served.url}
    url = callback(served, waiting, **extra)

    result = engine.resume(waiting.run_id, {"callback_url": url})

    assert (result.outcome, result.state) == ("success", "signed_in")
    assert result.outputs["access_token"]
