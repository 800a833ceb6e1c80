"""The ``mfaflow`` command: validate, flows, schema, run, resume, runs, diagram.

Runs talk to a real authorization server on loopback (a small WSGI app
answering the password grant with ``mfa_required`` and the one-time-code
grant), keep their state in real SQLite files, and key files live in
temporary config folders: nothing touches the real home folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from _code_login import (
    ACCESS_TOKEN,
    CLIENT_ID,
    FLOW,
    OTP,
    PASSWORD,
    RECOVERY_CODE,
    USERNAME,
    token_endpoint,
)
from _code_login import SECRETS as LOGIN_SECRETS
from _diagrams import parse
from _isolation import isolate
from _serve import ctrl_c_as_in_a_terminal, press_ctrl_c, read_until, served
from _servers import closed_port, read_request_head, serve_raw, serve_wsgi
from click.testing import CliRunner, Result

from mfaflow._catalog import shipped_flows_dir
from mfaflow._cli import cli
from mfaflow._crypto import generate_key
from mfaflow._diagram import REGENERATE_COMMAND, to_dot, to_mermaid
from mfaflow._loader import load_flow
from mfaflow._store import SQLiteStore, StoredRun
from mfaflow.tenant import DEMO_CLIENT_ID, LoopbackServer, Tenant

CLIENT_SECRET = "client-secret-5b1e77"
SECRETS = (CLIENT_SECRET, *LOGIN_SECRETS)

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"),
    reason="Graphviz's 'dot' is not installed (apt-get install graphviz)",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Config and data folders under tmp_path; no MFAFLOW_* variable from outside."""
    return isolate(tmp_path, monkeypatch)


@pytest.fixture
def issuer() -> Iterator[str]:
    with serve_wsgi(token_endpoint) as url:
        yield url


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    path = folder / "otp-login.yaml"
    path.write_text(FLOW)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite"


def invoke(
    args: list[str], *, input: str | None = None, env: dict[str, str] | None = None
) -> Result:
    return CliRunner().invoke(cli, args, input=input, env=env, catch_exceptions=False)


def isolated_env(folders: dict[str, Path], **variables: str) -> dict[str, str]:
    """The environment with the test's config and data folders, and ``variables``."""
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(folders["config"]),
        "XDG_DATA_HOME": str(folders["data"]),
        **variables,
    }


