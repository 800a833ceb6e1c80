"""The pytest plugin (``mfaflow.testing``): its fixtures, in separate pytest runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

pytest_plugins = ["pytester"]

#: Warnings are errors inside too, so a fixture that warns fails its test.
_INI = "[pytest]\nfilterwarnings = error\n"


RunFile = Callable[[str], pytest.RunResult]


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunFile:
    """Run a test file with plain pytest, in its own process, as a user would."""
    # The installed package registers the plugin: pytest loads it by itself.
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini(_INI)

    def run_file(source: str) -> pytest.RunResult:
        pytester.makepyfile(textwrap.dedent(source))
        return pytester.runpytest_subprocess("-q")

    return run_file


def test_tenant_fixture_serves_a_controllable_tenant(run: RunFile) -> None:
    """mfaflow_tenant serves a fresh tenant (control on, fixed clock) and clients."""
    result = run(
        """
        import requests
        from mfaflow import Client
        from mfaflow.tenant import DEMO_CLIENT_ID, DEMO_SERVER_CLIENT_ID

        def test_served(mfaflow_tenant):
            url = mfaflow_tenant.url + ".well-known/openid-configuration"
            answer = requests.get(url, timeout=10)
            assert answer.json()["issuer"] == mfaflow_tenant.url
            assert mfaflow_tenant.url.startswith("http://127.0.0.1:")
            assert mfaflow_tenant.tenant.control_enabled
            before = mfaflow_tenant.tenant.clock.now()
            assert mfaflow_tenant.tenant.clock.now() == before
            mfaflow_tenant.clock.advance(30)
            assert mfaflow_tenant.tenant.clock.now() == before + 30

        def test_fresh_per_test(mfaflow_tenant):
            assert len(mfaflow_tenant.tenant.outbox) == 0
            mfaflow_tenant.tenant.add_user("x@example.test", "pw-123456", mfa="never")

        def test_fresh_again(mfaflow_tenant):
            assert mfaflow_tenant.tenant.find_user("x@example.test") is None

        def test_client(mfaflow_tenant):
            client = mfaflow_tenant.client()
            assert isinstance(client, Client)
            assert client.issuer == mfaflow_tenant.url
            assert client.client_id == DEMO_CLIENT_ID
            assert client.redirect_uri == "http://127.0.0.1/callback"
            other = mfaflow_tenant.client(DEMO_SERVER_CLIENT_ID, client_secret="s")
            assert other.client_id == DEMO_SERVER_CLIENT_ID
        """
    )

    result.assert_outcomes(passed=4)


def test_engine_fixture_signs_the_demo_user_in(run: RunFile) -> None:
    """mfaflow_engine runs the password-grant flow, with enrolment, to tokens."""
    result = run(
        """
        from mfaflow.tenant import DEMO_EMAIL, DEMO_PASSWORD

        def test_sign_in(mfaflow_tenant, mfaflow_engine):
            tenant = mfaflow_tenant.tenant

            def answer(request):
                if request.name == "otp":
                    pending = tenant.authenticators(DEMO_EMAIL)
                    otp = next(a for a in pending if a.authenticator_type == "otp")
                    return tenant.current_totp(otp.id)
                raise AssertionError(f"unexpected input {request.name}")

            result = mfaflow_engine.run(
                "password-grant",
                {"username": DEMO_EMAIL, "password": DEMO_PASSWORD, "factor": "otp"},
                ask=answer,
                sleep=tenant.clock.advance,
            )

            assert result.succeeded, result.message
            assert result.outputs["access_token"]
            assert mfaflow_engine.clock() == tenant.clock.now()
            assert mfaflow_engine.client.issuer == mfaflow_tenant.url
        """
    )

    result.assert_outcomes(passed=1)


def test_config_fixture_can_be_overridden(run: RunFile) -> None:
    """A test suite serves its own configuration by overriding mfaflow_config."""
    result = run(
        """
        import pytest
        from mfaflow.tenant import TenantConfig, UserConfig

        @pytest.fixture
        def mfaflow_config():
            user = UserConfig.with_password(
                "ann@example.test", "pw-ann-1", work_factor=10
            )
            return TenantConfig(name="ann-tenant", users=(user,))

        def test_own_tenant(mfaflow_tenant):
            assert mfaflow_tenant.tenant.config.name == "ann-tenant"
            assert mfaflow_tenant.tenant.find_user("ann@example.test") is not None
        """
    )

    result.assert_outcomes(passed=1)


def test_the_plugin_is_turned_off_by_its_registered_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-p no:mfaflow.testing` keeps the plugin out: its fixtures are then unknown."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile("def test_uses(mfaflow_tenant):\n    pass\n")

    result = pytester.runpytest_subprocess("-p", "no:mfaflow.testing", "-q")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mfaflow_tenant' not found*"])


@pytest.mark.parametrize("autoload", [True, False], ids=["autoload", "no-autoload"])
def test_conftest_naming_the_plugin_loads_it_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, autoload: bool
) -> None:
    """pytest_plugins naming mfaflow.testing works whether or not pytest loaded it."""
    if autoload:
        monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    else:
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini(_INI)
    pytester.makeconftest('pytest_plugins = ["mfaflow.testing"]\n')
    pytester.makepyfile(
        "def test_uses(mfaflow_tenant):\n    assert mfaflow_tenant.url\n"
    )

    result = pytester.runpytest_subprocess("-q")

    result.assert_outcomes(passed=1)


def test_importing_the_plugin_loads_no_tenant_and_starts_nothing() -> None:
    """Importing mfaflow.testing neither loads the tenant nor starts threads or logs."""
    probe = textwrap.dedent(
        """
        import logging, sys, threading
        import mfaflow.testing
        assert "mfaflow.tenant" not in sys.modules, "the tenant was imported"
        assert threading.active_count() == 1, threading.enumerate()
        assert not logging.getLogger().handlers
        assert not logging.getLogger("mfaflow").handlers
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
