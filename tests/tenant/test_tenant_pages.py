"""The login pages over real HTTP: /authorize, password, MFA, enrolment, redirect."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import attrs
import jwt
import pyotp
import pytest
import segno
from _pagekit import (
    Browser,
    Page,
    Pkce,
    authorize_url,
    page_of,
    redeem_code,
    redirect_params,
)
from _tenantkit import FAST_WORK_FACTOR, wrong_code
from hypothesis import given
from hypothesis import strategies as st

from mfaflow import Client, Engine, RequestsTransport
from mfaflow.tenant import (
    AUTHORIZATION_CODE,
    DEMO_CLIENT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    AuthenticatorConfig,
    ClientConfig,
    LoopbackServer,
    Tenant,
    TenantConfig,
    UserConfig,
    hash_password,
)
from mfaflow.tenant._html import Notice, login_page

OTP_EMAIL = "otp@example.test"
MULTI_EMAIL = "multi@example.test"
PLAIN_EMAIL = "plain@example.test"
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
RECOVERY_CODE = "ABCDEFGHJKLMNPQRSTUVWXY2"
HOSTILE = "<script>alert(1)</script>\"'&"
HOSTILE_CLIENT = "hostile-app"
NO_CODE_CLIENT = "no-code-app"
CALLBACK = "http://127.0.0.1:45123/callback"


@pytest.fixture
def config(base_config: TenantConfig) -> TenantConfig:
    """The demo tenant plus users with factors, one without MFA, a hostile client."""
    cheap = hash_password(DEMO_PASSWORD, work_factor=FAST_WORK_FACTOR)
    users = (
        UserConfig(
            OTP_EMAIL,
            cheap,
            mfa="always",
            authenticators=(AuthenticatorConfig("otp", secret=OTP_SECRET),),
            recovery_code=RECOVERY_CODE,
        ),
        UserConfig(
            MULTI_EMAIL,
            cheap,
            mfa="always",
            authenticators=(
                AuthenticatorConfig("sms", phone_number="+15551234567"),
                AuthenticatorConfig("push"),
            ),
            recovery_code=RECOVERY_CODE,
        ),
        UserConfig(PLAIN_EMAIL, cheap, mfa="never"),
    )
    no_code = ClientConfig(
        NO_CODE_CLIENT,
        grant_types=("password",),
        callbacks=("http://127.0.0.1/callback",),
    )
    hostile = ClientConfig(
        HOSTILE_CLIENT,
        name=HOSTILE,
        grant_types=(AUTHORIZATION_CODE,),
        callbacks=("http://127.0.0.1/callback",),
    )
    return attrs.evolve(
        base_config,
        users=(*base_config.users, *users),
        clients=(*base_config.clients, hostile, no_code),
    )


@pytest.fixture
def browser(server: LoopbackServer) -> Iterator[Browser]:
    """A cookie-keeping HTTP client of the served tenant."""
    client = Browser(server.url)
    yield client
    client.close()


def _sign_in(
    browser: Browser, email: str, pkce: Pkce | None = None, **params: str | None
) -> Page:
    """Open /authorize and send the email and password; return the next page."""
    login = page_of(browser.get(authorize_url(browser.base, pkce, **params)))
    answer = browser.submit(login.form("/u/login"), email=email, password=DEMO_PASSWORD)
    assert answer.status_code == 200, answer.text
    return page_of(answer)


def _totp(tenant: Tenant, secret: str) -> str:
    return pyotp.TOTP(secret).at(tenant.clock.now())


def _exchange(browser: Browser, code: str, pkce: Pkce) -> dict[str, Any]:
    return redeem_code(browser.base, code, pkce, CALLBACK, browser.session)


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def test_sign_in_with_enrolment_ends_in_a_code_that_exchanges(
    browser: Browser, tenant: Tenant
) -> None:
    """Password, OTP enrolment and the recovery code lead back with a working code."""
    pkce = Pkce.new()
    enrol = _sign_in(browser, DEMO_EMAIL, pkce=pkce, state="s-1", nonce="n-1")
    secret = enrol.text("secret").replace(" ", "")

    shown = page_of(browser.submit(enrol.form("/u/enrol"), code=_totp(tenant, secret)))
    codes = shown.text_of_class("recovery-code")
    assert len(codes) == 1
    assert len(codes[0]) == 24
    back = browser.submit(shown.form("/u/recovery-code"))

    params = redirect_params(back)
    assert back.headers["Location"].startswith(CALLBACK + "?")
    assert params["state"] == "s-1"
    tokens = _exchange(browser, params["code"], pkce)
    claims = _claims(tokens["id_token"])
    assert claims["nonce"] == "n-1"
    assert claims["amr"] == ["pwd", "mfa"]
    assert "refresh_token" in tokens


def test_enrolment_page_shows_an_inline_qr_code_and_the_key(
    browser: Browser, tenant: Tenant
) -> None:
    """The enrolment page has an inline SVG QR code and the key as text, no images."""
    enrol = _sign_in(browser, DEMO_EMAIL)

    pending = [a for a in tenant.authenticators(DEMO_EMAIL) if a.type == "otp"]
    assert len(pending) == 1
    assert not pending[0].active
    assert enrol.text("secret").replace(" ", "") == pending[0].secret
    link = next(a["href"] for t, a in enrol.attributes if a.get("id") == "otpauth")
    assert link.startswith("otpauth://totp/")
    assert f"secret={pending[0].secret}" in link
    assert not {"img", "script", "link", "iframe"} & set(enrol.tags)
    code_input = next(
        i for i in enrol.form("/u/enrol").inputs if i.get("name") == "code"
    )
    assert code_input["autocomplete"] == "one-time-code"
    assert code_input["inputmode"] == "numeric"


def _dark_modules(path: str) -> set[tuple[int, int]]:
    """The dark modules a segno SVG path draws, as (column, row) from its corner."""
    cells: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, numbers in re.findall(r"([Mmh])([-\d. ]+)", path):
        values = [float(n) for n in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:
            cells |= {(int(x) + i, int(y)) for i in range(int(values[0]))}
            x += values[0]
    left = min(c for c, _ in cells)
    top = min(r for _, r in cells)
    return {(c - left, r - top) for c, r in cells}


def test_enrolment_qr_code_encodes_the_otpauth_uri(
    browser: Browser, tenant: Tenant
) -> None:
    """The page's QR code draws exactly the modules of the expected otpauth URI."""
    enrol = _sign_in(browser, DEMO_EMAIL)
    secret = enrol.text("secret").replace(" ", "")
    expected = (
        "otpauth://totp/mfaflow:demo@example.test?"
        f"secret={secret}&issuer=mfaflow&algorithm=SHA1&digits=6&period=30"
    )
    drawn = next(a["d"] for t, a in enrol.attributes if t == "path")

    renderings = [
        segno.make_qr(expected, error=level).matrix for level in ("l", "m", "q", "h")
    ]
    modules = [
        {(c, r) for r, row in enumerate(matrix) for c, dark in enumerate(row) if dark}
        for matrix in renderings
    ]
    assert _dark_modules(drawn) in modules


