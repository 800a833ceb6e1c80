"""@auth0/auth0-spa-js in headless Chromium, from a page on its own loopback origin.

The page (``node/spa.html``, with the SDK's bundle from the pinned npm
project) signs in through the tenant's login pages, then calls the tenant
cross-origin (CORS): the code exchange, a refresh that asks for step-up
(``mfa_required``), and the SDK's MFA API to list, challenge and verify.
The tenant is served over HTTPS, as the SDK only speaks ``https``; the
browser is told to accept its self-signed certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pyotp
import pytest
from _chromium import start_chromium
from _node import installed
from _sdkkit import NODE_PROJECT, Steps
from _servers import serve_wsgi
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from mfaflow.tenant import (
    AuthenticatorConfig,
    Clock,
    LoopbackServer,
    Tenant,
    UserConfig,
    default_config,
    loopback_tls,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "spa@example.test"
PASSWORD = "spa-password-1"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
BUNDLE = "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js"


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A tenant over HTTPS whose user has OTP and must pass MFA on refresh too."""
    user = UserConfig.with_password(
        EMAIL,
        PASSWORD,
        work_factor=10,
        mfa="always",
        authenticators=(AuthenticatorConfig("otp", secret=SECRET),),
    )
    config = attrs.evolve(
        default_config(),
        users=(user,),
        step_up_on_refresh="always",
        password_work_factor=10,
    )
    context, _ = loopback_tls(tmp_path / "tls")
    with (
        Tenant(config, clock=Clock.fixed_for_tests(), control=True) as built,
        LoopbackServer(built, ssl_context=context) as served,
    ):
        yield served


@pytest.fixture
def page() -> Iterator[str]:
    """The single-page application, served on its own loopback origin."""
    project = installed(NODE_PROJECT)
    files = {
        "/auth0-spa-js.production.js": (
            project.directory / BUNDLE,
            "application/javascript",
        ),
    }
    html = (project.directory / "spa.html").read_bytes()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        found = files.get(environ["PATH_INFO"])
        if found is None:
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [html]
        start_response("200 OK", [("Content-Type", found[1])])
        return [found[0].read_bytes()]

    with serve_wsgi(app) as url:
        yield url


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    """Chromium that accepts the tenant's self-signed certificate."""
    browser = start_chromium(tmp_path / "profile", "--ignore-certificate-errors")
    browser.set_script_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


def _call(driver: WebDriver, body: str) -> dict[str, Any]:
    """Run ``body`` (an async function body with ``client``) in the page."""
    script = f"""
        const done = arguments[arguments.length - 1];
        window.app.then(async ({{ client, describe }}) => {{
            try {{ done({{ ok: true, value: await (async () => {{ {body} }})() }}); }}
            catch (error) {{ done({{ ok: false, error: describe(error) }}); }}
        }});
    """
    result: dict[str, Any] = driver.execute_async_script(script)
    return result


def _wait_for(driver: WebDriver, element_id: str) -> None:
    WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )


def _sign_in(driver: WebDriver, page: str, tenant: LoopbackServer, otp: str) -> str:
    domain = tenant.url.removeprefix("https://").rstrip("/")
    driver.get(f"{page}/?domain={domain}")
    _wait_for(driver, "password")
    driver.find_element(By.ID, "email").send_keys(EMAIL)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, 'form[action="/u/login"] button').click()
    _wait_for(driver, "code")
    driver.find_element(By.ID, "code").send_keys(otp)
    driver.find_element(By.CSS_SELECTOR, 'form[action="/u/mfa"] button').click()
    WebDriverWait(driver, 15).until(
        lambda d: (
            d.current_url.startswith(page)
            and d.find_element(By.ID, "status").text.startswith(("signed in", "failed"))
        )
    )
    status: str = driver.find_element(By.ID, "status").text
    return status


def test_spa_signs_in_steps_up_and_passes_mfa_across_origins(
    driver: WebDriver, page: str, tenant: LoopbackServer
) -> None:
    """spa-js exchanges its code, gets mfa_required on refresh, and passes OTP."""
    clock = tenant.tenant.clock
    totp = pyotp.TOTP(SECRET)
    # The previous step's code signs in; the current one is left for step-up.
    status = _sign_in(driver, page, tenant, totp.at(clock.now() - 30))
    refresh = _call(driver, "return await client.getTokenSilently({cacheMode: 'off'});")
    step_up = Steps({"refresh": refresh}).refused("refresh")
    token = repr(step_up["mfaToken"])
    otp = repr(totp.at(clock.now()))
    steps = Steps(
        {
            "list": _call(
                driver, f"return await client.mfa.getAuthenticators({token});"
            ),
            "challenge": _call(
                driver,
                "return await client.mfa.challenge("
                f"{{mfaToken: {token}, challengeType: 'otp'}});",
            ),
            "verify": _call(
                driver,
                "const answer = await client.mfa.verify("
                f"{{mfaToken: {token}, otp: {otp}}});"
                "return {access: Boolean(answer.access_token),"
                " id: Boolean(answer.id_token),"
                " refresh: Boolean(answer.refresh_token)};",
            ),
        }
    )

    assert status == f"signed in as {EMAIL}"
    assert (step_up["name"], step_up["error"]) == ("MfaRequiredError", "mfa_required")
    assert step_up["requirements"]["challenge"] == [{"type": "otp"}]
    assert [item["type"] for item in steps.ok("list")] == ["otp"]
    assert steps.ok("challenge")["challengeType"] == "otp"
    assert steps.ok("verify") == {"access": True, "id": True, "refresh": True}
    blocked = [
        entry["message"]
        for entry in driver.get_log("browser")
        if "CORS" in entry["message"] or "Access-Control" in entry["message"]
    ]
    assert blocked == []