def mfaflow_process(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m mfaflow ARGS`` in a process of its own, its output captured.

    ``input``, when given, is piped to its standard input.
    """
    return subprocess.run(
        [sys.executable, "-m", "mfaflow", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def client_run_args(issuer: str, flow: Path, *extra: str) -> list[str]:
    """``run`` of ``flow`` for the test client, without its secret or a store."""
    return ["run", str(flow), "--issuer", issuer, "--client-id", CLIENT_ID, *extra]


def run_args(issuer: str, flow: Path, store: Path, *extra: str) -> list[str]:
    return client_run_args(
        issuer, flow, "--client-secret", CLIENT_SECRET, "--store", str(store), *extra
    )


def assert_no_secrets(*texts: str, allowed: Iterable[str] = ()) -> None:
    for secret in set(SECRETS) - set(allowed):
        for text in texts:
            assert secret not in text


def waiting_run_id(output: str) -> str:
    found = re.search(r"run ([0-9a-f]{32}) waits", output)
    assert found, output
    return found.group(1)


#: The option that gives the test flow its user.
AS_USER = ("--input", f"username={USERNAME}")
#: The options that give the test flow its user and their password.
CREDENTIALS = (*AS_USER, "--input", f"password={PASSWORD}")
#: The options that start the test flow and stop it where it waits for the code.
STOP_FOR_CODE = ("--no-input", *CREDENTIALS)
#: What a user types when the test flow asks: the password, then the code.
TYPED = f"{PASSWORD}\n{OTP}\n"


def typed_run(
    issuer: str, flow_file: Path, store: Path, *extra: str, typed: str = TYPED
) -> Result:
    """``run`` of the test flow for its user, with ``typed`` on standard input."""
    return invoke(run_args(issuer, flow_file, store, *extra, *AS_USER), input=typed)


def start_waiting(issuer: str, flow_file: Path, store: Path) -> str:
    """Start the test flow under --no-input; it stops waiting for the code."""
    started = invoke(run_args(issuer, flow_file, store, *STOP_FOR_CODE))
    return waiting_run_id(started.stdout)


# -- validate ------------------------------------------------------------------


def test_validate_accepts_a_good_flow(flow_file: Path) -> None:
    """A valid flow file passes with exit 0 and a count of the flows checked."""
    result = invoke(["validate", str(flow_file)])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ok: 1 flow file"


def test_validate_resolves_sub_flows_among_the_files_given(tmp_path: Path) -> None:
    """A sub-flow named by one file is found among the other files given."""
    (tmp_path / "outer.yaml").write_text(
        "mfaflow: 1\nname: outer\ninitial: inner_step\nstates:\n"
        "  inner_step:\n    flow: inner\n    on: {success: done}\n"
        "  done: {final: true}\n"
    )
    (tmp_path / "inner.yaml").write_text(
        "mfaflow: 1\nname: inner\ninitial: done\nstates:\n  done: {final: true}\n"
    )

    alone = invoke(["validate", str(tmp_path / "outer.yaml")])
    together = invoke(["validate", str(tmp_path)])

    assert alone.exit_code == 1
    assert "inner" in alone.stdout
    assert together.exit_code == 0, together.output
    assert together.stdout.strip() == "ok: 2 flow files"


BROKEN = {
    "not-yaml": "mfaflow: 1\nname: [unclosed\n",
    "unknown-key": FLOW.replace("summary:", "sumary:"),
    "missing-target": FLOW.replace("on: {ok: verify}", "on: {ok: verfy}"),
    "python-action": FLOW.replace(
        "  done:\n    final: true\n",
        "  done:\n    final: true\n"
        "  shell:\n    action: os.system\n    on: {ok: done}\n",
    ).replace("invalid_grant: ask_code", "invalid_grant: shell"),
}


@pytest.mark.parametrize("problem", sorted(BROKEN))
def test_validate_reports_each_problem_with_its_place(
    tmp_path: Path, problem: str
) -> None:
    """A broken file exits 1 with a file:line:column line per problem, no traceback."""
    path = tmp_path / "otp-login.yaml"
    path.write_text(BROKEN[problem])

    result = invoke(["validate", str(path)])

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        assert re.match(rf"{re.escape(str(path))}:\d+:\d+: \S", line), line
    assert "Traceback" not in result.output
    counted = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    assert result.stderr == f"{counted} in 1 flow file.\n"


def test_validate_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    """A path that does not exist is a usage error (exit 2)."""
    result = invoke(["validate", str(tmp_path / "missing.yaml")])

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# -- flows and schema -------------------------------------------------------------


def test_flows_lists_the_flows_of_a_folder(flow_file: Path) -> None:
    """`flows --flows DIR` lists each flow of DIR with its summary."""
    result = invoke(["flows", "--flows", str(flow_file.parent)])

    assert result.exit_code == 0, result.output
    assert re.search(
        r"^otp-login\s+Password grant, then a one-time code\.$", result.stdout, re.M
    )


def test_flows_lists_the_shipped_flows() -> None:
    """Without --flows, every shipped flow is listed by name."""
    shipped = sorted(path.stem for path in shipped_flows_dir().glob("*.y*ml"))

    result = invoke(["flows"])

    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == shipped


def test_flows_describes_one_flow(flow_file: Path) -> None:
    """`flows NAME` shows the description, the inputs and their traits, the outputs."""
    result = invoke(["flows", "otp-login", "--flows", str(flow_file.parent)])

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Signs a user in with a password" in out
    assert re.search(r"username\s+required\s+The user's email address\.", out)
    assert re.search(r"password\s+required, secret", out)
    assert re.search(r'scope\s+default "openid profile"', out)
    assert re.search(r"otp\s+required, secret\s+One-time code", out)
    assert re.search(r"access_token\s+secret\s+The API access token\.", out)


def test_flows_shows_prompts_as_a_person_reads_them(flow_file: Path) -> None:
    """A prompt's references show as '…' (one that opens it not at all)."""
    flow_file.write_text(
        FLOW.replace(
            "{prompt: One-time code,",
            "{prompt: '${data.problem}Enter the code  sent by ${inputs.scope}.',",
        )
    )

    result = invoke(["flows", "otp-login", "--flows", str(flow_file.parent)])

    assert result.exit_code == 0, result.output
    assert re.search(
        r"otp\s+required, secret\s+Enter the code sent by …\.\n", (result.stdout)
    )
    assert "${" not in result.stdout


def test_flows_names_an_unknown_flow_and_the_known_ones(flow_file: Path) -> None:
    """An unknown flow name exits 1 with one error line listing the known flows."""
    result = invoke(["flows", "no-such-flow", "--flows", str(flow_file.parent)])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: No flow is named 'no-such-flow'")
    assert "otp-login" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_schema_prints_the_shipped_json_schema() -> None:
    """`schema` prints the JSON Schema file shipped in the package, unchanged."""
    shipped = Path(__file__).parents[1] / "mfaflow" / "flow.schema.json"

    result = invoke(["schema"])

    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(shipped.read_text())


# -- run -------------------------------------------------------------------------


def test_run_prompts_for_inputs_and_signs_in(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """Missing inputs are asked for, secret ones without echo; the run succeeds."""
    result = typed_run(issuer, flow_file, store)

    assert result.exit_code == 0, result.output
    assert "Signed in." in result.stdout
    assert re.search(r"access_token: \*\*\*$", result.stdout, re.M)
    assert f"user: {USERNAME}" in result.stdout
    assert "One-time code: " in result.stderr
    assert "→ ask_code (mfa_required)" in result.stderr
    assert "→ done (ok)" in result.stderr
    assert_no_secrets(result.stdout, result.stderr)


def test_secret_inputs_piped_in_are_read_without_a_warning(
    issuer: str, flow_file: Path, store: Path, isolated: dict[str, Path]
) -> None:
    """With stdin a pipe, secrets are read as lines: no getpass warning, no echo."""
    env = isolated_env(isolated)
    args = run_args(issuer, flow_file, store, *AS_USER)
    done = mfaflow_process(*args, env=env, input=TYPED)

    assert done.returncode == 0, done.stderr
    assert "Signed in." in done.stdout
    assert "Warning" not in done.stderr
    assert "password: \n" in done.stderr
    assert "One-time code: \n" in done.stderr
    assert_no_secrets(done.stdout, done.stderr)


def test_run_asks_again_for_a_refused_value(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """A code that breaks the pattern, then a wrong code, are both asked for again."""
    result = typed_run(
        issuer, flow_file, store, typed=f"{PASSWORD}\n12ab\n135790\n{OTP}\n"
    )

    assert result.exit_code == 0, result.output
    assert "The input 'otp' does not match the pattern '^[0-9]{6}$'." in result.stderr
    assert result.stderr.count("One-time code: ") == 3
    assert "→ ask_code (invalid_grant)" in result.stderr
    assert "12ab" not in result.output


def test_run_shows_secret_outputs_only_when_asked(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """--show-secrets prints the access token, and nothing else secret."""
    result = typed_run(issuer, flow_file, store, "--show-secrets")

    assert result.exit_code == 0, result.output
    assert f"access_token: {ACCESS_TOKEN}" in result.stdout
    assert_no_secrets(result.stdout, result.stderr, allowed=[ACCESS_TOKEN])


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_revealed_output_is_shown_once_then_forgotten(
    issuer: str, flow_file: Path, store: Path, as_json: bool
) -> None:
    """A recovery code is printed in clear without --show-secrets, then not kept."""
    flow_file.write_text(
        FLOW.replace(
            "  user: {}\n", "  user: {}\n  recovery_code: {reveal: true}\n"
        ).replace(
            "      user: ${inputs.username}\n",
            "      user: ${inputs.username}\n"
            "      recovery_code: ${data.tokens.recovery_code}\n",
        )
    )
    json_option = ["--json"] if as_json else []

    result = typed_run(issuer, flow_file, store, *json_option)

    assert result.exit_code == 0, result.output
    if as_json:
        outputs = json.loads(result.stdout)["outputs"]
        assert outputs["recovery_code"] == RECOVERY_CODE
        assert outputs["access_token"] == "***"
    else:
        assert f"  recovery_code: {RECOVERY_CODE}\n" in result.stdout
        assert "  access_token: ***\n" in result.stdout
    assert result.stderr.endswith(
        "Keep recovery_code somewhere safe: shown this once, and not kept with "
        "the run.\n"
    )
    (summary,) = SQLiteStore(store).list()
    kept = SQLiteStore(store, key=default_key()).load(summary.id)
    assert RECOVERY_CODE not in json.dumps([kept.document, kept.secrets])
    assert_no_secrets(result.stdout, result.stderr)


def default_key() -> bytes:
    """The key the CLI keeps in the (isolated) user config folder."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "mfaflow" / "store.key"
    return path.read_bytes().strip()


def test_run_prints_json(issuer: str, flow_file: Path, store: Path) -> None:
    """--json prints the result as a JSON document with secret outputs masked."""
    result = invoke(
        run_args(issuer, flow_file, store, "--json", "--quiet", *CREDENTIALS),
        input=f"{OTP}\n",
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "ended"
    assert document["outcome"] == "success"
    assert document["state"] == "done"
    assert document["outputs"] == {"access_token": "***", "user": USERNAME}
    assert document["message"] == "Signed in."
    assert document["waiting_for"] == []
    assert "→" not in result.stderr
    assert_no_secrets(result.stdout, result.stderr)


def test_run_ends_in_failure_with_the_servers_message(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """A wrong password ends the run in failure: exit 1 and the message on stderr."""
    result = typed_run(issuer, flow_file, store, typed="not-the-password\n")

    assert result.exit_code == 1
    assert "failure: Wrong email or password." in result.stderr
    assert "Signed in." not in result.stdout


def test_run_without_input_stops_and_another_process_resumes_it(
    issuer: str, flow_file: Path, store: Path, isolated: dict[str, Path]
) -> None:
    """--no-input exits 3 naming what the run waits for; a new process resumes it."""
    started = invoke(run_args(issuer, flow_file, store, *STOP_FOR_CODE))

    assert started.exit_code == 3, started.output
    run_id = waiting_run_id(started.stdout)
    assert "otp (secret): One-time code" in started.stdout
    assert (
        f"mfaflow resume --store {store} {run_id} --input otp=VALUE" in started.stdout
    )
    assert_no_secrets(started.stdout, started.stderr)
    assert_no_secrets(store.read_bytes().decode("latin-1"))

    env = isolated_env(
        isolated,
        MFAFLOW_ISSUER=issuer,
        MFAFLOW_CLIENT_ID=CLIENT_ID,
        MFAFLOW_CLIENT_SECRET=CLIENT_SECRET,
    )
    resumed = mfaflow_process(
        "resume", run_id, "--store", str(store), "--input", f"otp={OTP}", env=env
    )

    assert resumed.returncode == 0, resumed.stderr
    assert "Signed in." in resumed.stdout
    assert "→ done (ok)" in resumed.stderr
    assert_no_secrets(resumed.stdout, resumed.stderr)


def printed_resume(output: str, **values: str) -> list[str]:
    """The arguments of the resume command ``output`` prints, values filled in."""
    command = output.split("resume with: ", 1)[1].split("\n", 1)[0]
    for name, value in values.items():
        command = command.replace(f"{name}=VALUE", f"{name}={value}")
    words = shlex.split(command)
    assert words[:2] == ["mfaflow", "resume"], command
    return words[1:]


def test_the_printed_resume_command_works_as_it_is(
    issuer: str,
    flow_file: Path,
    tmp_path: Path,
    isolated: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command printed under --no-input resumes the run, given nothing more."""
    monkeypatch.chdir(tmp_path)
    key_file = tmp_path / "keys" / "run.key"
    started = invoke(
        client_run_args(
            issuer,
            flow_file,
            *("--store", "runs.sqlite", "--key-file", str(key_file)),
            *("--timeout", "7.5", *STOP_FOR_CODE),
        ),
        env={"MFAFLOW_CLIENT_SECRET": CLIENT_SECRET},
    )
    run_id = waiting_run_id(started.stdout)
    words = printed_resume(started.stdout, otp=OTP)

    assert words == [
        "resume",
        "--store",
        str(tmp_path / "runs.sqlite"),
        "--key-file",
        str(key_file),
        "--timeout",
        "7.5",
        run_id,
        "--input",
        f"otp={OTP}",
    ]
    assert "client secret" not in started.stdout, "it came from the environment"
    env = {
        "PATH": os.environ["PATH"],
        "XDG_CONFIG_HOME": str(isolated["config"]),
        "XDG_DATA_HOME": str(isolated["data"]),
        "MFAFLOW_CLIENT_SECRET": CLIENT_SECRET,
    }
    resumed = mfaflow_process(*words, env=env, cwd=tmp_path / "keys")

    assert resumed.returncode == 0, resumed.stderr
    assert "Signed in." in resumed.stdout


def test_a_client_secret_given_as_an_option_is_asked_for_again(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """The resume command cannot show the secret, so a line says to give it again."""
    started = invoke(run_args(issuer, flow_file, store, *STOP_FOR_CODE))
    run_id = waiting_run_id(started.stdout)
    words = printed_resume(started.stdout, otp=OTP)

    assert started.stdout.endswith(
        "\nGive the client secret again, with --client-secret or "
        "MFAFLOW_CLIENT_SECRET.\n"
    )
    resumed = invoke([*words, "--client-secret", CLIENT_SECRET])
    assert resumed.exit_code == 0, resumed.output
    assert run_id in words
    assert_no_secrets(started.stdout, started.stderr)


def test_a_failed_resume_creates_neither_a_store_nor_a_key(
    tmp_path: Path, isolated: dict[str, Path]
) -> None:
    """Resuming from a store file that does not exist says so and writes nothing."""
    missing = tmp_path / "nowhere.sqlite"

    result = invoke(["resume", "--store", str(missing), "0" * 32])

    assert result.exit_code == 1
    assert result.stderr == f"error: No runs are stored in {missing}.\n"
    assert not missing.exists()
    assert not (isolated["config"] / "mfaflow" / "store.key").exists()


def test_run_json_without_input_lists_the_inputs_waited_for(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """--json --no-input prints the waiting run and its requests as JSON; exit 3."""
    result = invoke(run_args(issuer, flow_file, store, "--json", *STOP_FOR_CODE))

    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["status"] == "waiting"
    assert document["state"] == "ask_code"
    assert [(r["name"], r["secret"]) for r in document["waiting_for"]] == [
        ("otp", True)
    ]


def test_resume_refuses_a_bad_value_and_keeps_the_run(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """Under --no-input a malformed code exits 1 and the run still waits for it."""
    run_id = start_waiting(issuer, flow_file, store)
    client = ["--issuer", issuer, "--client-id", CLIENT_ID, "--store", str(store)]

    refused = invoke(["resume", run_id, *client, "--no-input", "--input", "otp=12"])
    finished = invoke(["resume", run_id, *client, "--input", f"otp={OTP}"])

    assert refused.exit_code == 1
    assert (
        refused.stderr.strip()
        == "error: The input 'otp' does not match the pattern '^[0-9]{6}$'."
    )
    assert finished.exit_code == 0, finished.output


def test_run_in_memory_warns_that_a_waiting_run_is_lost(
    issuer: str, flow_file: Path
) -> None:
    """--store memory with --no-input says the run is lost, and prints no resume."""
    result = invoke([*run_args(issuer, flow_file, Path("memory")), *STOP_FOR_CODE])

    assert result.exit_code == 3
    assert "The run was kept in memory and ends with this command" in result.stderr
    assert "resume" not in result.stdout, "no command that cannot work"


def test_run_without_input_refuses_missing_start_inputs(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """Under --no-input a missing required input exits 1 naming it."""
    result = invoke(run_args(issuer, flow_file, store, "--no-input", *AS_USER))

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: The input 'password' is required."


def test_run_reports_input_that_ends_early(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """When stdin ends before a value is given, the run exits 1 with one clear line."""
    result = typed_run(issuer, flow_file, store, typed="")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: The input ended before a value for 'password' was given; "
        "give it with --input password=VALUE."
    )


def test_run_reports_input_that_ends_at_a_wait(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """When stdin ends at a wait for input, the error says how to resume the run."""
    result = typed_run(issuer, flow_file, store, typed=f"{PASSWORD}\n")

    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: The input ended before a value for 'otp' was given")
    command = rf"mfaflow resume --store {re.escape(str(store))} [0-9a-f]{{32}}"
    assert re.search(rf"{command} --input otp=VALUE\.$", last)


POLL_FLOW = """\
mfaflow: 1
name: poll
initial: ask
states:
  ask:
    call: {url: /poll}
    on:
      ok: done
      authorization_pending: {to: ask, delay: 0.1}
  done: {final: true, message: Approved.}
"""


def test_run_sleeps_through_waits_and_says_so(tmp_path: Path, store: Path) -> None:
    """A run told to poll again later sleeps, says so on stderr, and then goes on."""
    answers = iter([400, 400, 200])

    def pending_twice(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        status = next(answers)
        body = {"error": "authorization_pending"} if status == 400 else {}
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    path = tmp_path / "poll.yaml"
    path.write_text(POLL_FLOW)
    with serve_wsgi(pending_twice) as url:
        result = invoke(run_args(url, path, store))

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Approved."
    assert result.stderr.count("waiting 0.1s before polling again...") == 2
    assert result.stderr.count("→ ask (authorization_pending)") == 2


def test_run_against_an_unreachable_issuer_fails_in_one_line(
    flow_file: Path, store: Path
) -> None:
    """An issuer nobody listens on ends the run in failure: one line, no traceback."""
    issuer = f"http://127.0.0.1:{closed_port()}"

    result = invoke(run_args(issuer, flow_file, store, "--quiet", *CREDENTIALS))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "failure: The authorization server could not be reached."
    ]
    assert "Traceback" not in result.output


def test_run_with_an_unhandled_transport_failure_names_the_failed_run(
    tmp_path: Path, store: Path
) -> None:
    """A run stopped by an error exits 1: the error, then the stored run's id."""
    path = tmp_path / "bare.yaml"
    path.write_text(
        "mfaflow: 1\nname: bare\ninitial: call\nstates:\n"
        "  call:\n    call: {url: /ping}\n    on: {ok: done}\n"
        "  done: {final: true}\n"
    )
    issuer = f"http://127.0.0.1:{closed_port()}"

    result = invoke(run_args(issuer, path, store))

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-2].startswith(
        "error: The state 'call' of the flow 'bare' has no transition"
    )
    (run_id,) = [summary.id for summary in SQLiteStore(store).list("failed")]
    assert lines[-1] == (
        f"error: The run {run_id} is stored as failed in the state 'call'; "
        f"mfaflow resume --store {store} {run_id} tries that state again."
    )
    assert [line for line in lines if line.startswith("error:")] == lines[-2:]
    assert "Traceback" not in result.output

    again = invoke(["resume", "--store", str(store), run_id])

    assert again.exit_code == 1
    assert again.stderr.splitlines()[-1] == lines[-1], "the same run, failed again"


def test_the_timeout_bounds_a_server_that_drips_its_answer(
    tmp_path: Path, store: Path
) -> None:
    """--timeout bounds the whole answer, not each read: a drip becomes a timeout."""

    def drip(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.wait(0.05):
            with contextlib.suppress(OSError):
                connection.sendall(b" ")

    path = tmp_path / "drip.yaml"
    path.write_text(
        "mfaflow: 1\nname: drip\ninitial: call\nstates:\n"
        "  call:\n    call: {url: /slow}\n"
        "    on: {ok: done, transport.timeout: late}\n"
        "  done: {final: true}\n  late: {final: true, outcome: failure, "
        "message: The server took too long.}\n"
    )

    with serve_raw(drip) as url:
        result = invoke(run_args(url, path, store, "--timeout", "0.4"))

    assert result.exit_code == 1
    assert "failure: The server took too long." in result.stderr


@pytest.mark.parametrize(
    "bad",
    ["hunter2-secret", "=hunter2-secret", "2fa=hunter2-secret", "a b=hunter2-secret"],
)
def test_run_refuses_malformed_inputs_as_usage_errors(
    issuer: str, flow_file: Path, store: Path, bad: str
) -> None:
    """An --input that is not NAME=VALUE is a usage error that hides the argument."""
    result = invoke(run_args(issuer, flow_file, store, "--input", bad))

    assert result.exit_code == 2
    assert "--input" in result.stderr
    assert "hunter2-secret" not in result.output


def test_run_refuses_an_issuer_that_is_not_a_url(flow_file: Path, store: Path) -> None:
    """An issuer without http:// or https:// is a usage error saying what it expects."""
    result = invoke(
        [
            "run",
            str(flow_file),
            "--issuer",
            "tenant.example.com",
            "--client-id",
            CLIENT_ID,
        ]
    )

    assert result.exit_code == 2
    assert "Expected an http:// or https:// URL" in result.stderr


def test_run_takes_the_client_from_the_environment(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """MFAFLOW_ISSUER, MFAFLOW_CLIENT_ID and MFAFLOW_CLIENT_SECRET replace options."""
    env = {
        "MFAFLOW_ISSUER": issuer,
        "MFAFLOW_CLIENT_ID": CLIENT_ID,
        "MFAFLOW_CLIENT_SECRET": CLIENT_SECRET,
    }

    result = invoke(
        [
            "run",
            str(flow_file),
            "--store",
            str(store),
            *AS_USER,
        ],
        input=TYPED,
        env=env,
    )

    assert result.exit_code == 0, result.output
    assert "Signed in." in result.stdout


def test_run_refuses_a_ca_bundle_that_is_not_pem(
    issuer: str, flow_file: Path, store: Path, tmp_path: Path
) -> None:
    """A --ca-bundle without a PEM certificate is a usage error saying so."""
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("not a certificate\n")

    result = invoke(run_args(issuer, flow_file, store, "--ca-bundle", str(bundle)))

    assert result.exit_code == 2
    assert "holds no PEM certificate" in result.stderr
    assert "Traceback" not in result.output


def test_run_needs_an_issuer(flow_file: Path) -> None:
    """Without --issuer or MFAFLOW_ISSUER the command is a usage error."""
    result = invoke(["run", str(flow_file), "--client-id", CLIENT_ID])

    assert result.exit_code == 2
    assert "--issuer" in result.stderr


def test_run_keeps_runs_in_the_user_folders_by_default(
    issuer: str, flow_file: Path, isolated: dict[str, Path]
) -> None:
    """Without --store, runs go to the user data folder, keyed by a 0600 key file."""
    result = invoke(client_run_args(issuer, flow_file, *STOP_FOR_CODE))

    assert result.exit_code == 3, result.output
    key = isolated["config"] / "mfaflow" / "store.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    database = isolated["data"] / "mfaflow" / "runs.sqlite"
    assert database.is_file()
    assert_no_secrets(database.read_bytes().decode("latin-1"))


def test_run_uses_a_key_from_the_environment(
    issuer: str, flow_file: Path, store: Path, isolated: dict[str, Path]
) -> None:
    """MFAFLOW_STORE_KEY encrypts the store, and then no key file is made."""
    env = {"MFAFLOW_STORE_KEY": generate_key().decode()}
    args = run_args(issuer, flow_file, store, *STOP_FOR_CODE)

    started = invoke(args, env=env)
    made_key = (isolated["config"] / "mfaflow" / "store.key").exists()
    run_id = waiting_run_id(started.stdout)
    client = ["--issuer", issuer, "--client-id", CLIENT_ID, "--store", str(store)]
    without_key = invoke(["resume", run_id, *client, "--input", f"otp={OTP}"])
    with_key = invoke(["resume", run_id, *client, "--input", f"otp={OTP}"], env=env)

    assert started.exit_code == 3
    assert not made_key
    assert without_key.exit_code == 1
    key_file = isolated["config"] / "mfaflow" / "store.key"
    assert without_key.stderr == (
        f"error: The run {run_id} holds encrypted secrets and the key file "
        f"{key_file} does not exist; give --key-file the key file the run was "
        "started with.\n"
    )
    assert not key_file.exists(), "the failed resume made no key"
    assert with_key.exit_code == 0, with_key.output


def test_run_refuses_a_malformed_key_in_the_environment(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """A MFAFLOW_STORE_KEY that is not a Fernet key is one error line, value hidden."""
    result = invoke(
        run_args(issuer, flow_file, store), env={"MFAFLOW_STORE_KEY": "short-key-value"}
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: MFAFLOW_STORE_KEY does not hold a Fernet key"
    )
    assert "short-key-value" not in result.output


def test_run_refuses_a_flow_file_that_does_not_exist(
    issuer: str, tmp_path: Path
) -> None:
    """A FLOW that looks like a path but names no file is a usage error."""
    result = invoke(
        [
            "run",
            str(tmp_path / "nothing.yaml"),
            "--issuer",
            issuer,
            "--client-id",
            CLIENT_ID,
        ]
    )

    assert result.exit_code == 2
    assert "No flow file exists at" in result.stderr


def test_resume_of_an_unknown_run_fails_in_one_line(issuer: str, store: Path) -> None:
    """Resuming an id the store does not hold exits 1 with one error line."""
    result = invoke(
        [
            "resume",
            "0" * 32,
            "--issuer",
            issuer,
            "--client-id",
            CLIENT_ID,
            "--store",
            str(store),
        ]
    )

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ")


def test_interrupt_prints_one_line_and_exits_130(
    issuer: str, flow_file: Path, store: Path, isolated: dict[str, Path]
) -> None:
    """Ctrl-C at a prompt prints 'Interrupted.' and exits 130, without a traceback."""
    env = isolated_env(isolated)
    args = run_args(issuer, flow_file, store, "--input", f"password={PASSWORD}")
    process = subprocess.Popen(
        [sys.executable, "-m", "mfaflow", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    assert process.stderr is not None
    prompted = read_until(process.stderr, b"The user's email address: ")
    reacted = press_ctrl_c(process)
    _, rest = process.communicate(timeout=60)
    stderr = (prompted + reacted + rest).decode()

    assert process.returncode == 130
    assert stderr.splitlines()[-1] == "Interrupted."
    assert "Traceback" not in stderr


# -- runs and diagrams -------------------------------------------------------------


def test_runs_lists_stored_runs_without_secrets(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """`runs` lists each stored run with its flow, status and what it waits for."""
    run_id = start_waiting(issuer, flow_file, store)

    result = invoke(["runs", "--store", str(store)])

    assert result.exit_code == 0, result.output
    assert re.search(
        rf"^{run_id}\s+otp-login\s+waiting\s+\S+\s+needs otp$", result.stdout, re.M
    )
    assert_no_secrets(result.stdout, result.stderr)


def test_runs_purges_expired_runs(store: Path) -> None:
    """`runs --purge-expired` deletes the runs past their expiry and keeps the rest."""
    kept = SQLiteStore(store)
    now = time.time()
    for run_id, expires_at in (("old", now - 60), ("new", now + 3600)):
        document = {"id": run_id, "wait": None}
        kept.create(
            StoredRun(run_id, "poll", "waiting", 1, document, expires_at=expires_at)
        )

    result = invoke(["runs", "--store", str(store), "--purge-expired"])

    assert result.exit_code == 0, result.output
    assert "Deleted 1 expired runs." in result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["new"]
    assert [summary.id for summary in kept.list()] == ["new"]


def test_runs_of_a_missing_store_says_so(tmp_path: Path) -> None:
    """`runs` on a missing store file says no runs are stored, and creates nothing."""
    path = tmp_path / "none.sqlite"

    result = invoke(["runs", "--store", str(path)])

    assert result.exit_code == 0
    assert "No runs are stored" in result.stderr
    assert not path.exists()


def test_diagram_prints_mermaid(flow_file: Path) -> None:
    """`diagram FILE` prints the flow as a Mermaid state diagram."""
    result = invoke(["diagram", str(flow_file)])

    assert result.exit_code == 0, result.output
    assert result.stdout == to_mermaid(load_flow(flow_file))
    assert result.stdout.startswith("stateDiagram-v2\n")


def test_diagram_writes_dot_to_a_file(flow_file: Path, tmp_path: Path) -> None:
    """`diagram --format dot -o FILE` writes Graphviz text to the file, not stdout."""
    out = tmp_path / "login.dot"

    result = invoke(["diagram", str(flow_file), "--format", "dot", "-o", str(out)])

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.read_text() == to_dot(load_flow(flow_file))


def test_diagram_of_a_stored_run_highlights_its_path(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """`diagram --run ID` marks the states the run visited and the one it waits in."""
    run_id = start_waiting(issuer, flow_file, store)

    marked = invoke(["diagram", "--run", run_id, "--store", str(store)])

    assert marked.exit_code == 0, marked.output
    drawn = parse(marked.stdout)
    assert drawn.named_class("visited") == {"request_token"}
    assert drawn.named_class("current") == {"ask_code"}
    assert drawn.taken() == {("[*]", "request_token"), ("request_token", "ask_code")}
    assert marked.stderr == ""


def test_diagram_of_an_ended_run_marks_its_whole_path(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """An ended run is drawn with every state it entered and no current state."""
    run_id = start_waiting(issuer, flow_file, store)
    client = ["--issuer", issuer, "--client-id", CLIENT_ID, "--store", str(store)]
    assert invoke(["resume", run_id, *client, "--input", f"otp={OTP}"]).exit_code == 0

    marked = invoke(["diagram", "--run", run_id, "--store", str(store)])

    drawn = parse(marked.stdout)
    assert drawn.named_class("visited") == {
        "request_token",
        "ask_code",
        "verify",
        "done",
    }
    assert "current" not in drawn.classes
    assert ("verify", "done") in drawn.taken()


OUTER_FLOW = """\
mfaflow: 1
name: outer-login
inputs:
  username: {}
  password: {secret: true}
initial: sign_in
states:
  sign_in:
    flow: otp-login
    with: {username: '${inputs.username}', password: '${inputs.password}'}
    on: {success: signed_in, failure: refused}
  signed_in: {final: true}
  refused: {final: true, outcome: failure}
"""


def test_diagram_of_a_run_in_a_sub_flow_says_where_it_stands(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """A run waiting in a sub-flow names it, and FLOW draws the run's part there."""
    outer = flow_file.parent / "outer-login.yaml"
    outer.write_text(OUTER_FLOW)
    run_id = start_waiting(issuer, outer, store)

    drawn = invoke(["diagram", "--run", run_id, "--store", str(store)])
    command = shlex.split(drawn.stderr.rpartition("draw that part of it with: ")[2])
    inside = invoke(command[1:])

    assert drawn.exit_code == 0, drawn.output
    assert parse(drawn.stdout).named_class("current") == {"sign_in"}
    assert drawn.stderr == (
        f"The run {run_id} stands in the sub-flow 'otp-login' (outer-login at "
        "sign_in > otp-login at ask_code); draw that part of it with: mfaflow "
        f"diagram otp-login --run {run_id} --store {store}\n"
    )
    assert inside.exit_code == 0, inside.output
    assert parse(inside.stdout).named_class("current") == {"ask_code"}
    assert parse(inside.stdout).named_class("visited") == {"request_token"}
    assert inside.stderr == ""


def test_diagram_of_a_run_whose_flow_file_changed_says_so(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """A run standing in a state its flow file no longer has: the file changed."""
    run_id = start_waiting(issuer, flow_file, store)
    flow_file.write_text(FLOW.replace("ask_code", "ask_otp"))

    result = invoke(["diagram", "--run", run_id, "--store", str(store)])

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: The run {run_id} entered the state 'ask_code', which the flow "
        f"'otp-login' in {flow_file} does not have; was the file changed since the "
        "run started?\n"
    )


def test_diagram_of_a_run_refuses_a_flow_it_never_entered(
    issuer: str, flow_file: Path, store: Path
) -> None:
    """FLOW with --run must be a flow the run entered; the error lists those."""
    run_id = start_waiting(issuer, flow_file, store)

    result = invoke(["diagram", "refresh", "--run", run_id, "--store", str(store)])

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: The run {run_id} never entered the flow 'refresh'; it entered "
        "'otp-login'.\n"
    )


def test_diagram_of_a_run_in_a_missing_store_creates_nothing(
    tmp_path: Path, isolated: dict[str, Path]
) -> None:
    """--run with a store file that does not exist says so, as resume does."""
    path = tmp_path / "none.sqlite"

    missing = invoke(["diagram", "--run", "abc123", "--store", str(path)])
    resumed = invoke(["resume", "abc123", "--store", str(path)])
    memory = invoke(["diagram", "--run", "abc123", "--store", "memory"])

    assert missing.exit_code == 1
    assert missing.stderr == f"error: No runs are stored in {path}.\n"
    assert missing.stderr == resumed.stderr
    assert not path.exists()
    assert not (isolated["config"] / "mfaflow" / "store.key").exists()
    assert memory.exit_code == 2
    assert "a memory store keeps no runs" in memory.stderr


def test_diagram_of_a_run_with_a_missing_key_file_creates_none(
    issuer: str, flow_file: Path, store: Path, tmp_path: Path
) -> None:
    """--run with a missing key file says so as resume does, and makes no key."""
    run_id = start_waiting(issuer, flow_file, store)
    key = tmp_path / "missing.key"
    given = ["--store", str(store), "--key-file", str(key)]

    drawn = invoke(["diagram", "--run", run_id, *given])
    resumed = invoke(["resume", run_id, *given])

    assert drawn.exit_code == 1
    assert drawn.stderr == (
        f"error: The run {run_id} holds encrypted secrets and the key file {key} "
        "does not exist; give --key-file the key file the run was started with.\n"
    )
    assert drawn.stderr == resumed.stderr
    assert not key.exists()


def test_diagram_check_lists_stale_files(flow_file: Path, tmp_path: Path) -> None:
    """`diagram --check DIR` exits 1 listing the diagrams that are missing or stale."""
    folder = tmp_path / "diagrams"
    folder.mkdir()

    result = invoke(
        ["diagram", "--check", str(folder), "--flows", str(flow_file.parent)]
    )

    assert result.exit_code == 1
    assert str(folder / "otp-login.mmd") in result.stdout.splitlines()
    command = f"mfaflow diagram --all --flows {flow_file.parent} -o {folder}"
    assert result.stderr.endswith(f"; run: {command}\n")


@needs_dot
def test_diagram_check_names_the_command_that_redraws_the_same_flows(
    flow_file: Path, tmp_path: Path
) -> None:
    """The command `--check` names redraws the folder from the same flows only."""
    folder = tmp_path / "my" / "d"
    flows = ["--flows", str(flow_file.parent)]
    assert invoke(["diagram", "--all", "-o", str(folder), *flows]).exit_code == 0
    flow_file.write_text(FLOW.replace("then a one-time code", "then a code"))

    stale = invoke(["diagram", "--check", str(folder), *flows])
    command = shlex.split(stale.stderr.rpartition("; run: ")[2])
    redrawn = invoke(command[1:])

    assert stale.exit_code == 1
    assert redrawn.exit_code == 0, redrawn.output
    assert redrawn.stdout == f"wrote {folder / 'README.md'}\n"
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md",
        "otp-login.mmd",
        "otp-login.svg",
    ]
    assert invoke(["diagram", "--check", str(folder), *flows]).exit_code == 0


@needs_dot
def test_the_regeneration_command_draws_the_flows_of_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented command redraws diagrams/ and README.md from flows/."""
    root = Path(__file__).resolve().parent.parent
    for part in ("flows", "diagrams"):
        shutil.copytree(root / part, tmp_path / part)
    shutil.copy(root / "README.md", tmp_path / "README.md")
    changed = tmp_path / "flows" / "password-grant.yaml"
    changed.write_text(changed.read_text().replace("wrong_password", "bad_password"))
    monkeypatch.chdir(tmp_path)
    check = ["diagram", "--check", "diagrams/", "--flows", "flows/"]

    stale = invoke([*check, "--embed", "README.md"])
    redrawn = invoke(shlex.split(REGENERATE_COMMAND)[1:])

    assert stale.exit_code == 1
    assert stale.stdout.splitlines() == [
        "diagrams/password-grant.mmd",
        "diagrams/password-grant.svg",
        "diagrams/README.md",
        str(tmp_path / "README.md"),
    ]
    assert stale.stderr == (
        "error: 4 diagram files are out of date; run: mfaflow diagram --all "
        "--flows flows -o diagrams --embed README.md\n"
    )
    assert redrawn.exit_code == 0, redrawn.output
    assert redrawn.stdout.splitlines()[-1] == f"wrote {tmp_path / 'README.md'}"
    drawn = to_mermaid(load_flow(changed))
    assert f"```mermaid\n{drawn}```" in (tmp_path / "README.md").read_text()
    assert f"```mermaid\n{drawn}```" in (tmp_path / "diagrams/README.md").read_text()
    assert invoke([*check, "--embed", "README.md"]).exit_code == 0


@needs_dot
def test_diagram_all_then_check_passes(flow_file: Path, tmp_path: Path) -> None:
    """`diagram --all -o DIR` draws every flow so that `--check DIR` then passes."""
    folder = tmp_path / "diagrams"
    flows = ["--flows", str(flow_file.parent)]

    written = invoke(["diagram", "--all", "-o", str(folder), *flows])
    checked = invoke(["diagram", "--check", str(folder), *flows])

    assert written.exit_code == 0, written.output
    assert (folder / "otp-login.svg").is_file()
    assert checked.exit_code == 0, checked.output
    command = f"mfaflow diagram --all --flows {flow_file.parent} -o {folder}"
    assert (
        (folder / "README.md")
        .read_text()
        .startswith(
            f"# Diagrams of the flows in `{flow_file.parent}/`\n\nDrawn by mfaflow "
            "from the flow definitions; do not edit them by hand. Regenerate them "
            f"with:\n\n    {command}\n"
        )
    )


def test_diagram_all_without_dot_is_one_line_and_writes_nothing(
    flow_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--all` without Graphviz says how to install it, in one line, and writes none."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    folder = tmp_path / "diagrams"

    result = invoke(
        ["diagram", "--all", "-o", str(folder), "--flows", str(flow_file.parent)]
    )

    assert result.exit_code == 1
    assert result.stderr == (
        "error: Graphviz's 'dot' program, which draws the SVG diagrams, was not "
        "found on PATH; install it (Debian/Ubuntu: apt-get install graphviz; "
        "macOS: brew install graphviz).\n"
    )
    assert not folder.exists()


def test_diagram_all_keeps_the_users_own_readme(
    flow_file: Path, tmp_path: Path
) -> None:
    """`--all -o DIR` refuses, in one line, a DIR whose README.md is the user's own."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.md").write_text("# notes\n")

    result = invoke(
        ["diagram", "--all", "-o", str(folder), "--flows", str(flow_file.parent)]
    )

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: The folder {str(folder)!r} holds a README.md that mfaflow did not "
        "write; move it, or draw the diagrams into another folder.\n"
    )
    assert [path.name for path in folder.iterdir()] == ["README.md"]
    assert (folder / "README.md").read_text() == "# notes\n"


def test_diagram_refuses_clashing_options(flow_file: Path, tmp_path: Path) -> None:
    """--all without -o, or with FLOW, or --embed without --all, is a usage error."""
    assert invoke(["diagram", "--all"]).exit_code == 2
    assert invoke(["diagram", str(flow_file), "--embed", "x.md"]).exit_code == 2
    assert (
        invoke(["diagram", str(flow_file), "--all", "-o", str(tmp_path)]).exit_code == 2
    )


def test_version_is_printed() -> None:
    """`--version` prints the package version."""
    from mfaflow import __version__

    result = invoke(["--version"])

    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_console_module_runs_as_a_program(flow_file: Path) -> None:
    """`python -m mfaflow validate` works as the installed command does."""
    done = mfaflow_process("validate", str(flow_file))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok: 1 flow file"


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
def test_verbose_logs_name_steps_without_urls_or_transitions_chatter(
    issuer: str, tmp_path: Path, verbose: str
) -> None:
    """-v and -vv log mfaflow's lines, never a query string or transitions' noise."""
    path = tmp_path / "query.yaml"
    path.write_text(
        "mfaflow: 1\nname: query\ninputs: {token: {secret: true}}\n"
        "initial: call\nstates:\n  call:\n"
        "    call: {url: /oauth/token, query: {access_token: '${inputs.token}'}}\n"
        "    on: {access_denied: done}\n  done: {final: true}\n"
    )
    done = mfaflow_process(
        *(verbose, "run", str(path), "--no-input", "--issuer", issuer),
        *("--client-id", "x", "--store", "memory", "--input", "token=TOPSECRET-Q"),
    )

    assert done.returncode == 0, done.stderr
    assert "mfaflow._engine: GET " in done.stderr
    assert "TOPSECRET-Q" not in done.stderr
    assert "urllib3" not in done.stderr
    assert "transitions" not in done.stderr
    if verbose == "-vv":
        assert "DEBUG mfaflow._engine: run " in done.stderr


# -- the embedded tenant ---------------------------------------------------------


def test_shipped_flow_signs_in_at_the_embedded_tenant(store: Path) -> None:
    """password-grant enrols an email factor at the embedded tenant in 3 commands."""
    from mfaflow.tenant import (
        DEMO_CLIENT_ID,
        DEMO_EMAIL,
        DEMO_PASSWORD,
        LoopbackServer,
        Tenant,
    )

    with LoopbackServer(Tenant()) as server:
        client = [
            "--issuer",
            server.url,
            "--client-id",
            DEMO_CLIENT_ID,
            "--store",
            str(store),
        ]
        started = invoke(
            [
                "run",
                "password-grant",
                *client,
                "--no-input",
                "--input",
                f"username={DEMO_EMAIL}",
                "--input",
                f"password={DEMO_PASSWORD}",
            ]
        )
        run_id = waiting_run_id(started.stdout)
        chosen = invoke(
            ["resume", run_id, *client, "--no-input", "--input", "factor=email"]
        )
        sent = server.tenant.outbox.last()
        assert sent is not None
        code = sent.code
        finished = invoke(["resume", run_id, *client, "--json"], input=f"{code}\n")

    assert started.exit_code == 3, started.output
    assert "choices: otp, sms, voice, email, push" in started.stdout
    assert chosen.exit_code == 3, chosen.output
    assert "binding_code (secret)" in chosen.stdout
    assert finished.exit_code == 0, finished.output
    document = json.loads(finished.stdout)
    assert document["outcome"] == "success"
    assert document["outputs"]["access_token"] == "***"
    # The first enrolment's recovery code is shown, once, in clear.
    (recovery,) = document["outputs"]["recovery_codes"]
    assert re.fullmatch(r"[A-Z0-9]{24}", recovery)
    assert finished.output.count(recovery) == 1
    assert "Keep recovery_codes somewhere safe" in finished.stderr
    for text in (started.output, chosen.output, finished.output):
        assert DEMO_PASSWORD not in text
        assert code not in text


ENROLLING = "enrolling@example.test"
ENROLLING_PASSWORD = "pw-of-a-new-user-3k9d"
BROWSER_CALLBACK = "http://127.0.0.1:8123/callback"


@pytest.fixture
def embedded() -> Iterator[LoopbackServer]:
    """The embedded tenant on loopback, with a user who must enrol an app."""
    with LoopbackServer(Tenant()) as server:
        server.tenant.add_user(ENROLLING, ENROLLING_PASSWORD, mfa="always")
        yield server


def at(server: LoopbackServer, store: Path) -> list[str]:
    """The options that point a command at the embedded tenant's demo client."""
    return [
        *("--issuer", server.url, "--client-id", DEMO_CLIENT_ID),
        *("--store", str(store)),
    ]


def authorize(server: LoopbackServer, store: Path, *extra: str) -> Result:
    """Run the shipped authorize flow; standard input ends at the first prompt."""
    args = ["run", "authorize", *at(server, store), "--redirect-uri", BROWSER_CALLBACK]
    return invoke([*args, *extra], input="")


def enrol_otp(server: LoopbackServer, store: Path, *extra: str) -> Result:
    """Sign the new user in; the run enrols an app, and input ends at its code."""
    given = [f"username={ENROLLING}", f"password={ENROLLING_PASSWORD}", "factor=otp"]
    inputs = [part for value in given for part in ("--input", value)]
    return invoke(["run", "password-grant", *at(server, store), *inputs, *extra])


def totp_secret(server: LoopbackServer) -> str:
    """The TOTP secret of the app the new user is enrolling."""
    (app,) = [
        found
        for found in server.tenant.authenticators(ENROLLING)
        if found.authenticator_type == "otp"
    ]
    assert app.secret
    return app.secret


def qr_block(text: str) -> str:
    """``text`` as a QR code of half blocks, as a Unicode terminal shows it."""
    drawn = io.StringIO()
    segno.make(text).terminal(out=drawn, compact=True)
    return drawn.getvalue()


RECOVERING = "recovering@example.test"
RECOVERING_CODE = "ABCDEFGHJKLMNPQRSTUVWXYZ"
RECOVERING_APP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def recovering_tenant() -> Tenant:
    """A tenant whose user has an app and a recovery code, and steps up on refresh."""
    from mfaflow.tenant import (
        AuthenticatorConfig,
        ClientConfig,
        TenantConfig,
        UserConfig,
    )

    app = AuthenticatorConfig("otp", secret=RECOVERING_APP)
    user = UserConfig.with_password(
        RECOVERING,
        ENROLLING_PASSWORD,
        work_factor=10,
        mfa="always",
        authenticators=[app],
        recovery_code=RECOVERING_CODE,
    )
    grants = ("password", "mfa", "refresh_token")
    return Tenant(
        TenantConfig(
            clients=(ClientConfig(DEMO_CLIENT_ID, grant_types=grants),),
            users=(user,),
            step_up_on_refresh="always",
            password_work_factor=10,
        )
    )


def refresh_token_by_app(server: LoopbackServer) -> str:
    """Sign the recovering user in with the app, in process; the refresh token."""
    import pyotp

    from mfaflow import Client, Engine

    engine = Engine(Client(server.url, DEMO_CLIENT_ID))
    login = engine.start(
        "password-grant",
        {
            "username": RECOVERING,
            "password": ENROLLING_PASSWORD,
            "authenticator_id": "otp",
        },
    )
    login = engine.resume(login.run_id, {"otp": pyotp.TOTP(RECOVERING_APP).now()})
    assert login.outcome == "success", login
    token: str = login.outputs["refresh_token"]
    return token


@pytest.mark.parametrize(
    "flow", ["password-grant", "refresh", "mfa-api-token", "manage-authenticators"]
)
def test_shipped_flows_print_a_recovery_codes_replacement_once(
    store: Path, flow: str
) -> None:
    """Each shipped flow that can pass MFA with a recovery code prints its
    replacement in clear, once, without --show-secrets, and the store forgets it."""
    with LoopbackServer(recovering_tenant()) as server:
        inputs = ["authenticator_id=recovery-code"]
        if flow == "refresh":
            inputs.append(f"refresh_token={refresh_token_by_app(server)}")
        else:
            inputs += [f"username={RECOVERING}", f"password={ENROLLING_PASSWORD}"]
        options = [part for value in inputs for part in ("--input", value)]
        result = invoke(
            ["run", flow, *at(server, store), *options], input=f"{RECOVERING_CODE}\n"
        )
        (shown,) = re.findall(r"^  recovery_code: ([A-Z0-9]{24})$", result.stdout, re.M)
        works = server.tenant.verify_recovery_code(RECOVERING, shown)

    assert result.exit_code == 0, result.output
    assert shown != RECOVERING_CODE
    assert works != shown
    assert result.output.count(shown) == 1
    assert result.stderr.endswith(
        "Keep recovery_code somewhere safe: shown this once, and not kept with "
        "the run.\n"
    )
    for secret in (RECOVERING_CODE, ENROLLING_PASSWORD):
        assert secret not in result.output
    (summary,) = SQLiteStore(store).list()
    kept = SQLiteStore(store, key=default_key()).load(summary.id)
    assert shown not in json.dumps([kept.document, kept.secrets])


def test_run_prints_the_authorize_link_before_asking(
    embedded: LoopbackServer, store: Path
) -> None:
    """The authorize URL is printed as 'Open: URL' on its own line, then asked for."""
    result = authorize(embedded, store)

    assert result.exit_code == 1, result.output
    found = re.search(r"^Open: (\S+)\n", result.stderr, re.MULTILINE)
    assert found, result.stderr
    assert found.group(1).startswith(embedded.url + "authorize?")
    asked = result.stderr.index("Open the link in a browser, sign in, and paste")
    assert found.start() < asked


def test_run_without_input_shows_a_link_that_is_not_secret(
    embedded: LoopbackServer, store: Path
) -> None:
    """--no-input names the authorize link as text, and --json gives it as 'link'."""
    text = authorize(embedded, store, "--no-input")
    document = json.loads(authorize(embedded, store, "--no-input", "--json").stdout)

    assert text.exit_code == 3, text.output
    assert re.search(
        rf"^    link: {re.escape(embedded.url)}authorize\?", text.stdout, re.M
    )
    (request,) = document["waiting_for"]
    assert request["link"].startswith(embedded.url + "authorize?")
    assert request["link_is_secret"] is False


def test_run_draws_the_otpauth_link_as_a_qr_code(
    embedded: LoopbackServer, store: Path
) -> None:
    """An enrolment's otpauth:// link is drawn as a QR code; its text never shows."""
    result = enrol_otp(embedded, store)

    assert result.exit_code == 1, result.output
    assert "Scan this QR code with your authenticator app:" in result.stderr
    assert re.search(r"^[ ▀▄█]{20,}$", result.stderr, re.MULTILINE)
    assert "otpauth://" not in result.output
    assert totp_secret(embedded) not in result.output
    assert "type the 6-digit code it shows" in result.stderr


def test_show_secrets_prints_the_otpauth_link_beside_its_qr_code(
    embedded: LoopbackServer, store: Path
) -> None:
    """With --show-secrets the otpauth:// link's text follows the QR code it draws."""
    result = enrol_otp(embedded, store, "--show-secrets")

    found = re.search(r"^The QR code's text: (otpauth://\S+)$", result.stderr, re.M)
    assert found, result.stderr
    assert f"secret={totp_secret(embedded)}" in found.group(1)
    assert qr_block(found.group(1)) in result.stderr


def test_run_without_input_leaves_a_secret_link_out(
    embedded: LoopbackServer, store: Path
) -> None:
    """--no-input and --json say a secret link exists but print it only when asked."""
    text = enrol_otp(embedded, store, "--no-input")
    hidden = json.loads(enrol_otp(embedded, store, "--no-input", "--json").stdout)
    shown = json.loads(
        enrol_otp(embedded, store, "--no-input", "--json", "--show-secrets").stdout
    )

    assert text.exit_code == 3, text.output
    assert "    link: secret (--show-secrets prints it)" in text.stdout
    assert "otpauth://" not in text.output
    (request,) = hidden["waiting_for"]
    assert "link" not in request
    assert request["link_is_secret"] is True
    (request,) = shown["waiting_for"]
    assert request["link"].startswith("otpauth://totp/")
    assert request["link_is_secret"] is True


def test_serve_runs_the_tenant_until_interrupted(isolated: dict[str, Path]) -> None:
    """`serve` prints its URL, answers discovery there, and stops cleanly on Ctrl-C."""
    import requests

    with served(data_home=isolated["data"], stop_signal=signal.SIGINT) as running:
        url = running.url
        answer = requests.get(url + ".well-known/openid-configuration", timeout=30)

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    assert answer.status_code == 200
    assert answer.json()["issuer"] == url
    assert running.process.returncode == 0
    assert running.stderr.splitlines()[-1] == "Stopped."


def test_serve_tls_answers_https_with_the_printed_certificate(
    isolated: dict[str, Path],
) -> None:
    """`serve --tls` answers over HTTPS, trusted through the certificate it names."""
    import requests

    with served(
        "--tls", data_home=isolated["data"], stop_signal=signal.SIGINT
    ) as running:
        url = running.url
        trusted = isolated["data"] / "mfaflow" / "tls" / "tenant-cert.pem"
        answer = requests.get(
            url + ".well-known/openid-configuration", timeout=30, verify=str(trusted)
        )
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + ".well-known/openid-configuration", timeout=30)

    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/", url)
    assert answer.json()["issuer"] == url
    assert f"Its self-signed certificate: {trusted}" in running.stderr


def _answering_json(body: bytes) -> Any:
    def handle(connection: socket.socket, stop: threading.Event) -> None:
        read_request_head(connection)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(head.encode() + body)

    return handle


ECHO_FLOW = """\
mfaflow: 1
name: echo
initial: call
data:
  name: {}
outputs:
  name: {}
states:
  call:
    call: {url: /me}
    on:
      ok: {to: done, save: {name: '${response.body.name}'}}
  done: {final: true, message: 'Hello ${data.name}.', output: {name: '${data.name}'}}
"""


def _run_echo(tmp_path: Path, store: Path, body: bytes) -> Any:
    """Run ECHO_FLOW in a process of its own against a server answering ``body``."""
    path = tmp_path / "echo.yaml"
    path.write_text(ECHO_FLOW, encoding="utf-8")
    with serve_raw(_answering_json(body)) as url:
        return mfaflow_process(*run_args(url, path, store, "-q"))


def test_run_prints_what_a_server_sent_with_control_characters_escaped(
    tmp_path: Path, store: Path
) -> None:
    """Escape sequences, line breaks and lone surrogates reach the terminal escaped."""
    body = rb'{"name": "Ann\u001b[2J\ud800\nmfaflow: ok"}'

    done = _run_echo(tmp_path, store, body)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.splitlines() == [
        r"Hello Ann\x1b[2J\ud800\nmfaflow: ok.",
        r"  name: Ann\x1b[2J\ud800\nmfaflow: ok",
    ]


def test_a_failure_line_shows_a_servers_description_escaped(
    tmp_path: Path, store: Path
) -> None:
    """An unhandled OAuth error whose description holds an escape prints it escaped."""
    body = rb'{"error": "access_denied", "error_description": "No\u001b]0;owned\u0007"}'

    done = _run_echo(tmp_path, store, body)

    assert done.returncode == 1
    assert "\x1b" not in done.stderr
    assert "\x07" not in done.stderr
    assert r"No\x1b]0;owned\x07" in done.stderr.splitlines()[0]


@pytest.mark.parametrize("seconds", ["nan", "inf", "1e308", "-1"])
def test_run_refuses_a_timeout_out_of_bounds_as_a_usage_error(
    issuer: str, flow_file: Path, store: Path, seconds: str
) -> None:
    """--timeout nan, inf, 1e308 or -1 is a usage error, not a traceback later."""
    result = invoke(run_args(issuer, flow_file, store, "--timeout", seconds))

    assert result.exit_code == 2
    assert (
        "The timeout must be a number of seconds above 0 and at most 315360000 "
        "(ten years)" in result.stderr
    )


def test_run_refuses_an_issuer_with_a_password_without_showing_it(
    flow_file: Path, store: Path
) -> None:
    """--issuer https://user:password@host is a usage error that hides the password."""
    issuer = "https://ann:hunter2-pw@tenant.example.test/"

    result = invoke(run_args(issuer, flow_file, store))

    assert result.exit_code == 2
    assert "must not hold a user name or password" in result.stderr
    assert "hunter2-pw" not in result.output
