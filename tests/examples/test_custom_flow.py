"""examples/custom_flow: a flow of one's own, with an action from a plugin.

The plugin is made importable the way ``pip install`` leaves it: its
package next to a ``push_first-0.1.dist-info`` folder whose
``entry_points.txt`` holds what its ``pyproject.toml`` declares, on
``sys.path``. mfaflow then finds the action through
``importlib.metadata``, as it finds any installed plugin. The flow (which
calls the shipped password-grant and mfa-challenge as sub-flows) runs over
HTTP against the embedded tenant on loopback; pushes are approved or
rejected through the tenant's control API.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _examples_kit import EXAMPLES, NEW_USER, OTP_USER, PASSWORD, PUSH_USER
from _runs import Harvesting, assert_no_run_leaked

from mfaflow import (
    Client,
    Engine,
    MemoryStore,
    Registry,
    RequestsTransport,
    RunResult,
)
from mfaflow.tenant import DEMO_CLIENT_ID, LoopbackServer

CUSTOM = EXAMPLES / "custom_flow"
FLOW = CUSTOM / "push-first-login.yaml"


def write_dist_info(site: Path) -> None:
    """Write the dist-info pip would, from the example's pyproject.toml."""
    project = tomllib.loads((CUSTOM / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{entry} = {target}" for entry, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The push_first plugin, installed into a folder put on sys.path."""
    site = tmp_path / "site"
    write_dist_info(site)
    shutil.copytree(CUSTOM / "push_first", site / "push_first")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in [m for m in sys.modules if m.partition(".")[0] == "push_first"]:
        del sys.modules[module]


@pytest.fixture
def engine(plugin_site: Path, served: LoopbackServer) -> Iterator[Engine]:
    """An engine whose registry holds the plugins found on sys.path.

    It reads the tenant's clock, so that a test moves time past a polling
    delay instead of sleeping through it, and notes every secret that
    crosses the wire, for :func:`assert_no_run_leaked`.
    """
    with RequestsTransport() as transport:
        yield Engine(
            Client(served.url, DEMO_CLIENT_ID),
            transport=Harvesting(transport),
            store=MemoryStore(),
            registry=Registry(),
            flow_paths=[CUSTOM],
            clock=served.tenant.clock.now,
        )


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything mfaflow logs, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="mfaflow")
    return caplog


def control(served: LoopbackServer, decision: str, user: str) -> None:
    """Approve or reject the user's pending push through the control API."""
    answer = requests.post(
        f"{served.url}__control/pushes/{decision}", json={"user": user}, timeout=10
    )
    assert answer.status_code == 200, answer.text


def poll_later(engine: Engine, served: LoopbackServer, result: RunResult) -> RunResult:
    """Move time to when the run polls again, and resume it."""
    assert result.waiting
    assert result.resume_at is not None
    served.tenant.clock.advance(max(0.0, result.resume_at - served.tenant.clock.now()))
    return engine.resume(result.run_id)


def app_code(served: LoopbackServer, user: str) -> str:
    """The code the user's one-time-code app (or push's twin) shows now."""
    (app,) = [
        found
        for found in served.tenant.authenticators(user)
        if found.authenticator_type == "otp"
    ]
    return served.tenant.current_totp(app.id)


def visited(result: RunResult) -> list[str]:
    return [f"{entry.flow}/{entry.state}" for entry in result.history]


def test_the_entry_point_registers_pick_push(plugin_site: Path) -> None:
    """The entry point the pyproject declares puts pick_push in a new Registry."""
    from push_first.actions import pick_push

    assert Registry().get_action("pick_push") is pick_push
    assert "pick_push" not in Registry(plugins=False).action_names()


def test_push_first_signs_in_with_an_approved_push(
    engine: Engine, served: LoopbackServer, logs: pytest.LogCaptureFixture
) -> None:
    """A push user gets a push, is asked nothing, and is signed in on approval."""
    result = engine.start(
        "push-first-login", {"username": PUSH_USER, "password": PASSWORD}
    )

    assert result.waiting_for == ()
    assert len(served.tenant.pending_pushes(PUSH_USER)) == 1
    result = poll_later(engine, served, result)
    assert result.waiting  # not approved yet: authorization_pending
    control(served, "approve", PUSH_USER)
    result = poll_later(engine, served, result)

    assert result.succeeded, result.message
    assert result.outputs["via"] == "push"
    assert result.outputs["access_token"]
    assert visited(result) == [
        "push-first-login/sign_in",
        "password-grant/prepare",
        "password-grant/request_token",
        "password-grant/mfa_required",
        "push-first-login/list_authenticators",
        "push-first-login/pick",
        "push-first-login/push",
        "mfa-challenge/list_authenticators",
        "mfa-challenge/choose",
        "mfa-challenge/route_challenge",
        "mfa-challenge/challenge",
        "mfa-challenge/poll_push",
        "mfa-challenge/poll_push",
        "mfa-challenge/success",
        "push-first-login/signed_in",
    ]
    assert_no_run_leaked(engine, logs, {PASSWORD})


def test_push_first_falls_back_to_mfa_challenge(
    engine: Engine, served: LoopbackServer, logs: pytest.LogCaptureFixture
) -> None:
    """A user without push goes through the shipped mfa-challenge flow instead."""
    result = engine.start(
        "push-first-login", {"username": OTP_USER, "password": PASSWORD}
    )

    assert [request.name for request in result.waiting_for] == ["otp"]
    result = engine.resume(result.run_id, {"otp": app_code(served, OTP_USER)})

    assert result.succeeded, result.message
    assert result.outputs["via"] == "mfa-challenge"
    assert "push-first-login/push" not in visited(result)
    assert "mfa-challenge/verify_otp" in visited(result)
    assert_no_run_leaked(engine, logs, {PASSWORD})


def test_a_rejected_push_ends_the_sign_in(
    engine: Engine, served: LoopbackServer, logs: pytest.LogCaptureFixture
) -> None:
    """A push rejected on the device ends the run as rejected, with no fallback."""
    result = engine.start(
        "push-first-login", {"username": PUSH_USER, "password": PASSWORD}
    )
    control(served, "reject", PUSH_USER)
    result = poll_later(engine, served, result)

    assert result.ended
    assert result.state == "rejected"
    assert result.outcome == "failure"
    assert result.outputs["error"] == "access_denied"
    assert "push-first-login/fallback" not in visited(result)
    assert_no_run_leaked(engine, logs, {PASSWORD})


def test_an_unanswered_push_falls_back_to_the_other_factors(
    engine: Engine, served: LoopbackServer, logs: pytest.LogCaptureFixture
) -> None:
    """A push that expires unanswered is followed by mfa-challenge, which offers
    the user's other factors; the app's code then signs in."""
    result = engine.start(
        "push-first-login", {"username": PUSH_USER, "password": PASSWORD}
    )
    served.tenant.clock.advance(301)  # the push's oob_code lasts 300 s

    result = poll_later(engine, served, result)

    (request,) = result.waiting_for
    assert request.name == "authenticator"
    assert "One-time code from an authenticator app" in request.choices
    result = engine.resume(
        result.run_id, {"authenticator": "One-time code from an authenticator app"}
    )
    result = engine.resume(result.run_id, {"otp": app_code(served, PUSH_USER)})

    assert result.succeeded, result.message
    assert result.outputs["via"] == "mfa-challenge"
    assert "mfa-challenge/push_expired" in visited(result)
    assert "push-first-login/fallback" in visited(result)
    assert_no_run_leaked(engine, logs, {PASSWORD})


def test_a_first_enrolment_passes_the_recovery_codes_on(
    engine: Engine, served: LoopbackServer, logs: pytest.LogCaptureFixture
) -> None:
    """A user with no authenticator enrols one through mfa-challenge, and the
    recovery code of that first enrolment is an output of the sign-in."""
    result = engine.start(
        "push-first-login", {"username": NEW_USER, "password": PASSWORD}
    )
    result = engine.resume(result.run_id, {"factor": "email"})
    code = served.tenant.last_code(NEW_USER, "email")
    result = engine.resume(result.run_id, {"binding_code": code})

    assert result.succeeded, result.message
    (recovery,) = result.outputs["recovery_codes"]
    assert "recovery_codes" in result.secret_outputs
    assert served.tenant.verify_recovery_code(NEW_USER, recovery)
    assert_no_run_leaked(engine, logs, {PASSWORD})


def test_a_wrong_password_fails_as_password_grant_says(
    engine: Engine, logs: pytest.LogCaptureFixture
) -> None:
    """A wrong password ends the run with password-grant's message and error."""
    result = engine.start(
        "push-first-login",
        {
            "username": PUSH_USER,
            "password": "not-the-password-3",
            "realm": "Username-Password-Authentication",
        },
    )

    assert (result.outcome, result.state) == ("failure", "failed")
    assert result.message == "The username or password is wrong."
    assert result.outputs == {
        "error": "invalid_grant",
        "error_description": "Wrong email or password.",
    }
    assert_no_run_leaked(engine, logs, {PASSWORD, "not-the-password-3"})


def validate(pythonpath: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run(
        [sys.executable, "-m", "mfaflow", "validate", str(FLOW)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_accepts_the_flow_with_the_plugin(tmp_path: Path) -> None:
    """`mfaflow validate` accepts the flow when the plugin is installed."""
    site = tmp_path / "site"
    write_dist_info(site)

    done = validate(os.pathsep.join([str(site), str(CUSTOM)]))

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "ok: 1 flow file\n"


def test_validate_rejects_the_flow_without_the_plugin() -> None:
    """Without the plugin, `mfaflow validate` names the unknown action and exits 1."""
    installed = importlib.metadata.entry_points(group="mfaflow.actions")
    if "pick_push" in installed.names:
        pytest.skip("the push-first plugin is installed in this environment")

    done = validate("")

    assert done.returncode == 1
    assert "Unknown action 'pick_push' in state 'pick'" in done.stdout
    assert done.stdout.startswith(f"{FLOW}:")