def test_wrong_enrolment_code_shows_an_error_and_keeps_the_qr_code(
    browser: Browser, tenant: Tenant
) -> None:
    """A wrong first code shows an error on the same enrolment page."""
    enrol = _sign_in(browser, DEMO_EMAIL)
    secret = enrol.text("secret")

    answer = browser.submit(
        enrol.form("/u/enrol"),
        code=wrong_code(secret.replace(" ", ""), tenant.clock.now()),
    )

    again = page_of(answer)
    assert answer.status_code == 400
    assert "not valid" in again.text("error")
    assert again.text("secret") == secret


def test_sign_in_with_an_authenticator_app(browser: Browser, tenant: Tenant) -> None:
    """A user with OTP gets the code page and is sent back with amr pwd and mfa."""
    pkce = Pkce.new()
    challenge = _sign_in(browser, OTP_EMAIL, pkce)

    form = challenge.form("/u/mfa")
    field = next(i for i in form.inputs if i.get("name") == "code")
    assert field["autocomplete"] == "one-time-code"
    assert field["inputmode"] == "numeric"
    assert any(t == "label" and a.get("for") == "code" for t, a in challenge.attributes)
    back = browser.submit(form, code=_totp(tenant, OTP_SECRET))

    tokens = _exchange(browser, redirect_params(back)["code"], pkce)
    assert _claims(tokens["id_token"])["amr"] == ["pwd", "mfa"]


