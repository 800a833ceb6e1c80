"""The Python examples in the README and the docs run as written.

Each example is taken from its Markdown file, so a change to the API that
breaks the documentation breaks a test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mfaflow.tenant import DEMO_CLIENT_ID, DEMO_EMAIL, DEMO_PASSWORD
from mfaflow.testing import LiveTenant

pytest_plugins = ["pytester"]

_ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    """The ```python code blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```$", path.read_text(), re.M | re.S)


def readme_example() -> str:
    """The README's example of using the engine from Python."""
    (block,) = [b for b in python_blocks(_ROOT / "README.md") if "engine.start" in b]
    return block


def test_readme_example_signs_the_demo_user_in(
    mfaflow_tenant: LiveTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's loop, pointed at the tenant, enrols an app and signs in."""
    tenant = mfaflow_tenant.tenant
    source = (
        readme_example()
        .replace("https://YOUR_TENANT.auth0.com/", mfaflow_tenant.url)
        .replace("YOUR_CLIENT_ID", DEMO_CLIENT_ID)
        .replace("ann@example.com", DEMO_EMAIL)
        .replace('"password": "..."', f'"password": "{DEMO_PASSWORD}"')
    )
    asked: list[str] = []

    def person(prompt: str) -> str:
        # What a person at the terminal would type: the factor to enrol,
        # then the code the new authenticator app shows.
        asked.append(prompt)
        if "code" in prompt.lower():
            (app,) = [a for a in tenant.authenticators(DEMO_EMAIL) if a.type == "otp"]
            return tenant.current_totp(app.id)
        return "otp"

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("builtins.input", person)
    exec(compile(source, "README.md", "exec"), {"__name__": "readme"})

    printed = capsys.readouterr().out
    assert len(asked) == 2
    assert "Open: otpauth://totp/" in printed
    assert printed.splitlines()[-1].startswith("success {")
    assert (tmp_path / "runs.sqlite").is_file()
    assert (tmp_path / "runs.key").is_file()


@pytest.fixture
def testing_guide(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> tuple[pytest.Pytester, list[str]]:
    """pytester with only mfaflow's plugin, and docs/testing.md's examples."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester, python_blocks(_ROOT / "docs" / "testing.md")


def test_testing_guide_example_test_passes(
    testing_guide: tuple[pytest.Pytester, list[str]],
) -> None:
    """docs/testing.md's example test passes with the plugin."""
    pytester, blocks = testing_guide
    (example,) = [b for b in blocks if "def test_" in b]
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest("-p", "mfaflow.testing", "-q")
    result.assert_outcomes(passed=1)


def test_testing_guide_own_configuration_is_served(
    testing_guide: tuple[pytest.Pytester, list[str]],
) -> None:
    """docs/testing.md's conftest serves its own tenant in place of the demo."""
    pytester, blocks = testing_guide
    (conftest,) = [b for b in blocks if "def mfaflow_config" in b]
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        test_own="""
        from mfaflow.tenant import DEMO_EMAIL

        def test_served(mfaflow_tenant):
            tenant = mfaflow_tenant.tenant
            assert tenant.find_user(DEMO_EMAIL) is None
            # An sms authenticator comes with its voice twin.
            ann = tenant.authenticators("ann@example.test")
            channels = {a.oob_channel for a in ann}
            assert channels == {"sms", "voice"}
        """
    )
    result = pytester.runpytest("-p", "mfaflow.testing", "-q")
    result.assert_outcomes(passed=1)
