"""Headless Chromium for tests, driven through chromedriver by Selenium.

Every test that needs a browser starts it here: :func:`chromium` for the
length of a ``with`` block (a fixture's), or :func:`start_chromium` for a
caller that quits it itself.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``
and ``/usr/bin/chromedriver``, or on the PATH). Without them the tests are
skipped, except when ``CI`` is set: there they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

__all__ = ["CHROMEDRIVER", "CHROMIUM", "chromium", "require_chromium", "start_chromium"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=900,1100",
)


def require_chromium() -> None:
    """Return if Chromium and chromedriver exist; skip the test, or fail it on CI."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if not missing:
        return
    reason = (
        f"Chromium or chromedriver is missing ({', '.join(missing)}); "
        "install them with: apt-get install chromium chromium-driver."
    )
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (CI is set: tests that need it must run).", pytrace=False
        )
    pytest.skip(reason)


def start_chromium(profile: Path, *arguments: str) -> WebDriver:
    """Start a headless Chromium with a fresh profile in ``profile``; the caller quits.

    ``arguments`` are added to the command line. The browser's console is
    kept, for ``driver.get_log("browser")``.
    """
    require_chromium()
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (*_ARGUMENTS, f"--user-data-dir={profile}", *arguments):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    browser.set_page_load_timeout(15)
    return browser


@contextmanager
def chromium(profile: Path, *arguments: str) -> Iterator[WebDriver]:
    """A headless Chromium (as :func:`start_chromium` starts it) for a ``with`` block.

    The browser is quit when the block ends, however it ends.
    """
    browser = start_chromium(profile, *arguments)
    try:
        yield browser
    finally:
        browser.quit()