def test_wrong_code_shows_an_error_and_a_right_one_then_passes(
    browser: Browser, tenant: Tenant
) -> None:
    """A wrong OTP shows an error on the page; the right one afterwards works."""
    challenge = _sign_in(browser, OTP_EMAIL)

    answer = browser.submit(
        challenge.form("/u/mfa"), code=wrong_code(OTP_SECRET, tenant.clock.now())
    )
    again = page_of(answer)
    back = browser.submit(again.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))

    assert answer.status_code == 400
    assert again.text("error") == "That code is not valid; check it and try again."
    assert "code" in redirect_params(back)


def test_too_many_wrong_codes_show_the_tenants_error(
    browser: Browser, tenant: Tenant
) -> None:
    """After ten wrong codes the page shows the tenant's too-many-attempts message."""
    page = _sign_in(browser, OTP_EMAIL)
    bad = wrong_code(OTP_SECRET, tenant.clock.now())
    for _ in range(10):
        page = page_of(browser.submit(page.form("/u/mfa"), code=bad))

    answer = browser.submit(page.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))

    assert answer.status_code == 429
    assert page_of(answer).text("error").startswith("Too many failed codes; wait")


def test_several_authenticators_offer_a_choice_and_sms_sends_a_code(
    browser: Browser, tenant: Tenant
) -> None:
    """A user with several factors chooses one; an SMS code from the outbox passes."""
    choose = _sign_in(browser, MULTI_EMAIL)
    form = choose.form("/u/mfa/choose")
    options = form.radios["authenticator"]
    by_id = {a.id: a for a in tenant.authenticators(MULTI_EMAIL, active_only=True)}
    kinds = sorted(by_id[o].channel if o in by_id else o for o in options)
    assert kinds == ["auth0", "otp", "recovery-code", "sms", "voice"]

    sms = next(o for o in options if o in by_id and by_id[o].channel == "sms")
    challenge = page_of(browser.submit(form, authenticator=sms))
    code = tenant.last_code(MULTI_EMAIL, "sms")
    back = browser.submit(challenge.form("/u/mfa"), code=code)

    assert "Send a new code" in challenge.form_with_button("Send a new code").buttons
    assert "code" in redirect_params(back)


def _choose(browser: Browser, page: Page, tenant: Tenant, channel: str) -> Page:
    by_id = {a.id: a for a in tenant.authenticators(MULTI_EMAIL, active_only=True)}
    form = page.form("/u/mfa/choose")
    chosen = next(
        o
        for o in form.radios["authenticator"]
        if (by_id[o].channel if o in by_id else o) == channel
    )
    return page_of(browser.submit(form, authenticator=chosen))


def test_push_waits_for_approval_then_sends_the_browser_back(
    browser: Browser, tenant: Tenant
) -> None:
    """The push page says so while pending, and continues once the push is approved."""
    waiting = _choose(browser, _sign_in(browser, MULTI_EMAIL), tenant, "auth0")
    refresh = next(a for t, a in waiting.attributes if a.get("http-equiv") == "refresh")

    early = page_of(browser.submit(waiting.form("/u/mfa/push")))
    tenant.approve_push(MULTI_EMAIL)
    tenant.clock.advance(tenant.config.limits.push_poll_limit.refill_seconds)
    back = browser.submit(early.form("/u/mfa/push"))

    assert refresh["content"].endswith("url=/u/mfa?poll=1")
    assert early.text("info") == "The notification has not been approved yet."
    assert "code" in redirect_params(back)


def test_rejected_push_shows_an_error_and_the_choice_again(
    browser: Browser, tenant: Tenant
) -> None:
    """A rejected push is reported on the page, which offers the methods again."""
    waiting = _choose(browser, _sign_in(browser, MULTI_EMAIL), tenant, "auth0")
    tenant.reject_push(MULTI_EMAIL)

    answer = browser.submit(waiting.form("/u/mfa/push"))

    page = page_of(answer)
    assert page.text("error") == "The notification was rejected."
    assert "authenticator" in page.form("/u/mfa/choose").radios


