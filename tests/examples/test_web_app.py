"""examples/web_app: a Flask application signing people in with the authorize flow.

The browser test drives a real headless Chromium through the tenant's login
pages: password, then a one-time code, back to the application's profile,
then a step-up for the settings page, for which the tenant asks for MFA
again. The application runs on its own loopback port (werkzeug's server, in
a thread), the tenant on another; the user's authenticator app is enrolled
from the start and the test computes its codes from the tenant.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest
from _chromium import chromium
from _examples_kit import EXAMPLES, OTP_USER, PASSWORD
from _runs import Runs, assert_no_run_leaked, assert_no_secret_in
from flask import Flask
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as shows
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from mfaflow import generate_key
from mfaflow.tenant import DEMO_CLIENT_ID, LoopbackServer

RUN_ID = re.compile(r"[0-9a-f]{32}")


def load_example() -> ModuleType:
    """Import examples/web_app/app.py under a name of its own."""
    name = "mfaflow_web_app_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, EXAMPLES / "web_app" / "app.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Flask finds its root folder through it
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def app(served: LoopbackServer, tmp_path: Path) -> Flask:
    """The example application for the tenant's demo client, runs in tmp_path."""
    made: Flask = load_example().create_app(
        served.url,
        DEMO_CLIENT_ID,
        store_path=tmp_path / "runs.sqlite",
        store_key=generate_key(),
    )
    return made


@pytest.fixture
def app_url(app: Flask) -> Iterator[str]:
    """The application, served by werkzeug on 127.0.0.1 from a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium driven through chromedriver."""
    with chromium(tmp_path / "chromium") as driver:
        yield driver


def otp_app_id(served: LoopbackServer) -> str:
    (app,) = [
        found
        for found in served.tenant.authenticators(OTP_USER)
        if found.authenticator_type == "otp"
    ]
    return app.id


def tokens_of(runs: Runs) -> set[str]:
    """The secret outputs (the tokens) of the runs ``runs`` watches."""
    found = set()
    for run_id in runs.run_ids:
        result = runs.engine.get(run_id)
        found |= {str(result.outputs[name]) for name in result.secret_outputs}
    return {token for token in found if token not in ("", "None")}


@pytest.mark.browser
def test_browser_signs_in_with_mfa_and_steps_up(
    browser: WebDriver,
    app: Flask,
    app_url: str,
    served: LoopbackServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A person signs in with password and code, sees the profile, then steps up;
    no password, code or token reaches the pages, the logs or the stored runs."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    caplog.set_level(logging.DEBUG, logger="mfaflow")
    wait = WebDriverWait(browser, 15)
    codes: list[str] = []
    pages: dict[str, str] = {}

    def submit_code() -> None:
        field = wait.until(shows.presence_of_element_located((By.ID, "code")))
        assert browser.find_elements(By.ID, "password") == []
        codes.append(served.tenant.current_totp(otp_app_id(served)))
        field.send_keys(codes[-1])
        field.submit()

    browser.get(f"{app_url}/profile")
    wait.until(shows.presence_of_element_located((By.ID, "email")))
    assert browser.current_url.startswith(served.url)
    browser.find_element(By.ID, "email").send_keys(OTP_USER)
    password = browser.find_element(By.ID, "password")
    password.send_keys(PASSWORD)
    password.submit()
    submit_code()
    wait.until(shows.url_to_be(f"{app_url}/profile"))

    assert browser.find_element(By.ID, "email").text == OTP_USER
    assert "mfa" in browser.find_element(By.ID, "claims").text
    pages["profile page"] = browser.page_source

    served.tenant.clock.advance(30)  # the app shows its next code
    browser.get(f"{app_url}/settings")
    submit_code()  # MFA again, but no password: the tenant's login session
    wait.until(shows.url_to_be(f"{app_url}/settings"))

    listed = browser.find_element(By.ID, "authenticators").text
    assert "otp" in listed
    pages["settings page"] = browser.page_source
    callbacks = [
        r.getMessage() for r in caplog.records if "/callback" in r.getMessage()
    ]
    assert len(callbacks) == 2  # the access log shows each callback, not its code
    assert not any("code=" in line for line in callbacks)
    runs = assert_no_run_leaked(
        app.extensions["mfaflow"].engine, caplog, {PASSWORD, *codes}
    )
    assert len(runs.run_ids) == 2  # the sign-in and the step-up, with their tokens
    assert_no_secret_in(pages, runs.secrets | tokens_of(runs))


def test_login_sends_the_browser_to_authorize_with_pkce(app: Flask) -> None:
    """/login redirects to the tenant's /authorize with PKCE, state and callback."""
    client = app.test_client()

    answer = client.get("/login", base_url="http://127.0.0.1:5000")

    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert location.path == "/authorize"
    assert query["client_id"] == DEMO_CLIENT_ID
    assert query["redirect_uri"] == "http://127.0.0.1:5000/callback"
    assert query["code_challenge_method"] == "S256"
    assert query["state"]
    assert query["nonce"]


def test_the_session_keeps_only_run_ids(app: Flask) -> None:
    """The session cookie names the pending run and holds nothing else of it."""
    client = app.test_client()
    client.get("/login", base_url="http://127.0.0.1:5000")

    cookie = client.get_cookie("session", domain="127.0.0.1")
    assert cookie is not None
    interface = app.session_interface
    serializer = interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    stored = serializer.loads(cookie.value)

    assert stored.keys() == {"pending", "pending_for"}
    assert RUN_ID.fullmatch(stored["pending"])
    assert stored["pending_for"] == "login"


def test_a_forged_callback_is_refused(app: Flask) -> None:
    """A callback whose state is not the one sent ends the sign-in with 403."""
    client = app.test_client()
    client.get("/login", base_url="http://127.0.0.1:5000")

    answer = client.get(
        "/callback?code=forged&state=not-ours", base_url="http://127.0.0.1:5000"
    )

    assert answer.status_code == 403
    assert "does not match the one sent" in answer.get_data(as_text=True)
    follow = client.get("/profile", base_url="http://127.0.0.1:5000")
    assert follow.status_code == 302
    assert follow.headers["Location"].endswith("/login")


def test_a_callback_without_a_sign_in_is_refused(app: Flask) -> None:
    """/callback with no sign-in in progress answers 400 and says so."""
    answer = app.test_client().get("/callback?code=x&state=y")

    assert answer.status_code == 400
    assert "No sign-in is in progress." in answer.get_data(as_text=True)
