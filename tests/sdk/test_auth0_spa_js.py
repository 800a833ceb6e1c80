"""@auth0/auth0-spa-js in headless Chromium, from a page on its own loopback origin.

The page (``node/spa.html``, with the SDK's bundle from the pinned npm
project) signs in through the tenant's login pages, then calls the tenant
cross-origin (CORS): the code exchange, a refresh that asks for step-up
(``mfa_required``), and the SDK's MFA API to list, challenge and verify.
The tenant is ``mfaflow serve --tls --control --config FILE``, a child
process serving HTTPS, as the SDK only speaks ``https``; the browser is
told to accept its self-signed certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from _chromium import start_chromium
from _node import installed
from _sdkkit import NODE_PROJECT, Steps
from _serve import Served, served
from _servers import serve_wsgi
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from mfaflow.tenant import DEMO_API, DEMO_CLIENT_ID

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "spa@example.test"
PASSWORD = "spa-password-1"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
BUNDLE = "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js"
#: The tenant: the demo's public client and API, and a user with OTP who
#: must pass MFA on refresh too.
CONFIG = f"""\
name: spa
password_work_factor: 10
step_up_on_refresh: always
clients:
  - client_id: {DEMO_CLIENT_ID}
    grant_types: [password, mfa, refresh_token, authorization_code]
    callbacks: [http://127.0.0.1/callback]
    web_origins: [http://127.0.0.1]
apis:
  - identifier: {DEMO_API}
    scopes: [read:data]
    allow_offline_access: true
users:
  - email: {EMAIL}
    password: {PASSWORD}
    mfa: always
    authenticators:
      - {{type: otp, secret: {SECRET}}}
"""


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Served]:
    """`mfaflow serve --tls --control --config` with the test's configuration."""
    config = tmp_path / "tenant.yaml"
    config.write_text(CONFIG)
    with served(
        "--tls", "--control", "--config", str(config), data_home=tmp_path
    ) as running:
        yield running


def _control(tenant: Served, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the served tenant's control surface; return the JSON answer."""
    url = tenant.url + "__control/" + path
    answer = (
        requests.get(url, verify=str(tenant.certificate), timeout=30)
        if body is None
        else requests.post(url, json=body, verify=str(tenant.certificate), timeout=30)
    )
    assert answer.ok, answer.text
    return answer.json()


def _now(tenant: Served) -> float:
    now: float = _control(tenant, "clock")["now"]
    return now


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


def _sign_in(driver: WebDriver, page: str, tenant: Served, otp: str) -> str:
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
    driver: WebDriver, page: str, tenant: Served
) -> None:
    """spa-js exchanges its code, gets mfa_required on refresh, and passes OTP."""
    totp = pyotp.TOTP(SECRET)
    # One second into a TOTP step of the tenant's clock, the previous step's
    # code signs in while that step lasts; the current one is left for step-up.
    _control(tenant, "clock/advance", {"seconds": 31 - _now(tenant) % 30})
    status = _sign_in(driver, page, tenant, totp.at(_now(tenant) - 30))
    refresh = _call(driver, "return await client.getTokenSilently({cacheMode: 'off'});")
    step_up = Steps({"refresh": refresh}).refused("refresh")
    token = repr(step_up["mfaToken"])
    otp = repr(totp.at(_now(tenant)))
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