def test_recovery_code_passes_and_its_replacement_is_shown_once(
    browser: Browser, tenant: Tenant
) -> None:
    """Signing in with the recovery code shows its replacement, then sends back."""
    entry = _choose(browser, _sign_in(browser, MULTI_EMAIL), tenant, "recovery-code")

    shown = page_of(browser.submit(entry.form("/u/mfa"), code=RECOVERY_CODE.lower()))
    replacement = shown.text_of_class("recovery-code")[0]
    back = browser.submit(shown.form("/u/recovery-code"))

    assert len(replacement) == 24
    assert replacement != RECOVERY_CODE
    assert "code" in redirect_params(back)
    assert tenant.verify_recovery_code(MULTI_EMAIL, replacement)


def test_wrong_password_shows_the_error_and_keeps_the_email(browser: Browser) -> None:
    """A wrong password shows the form again with the error and the email kept."""
    login = page_of(browser.get(authorize_url(browser.base)))

    answer = browser.submit(
        login.form("/u/login"), email=DEMO_EMAIL, password="not-the-password-42"
    )

    page = page_of(answer)
    assert answer.status_code == 400
    assert page.text("error") == "Wrong email or password."
    assert page.form("/u/login").fields["email"] == DEMO_EMAIL
    assert "not-the-password-42" not in answer.text
    assert "Traceback" not in answer.text


def test_unknown_client_gets_an_error_page_not_a_redirect(browser: Browser) -> None:
    """An unknown client_id is answered with an error page (400), never a redirect."""
    answer = browser.get(authorize_url(browser.base, client_id="no-such-app"))

    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "There is no application 'no-such-app'." in page_of(answer).text("error")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:45123/other",
        "http://localhost.evil.example/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:45123/callback#fragment",
        'http://127.0.0.1/callback"><script>alert(1)</script>',
        None,
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page(
    browser: Browser, redirect_uri: str | None
) -> None:
    """A redirect_uri that is missing or not a callback of the client is never used."""
    answer = browser.get(
        authorize_url(browser.base, redirect_uri=redirect_uri, response_type="token")
    )

    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert page_of(answer).text("error").endswith(".")
    assert "<script>" not in answer.text


def test_hostile_client_name_and_login_hint_are_escaped(browser: Browser) -> None:
    """Markup in a client's name or a login_hint shows as text, never as markup."""
    answer = browser.get(
        authorize_url(
            browser.base,
            client_id=HOSTILE_CLIENT,
            login_hint=HOSTILE,
            redirect_uri="http://127.0.0.1:8080/callback",
        )
    )

    page = page_of(answer)
    assert "<script>" not in answer.text
    assert "script" not in page.tags
    assert f"Sign in to continue to {HOSTILE}." in page.visible_text
    assert page.form("/u/login").fields["email"] == HOSTILE


@given(text=st.text(), email=st.text())
def test_any_text_shown_on_a_page_stays_text(text: str, email: str) -> None:
    """Whatever a client name, email or message holds, the page shows it as text."""
    html = login_page(
        tenant=text,
        client=text,
        action="/u/login",
        csrf=text,
        email=email,
        notice=Notice(text),
    )

    page = Page(html)
    assert page.tags.count("input") == 3
    assert not {"script", "img", "iframe", "svg"} & set(page.tags)
    assert page.texts["error"] == text
    assert page.form("/u/login").fields == {
        "csrf": text,
        "email": email,
        "password": "",
    }


def test_hostile_state_comes_back_exactly_and_never_as_markup(
    browser: Browser, tenant: Tenant
) -> None:
    """A state holding markup is returned as it was sent and appears in no page."""
    state = HOSTILE + "&code=forged#x"
    challenge = _sign_in(browser, OTP_EMAIL, state=state)

    back = browser.submit(challenge.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))

    params = redirect_params(back)
    assert params["state"] == state
    assert params["code"] != "forged"
    assert "<script>" not in (browser.last.text if browser.last else "")


