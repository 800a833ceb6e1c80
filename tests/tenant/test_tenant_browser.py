"""The login pages in a real headless Chromium, driven through chromedriver.

Without Chromium and chromedriver the tests are skipped, except when ``CI``
is set: there they fail (see ``tests/_chromium.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from _chromium import chromium
from _pagekit import CallbackServer, Pkce, authorize_url, redeem_code
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from mfaflow.tenant import DEMO_EMAIL, DEMO_PASSWORD, LoopbackServer

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, shared by the module's tests."""
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@pytest.fixture
def callback() -> Iterator[CallbackServer]:
    """The client's redirect endpoint: a real HTTP server on a loopback port."""
    with CallbackServer().running() as server:
        yield server


def _wait_for(driver: WebDriver, element_id: str) -> None:
    WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )


def _submit(driver: WebDriver, action: str) -> None:
    driver.find_element(
        By.CSS_SELECTOR, f'form[action="{action}"] button[type="submit"]'
    ).click()


def _screenshot(driver: WebDriver, path: Path) -> None:
    assert driver.save_screenshot(str(path))
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def _sign_in(driver: WebDriver, url: str, screenshot: Path | None = None) -> None:
    driver.get(url)
    _wait_for(driver, "password")
    if screenshot is not None:
        _screenshot(driver, screenshot)
    driver.find_element(By.ID, "email").send_keys(DEMO_EMAIL)
    driver.find_element(By.ID, "password").send_keys(DEMO_PASSWORD)
    _submit(driver, "/u/login")


def _exchange(base: str, code: str, pkce: Pkce, redirect_uri: str) -> None:
    assert redeem_code(base, code, pkce, redirect_uri)["token_type"] == "Bearer"


def test_chromium_enrols_signs_in_and_signs_in_again(
    driver: WebDriver,
    server: LoopbackServer,
    callback: CallbackServer,
    tmp_path: Path,
) -> None:
    """In Chromium a person enrols an app, is sent back, then passes the OTP page."""
    tenant = server.tenant
    pkce = Pkce.new()
    url = authorize_url(
        server.url, pkce, redirect_uri=callback.url, state="first-state"
    )

    _sign_in(driver, url, screenshot=tmp_path / "login.png")
    _wait_for(driver, "secret")
    assert driver.find_element(By.CSS_SELECTOR, "figure.qr svg").is_displayed()
    _screenshot(driver, tmp_path / "enrol.png")
    secret = driver.find_element(By.ID, "secret").text.replace(" ", "")
    driver.find_element(By.ID, "code").send_keys(
        pyotp.TOTP(secret).at(tenant.clock.now())
    )
    _submit(driver, "/u/enrol")
    WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "code.recovery-code")
        )
    )
    _submit(driver, "/u/recovery-code")
    first = callback.wait("first-state")

    _exchange(server.url, first["code"], pkce, callback.url)

    tenant.clock.advance(30)  # each TOTP code is accepted once
    again = Pkce.new()
    _sign_in(
        driver,
        authorize_url(
            server.url, again, redirect_uri=callback.url, state="second", prompt="login"
        ),
    )
    _wait_for(driver, "code")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Verify your identity"
    driver.find_element(By.ID, "code").send_keys(
        pyotp.TOTP(secret).at(tenant.clock.now())
    )
    _submit(driver, "/u/mfa")
    second = callback.wait("second")

    _exchange(server.url, second["code"], again, callback.url)
    blocked = [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert blocked == []
