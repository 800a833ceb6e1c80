"""The Python examples in the README and the docs run as written.

Each example is taken from its Markdown file, so a change to the API that
breaks the documentation breaks a test.
"""

from __future__ import annotations

import itertools
import re
import shlex
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
    """pytester as a user's project has it, and docs/testing.md's examples.

    Plugins load by themselves, as they do where mfaflow is installed, and
    each run is a pytest process of its own.
    """
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return pytester, python_blocks(_ROOT / "docs" / "testing.md")


def test_testing_guide_example_test_passes(
    testing_guide: tuple[pytest.Pytester, list[str]],
) -> None:
    """docs/testing.md's example test passes under plain pytest, nothing enabled."""
    pytester, blocks = testing_guide
    (example,) = [b for b in blocks if "def test_" in b]
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess("-q")
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
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)


def pytest_commands(path: Path) -> list[tuple[dict[str, str], list[str]]]:
    """The ``$ pytest ...`` lines of a Markdown file: variables set, and arguments."""
    commands = []
    for block in re.findall(r"^```console\n(.*?)^```$", path.read_text(), re.M | re.S):
        for line in block.splitlines():
            words = shlex.split(line.removeprefix("$ ")) if line[:2] == "$ " else []
            settings = list(itertools.takewhile(lambda word: "=" in word, words))
            program = words[len(settings) : len(settings) + 1]
            if program == ["pytest"]:
                env = dict(setting.split("=", 1) for setting in settings)
                commands.append((env, words[len(settings) + 1 :]))
    return commands


def test_testing_guide_command_lines_enable_the_plugin(
    testing_guide: tuple[pytest.Pytester, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pytest command docs/testing.md shows runs its example test to a pass."""
    pytester, blocks = testing_guide
    (example,) = [b for b in blocks if "def test_" in b]
    pytester.makepyfile(test_example=example)
    commands = pytest_commands(_ROOT / "docs" / "testing.md")
    outcomes = []
    for env, arguments in commands:
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            result = pytester.runpytest_subprocess(*arguments, "-q")
        passed = "1 passed" in result.stdout.str()
        outcomes.append((env, arguments, result.ret, passed))

    assert commands
    assert outcomes == [(env, arguments, 0, True) for env, arguments in commands]