def test_post_without_the_anti_forgery_token_is_refused(browser: Browser) -> None:
    """A form post without (or with a wrong) CSRF token is refused with 403."""
    login = page_of(browser.get(authorize_url(browser.base)))
    fields = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}

    missing = browser.post("/u/login", fields)
    wrong = browser.post("/u/login", {**fields, "csrf": "forged"})
    still = page_of(browser.get(browser.base + "u/login"))

    assert (missing.status_code, wrong.status_code) == (403, 403)
    refused = page_of(missing).visible_text
    assert "The form could not be verified" in refused
    assert "so nothing you entered was used" in refused
    assert "Go back to the application and sign in again." in refused
    assert (
        still.form("/u/login").fields["csrf"] == login.form("/u/login").fields["csrf"]
    )


def test_prompt_none_without_a_session_redirects_with_login_required(
    browser: Browser,
) -> None:
    """prompt=none with no login session goes back with login_required and state."""
    answer = browser.get(authorize_url(browser.base, prompt="none", state="s-9"))

    params = redirect_params(answer)
    assert params["error"] == "login_required"
    assert params["error_description"].endswith(".")
    assert params["state"] == "s-9"
    assert "code" not in params


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        (
            {"code_challenge": "x" * 43, "code_challenge_method": "S512"},
            "invalid_request",
        ),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"audience": "https://unknown.example.test/"}, "access_denied"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"client_id": NO_CODE_CLIENT}, "unauthorized_client"),
    ],
)
def test_bad_requests_go_back_to_the_client_with_an_error(
    browser: Browser, params: dict[str, str | None], error: str
) -> None:
    """Errors found after the redirect_uri is checked go back with error and state."""
    answer = browser.get(authorize_url(browser.base, state="s-2", **params))

    back = redirect_params(answer)
    assert back["error"] == error
    assert back["state"] == "s-2"
    assert back["error_description"].endswith(".")


def test_repeated_parameter_goes_back_with_invalid_request(browser: Browser) -> None:
    """A parameter given twice is refused back at the client as invalid_request."""
    answer = browser.get(authorize_url(browser.base, state="s-5") + "&scope=openid")

    back = redirect_params(answer)
    assert back["error"] == "invalid_request"
    assert back["error_description"] == "Parameter 'scope' was given twice."


def test_try_another_method_offers_the_recovery_code(
    browser: Browser, tenant: Tenant
) -> None:
    """A user with one factor gets it at once, and the recovery code on request."""
    challenge = _sign_in(browser, OTP_EMAIL)

    listed = page_of(browser.submit(challenge.form_with_button("Try another method")))

    otp = tenant.authenticators(OTP_EMAIL, active_only=True)[0]
    assert listed.form("/u/mfa/choose").radios["authenticator"] == [
        otp.id,
        "recovery-code",
    ]


def test_prompt_none_when_mfa_is_due_redirects_with_interaction_required(
    browser: Browser, server: LoopbackServer
) -> None:
    """prompt=none in a session that must still pass MFA goes back with an error."""
    challenge = _sign_in(browser, OTP_EMAIL)
    browser.submit(challenge.form("/u/mfa"), code=_totp(server.tenant, OTP_SECRET))

    answer = browser.get(
        authorize_url(
            browser.base, prompt="none", audience=server.tenant.mfa_audience, state="s"
        )
    )

    back = redirect_params(answer)
    assert back["error"] == "interaction_required"
    assert back["state"] == "s"


def test_session_skips_the_password_and_prompt_login_asks_again(
    browser: Browser, tenant: Tenant
) -> None:
    """A second /authorize from the browser skips the password, unless prompt=login."""
    challenge = _sign_in(browser, OTP_EMAIL)
    browser.submit(challenge.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))

    again = browser.get(authorize_url(browser.base, state="s-3"))
    forced = browser.get(authorize_url(browser.base, prompt="login"))
    silent = browser.get(authorize_url(browser.base, prompt="none", state="s-4"))

    assert redirect_params(again)["state"] == "s-3"
    assert "code" in redirect_params(again)
    assert page_of(forced).form("/u/login")
    assert "code" in redirect_params(silent)


def test_mfa_api_audience_asks_for_mfa_even_within_a_session(
    browser: Browser, server: LoopbackServer
) -> None:
    """For the MFA API's audience MFA is asked again, even after MFA in the session."""
    tenant = server.tenant
    challenge = _sign_in(browser, OTP_EMAIL)
    browser.submit(challenge.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))

    answer = browser.get(
        authorize_url(browser.base, audience=tenant.mfa_audience, scope="enroll")
    )
    again = page_of(answer)
    tenant.clock.advance(30)  # each code is accepted once
    back = browser.submit(again.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))

    assert "code" in redirect_params(back)


def test_user_without_mfa_is_sent_back_after_the_password(
    browser: Browser,
) -> None:
    """A user whose policy is never is sent back after the password, amr pwd only."""
    pkce = Pkce.new()
    login = page_of(browser.get(authorize_url(browser.base, pkce)))

    back = browser.submit(
        login.form("/u/login"), email=PLAIN_EMAIL, password=DEMO_PASSWORD
    )

    tokens = _exchange(browser, redirect_params(back)["code"], pkce)
    assert _claims(tokens["id_token"])["amr"] == ["pwd"]


def test_pages_send_security_headers_and_safe_cookies(browser: Browser) -> None:
    """Pages forbid framing, caching, referrers and foreign assets; cookies are safe."""
    redirect = browser.session.get(
        authorize_url(browser.base, redirect_uri="http://127.0.0.1:8123/callback"),
        allow_redirects=False,
        timeout=10,
    )
    page = browser.get(browser.base + "u/login")

    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "form-action 'self' http://127.0.0.1:8123;" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    cookie = redirect.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_an_expired_sign_in_shows_an_error_page(
    browser: Browser, tenant: Tenant
) -> None:
    """A form sent after the sign-in expired gets an error page, not a traceback."""
    login = page_of(browser.get(authorize_url(browser.base)))
    tenant.clock.advance(3601)

    answer = browser.submit(
        login.form("/u/login"), email=DEMO_EMAIL, password=DEMO_PASSWORD
    )

    assert answer.status_code == 400
    assert "expired" in page_of(answer).text("error")


def test_logs_hold_no_password_code_or_key(
    browser: Browser, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """Signing in through the pages logs no password, one-time code or key."""
    caplog.set_level(logging.DEBUG)
    enrol = _sign_in(browser, DEMO_EMAIL)
    secret = enrol.text("secret").replace(" ", "")
    code = _totp(tenant, secret)
    shown = page_of(browser.submit(enrol.form("/u/enrol"), code=code))
    back = browser.submit(shown.form("/u/recovery-code"))
    issued = redirect_params(back)["code"]

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "passed MFA" in logged or "enrolled" in logged
    for value in (
        DEMO_PASSWORD,
        secret,
        code,
        issued,
        *shown.text_of_class("recovery-code"),
    ):
        assert value not in logged


def test_shipped_authorize_flow_signs_in_through_the_pages(
    browser: Browser, server: LoopbackServer
) -> None:
    """The authorize flow's URL leads through the pages to a callback it accepts."""
    tenant = server.tenant
    client = Client(server.url, DEMO_CLIENT_ID, redirect_uri=CALLBACK)
    with RequestsTransport() as transport:
        engine = Engine(client, transport=transport, clock=tenant.clock.now)
        waiting = engine.start("authorize", {"login_hint": OTP_EMAIL})
        url = waiting.waiting_for[0].link
        assert url is not None
        assert url.startswith(server.url + "authorize?")

        login = page_of(browser.get(url))
        assert login.form("/u/login").fields["email"] == OTP_EMAIL
        challenge = page_of(
            browser.submit(login.form("/u/login"), password=DEMO_PASSWORD)
        )
        back = browser.submit(challenge.form("/u/mfa"), code=_totp(tenant, OTP_SECRET))
        result = engine.resume(
            waiting.run_id, {"callback_url": back.headers["Location"]}
        )

    assert result.succeeded, result.message
    assert _claims(result.outputs["id_token"])["nonce"] == result.outputs["nonce"]
