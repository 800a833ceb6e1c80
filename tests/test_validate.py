"""Structural checks: what a flow must satisfy beyond the schema."""

from __future__ import annotations

import builtins
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from _flowfiles import (
    ACTIONS,
    FLOWFILES,
    FLOWS,
    GOOD,
    GUARDS,
    SHIPPED,
    SUBFLOWS,
    assert_reported,
    bad,
)

from mfaflow import Client, Engine, MockTransport, Response
from mfaflow._errors import DefinitionError, DefinitionErrors
from mfaflow._loader import load_flow, parse_flow
from mfaflow._model import Flow, State, Transition
from mfaflow._registry import default_registry
from mfaflow._validate import check_flow


def check(flow: Flow) -> list[DefinitionError]:
    """check_flow with the test names of actions, guards and flows."""
    return check_flow(
        flow, actions=ACTIONS, guards=GUARDS, flows=FLOWS, subflows=SUBFLOWS
    )


def parsed(text: str) -> Flow:
    """A flow from YAML text that must parse."""
    return parse_flow(text, "test.yaml")


@pytest.mark.parametrize("path", GOOD, ids=lambda path: path.name)
def test_good_fixtures_pass_every_check(path: Path) -> None:
    """The good fixtures have no structural problem."""
    assert check(load_flow(path)) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_flows_pass_every_check(path: Path) -> None:
    """The shipped flows use only registered actions and guards and shipped flows."""
    registry = default_registry()
    shipped = {flow.stem for flow in SHIPPED}

    flow = load_flow(path)
    errors = check_flow(
        flow,
        actions=registry.action_names(),
        guards=registry.guard_names(),
        flows=shipped,
    )

    assert [str(error) for error in errors] == []


@pytest.mark.parametrize("path", bad("structure"), ids=lambda path: path.name)
def test_structural_problems_are_reported_where_they_are(path: Path) -> None:
    """Each structure fixture reports exactly its problems, at their positions."""
    flow = load_flow(path)

    assert_reported(check(flow), path)


@pytest.mark.parametrize("path", bad("structure"), ids=lambda path: path.name)
def test_structural_messages_are_sentences(path: Path) -> None:
    """Each structural message opens with a capital or quote, ends in a full stop."""
    for error in check(load_flow(path)):
        assert error.msg.endswith("."), error.msg
        assert error.msg[0].isupper() or error.msg[0] == "'", error.msg


def test_a_dotted_python_path_is_an_unknown_action(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`action: os.system` is an unknown action, and nothing is imported or called."""
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args))

    def no_import(name: str, *args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"importlib.import_module({name!r}) was called")

    monkeypatch.setattr(importlib, "import_module", no_import)
    path = FLOWFILES / "bad" / "structure" / "os-system-action.yaml"

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path, actions=ACTIONS, guards=GUARDS, flows=FLOWS)

    assert_reported(caught.value.errors, path)
    assert calls == []


def test_an_importable_action_name_is_never_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A module that an action name could reach stays unimported, even on sys.path."""
    monkeypatch.syspath_prepend(str(FLOWFILES))
    monkeypatch.delitem(sys.modules, "flowfile_tripwire", raising=False)
    imported: list[str] = []
    real_import = builtins.__import__

    def watching_import(name: str, *args: Any, **kwargs: Any) -> Any:
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", watching_import)
    path = FLOWFILES / "bad" / "structure" / "tripwire-action.yaml"

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path, actions=ACTIONS, guards=GUARDS, flows=FLOWS)

    assert_reported(caught.value.errors, path)
    assert "flowfile_tripwire" not in sys.modules
    assert not any("tripwire" in name for name in imported)


def test_registered_actions_pass() -> None:
    """An action named in `actions` is not reported."""
    path = FLOWFILES / "bad" / "structure" / "os-system-action.yaml"
    flow = load_flow(path)

    errors = check_flow(flow, actions={"os.system"}, guards=GUARDS)

    assert errors == []


def test_names_of_a_kind_given_as_none_are_not_checked() -> None:
    """With actions, guards and flows all None, only the flow's own structure counts."""
    flow = load_flow(FLOWFILES / "bad" / "structure" / "unknown-names.yaml")

    assert check_flow(flow, actions=None, guards=None, flows=None) == []


def test_known_names_are_listed_when_they_can_be() -> None:
    """An unknown action's message lists the registered ones, sorted."""
    flow = load_flow(FLOWFILES / "bad" / "structure" / "os-system-action.yaml")

    (error,) = check_flow(flow, actions=["pkce", "generate_state"], guards=GUARDS)

    assert error.msg == (
        "Unknown action 'os.system' in state 'run'; known: generate_state, pkce."
    )


def test_the_on_expiry_state_counts_as_reached() -> None:
    """A final state reached only through on_expiry is not reported as unreachable."""
    flow = load_flow(FLOWFILES / "bad" / "structure" / "unreachable.yaml")

    reported = {error.msg.split("'")[1] for error in check(flow)}

    assert "expired" not in reported
    assert reported == {"orphan", "forgotten", "lonely"}


def test_a_catch_all_takes_ok() -> None:
    """A pass state whose only transition is `*` is not stuck."""
    flow = parsed(
        "mfaflow: 1\nname: x\ninitial: a\nstates:\n"
        "  a: {on: {'*': b}}\n  b: {final: true}\n"
    )

    assert check(flow) == []


def test_a_catch_rule_for_ok_takes_ok() -> None:
    """An input state whose catch rule takes ok is not stuck."""
    flow = parsed(
        "mfaflow: 1\nname: x\ninputs: {otp: }\ninitial: a\nstates:\n"
        "  a: {input: [otp], catch: [{errors: [ok], to: b}]}\n  b: {final: true}\n"
    )

    assert check(flow) == []


def test_listed_flow_inputs_are_checked_once() -> None:
    """A bad default of a flow input is reported once, not again per input state."""
    flow = parsed(
        "mfaflow: 1\nname: x\ninputs: {otp: {default: '${data.nope}'}}\ninitial: a\n"
        "states:\n  a: {input: [otp], on: {ok: b}}\n  b: {input: [otp], on: {ok: c}}\n"
        "  c: {final: true}\n"
    )

    errors = check(flow)

    assert [(error.line, error.column) for error in errors] == [(3, 26)]


def test_references_in_catch_rules_follow_the_state_kind() -> None:
    """A catch rule of a call state may use ${response}, one of an action may not."""
    flow = parsed(
        "mfaflow: 1\nname: x\ndata: {d: }\ninitial: a\nstates:\n"
        "  a:\n    call: {url: /x}\n    on: {ok: b}\n"
        "    catch: [{errors: ['*'], to: b, save: {d: '${response.status}'}}]\n"
        "  b:\n    action: pkce\n    on: {ok: c}\n"
        "    catch: [{errors: ['*'], to: c, save: {d: '${response.status}'}}]\n"
        "  c: {final: true}\n"
    )

    errors = check(flow)

    assert [(error.line, error.column) for error in errors] == [(13, 47)]
    assert "'response' exists only in" in errors[0].msg


def test_inputs_declared_by_an_input_state_may_be_referenced() -> None:
    """${inputs.otp} is declared when an input state asks for otp inline."""
    flow = parsed(
        "mfaflow: 1\nname: x\ninitial: a\nstates:\n"
        "  a: {input: {otp: {secret: true}}, on: {ok: b}}\n"
        "  b:\n    call: {url: /verify, form: {otp: '${inputs.otp}'}}\n"
        "    on: {ok: c}\n  c: {final: true}\n"
    )

    assert check(flow) == []


def test_a_flow_built_without_a_file_is_checked_too() -> None:
    """check_flow works on a model made in code, reporting at location 0:0."""
    flow = Flow(
        name="code",
        initial="start",
        states={
            "start": State("start", "pass", transitions=(Transition("ok", "finsh"),)),
            "finish": State("finish", "final"),
        },
    )

    errors = check(flow)

    assert {(error.file, error.line, error.column) for error in errors} == {
        ("<string>", 0, 0)
    }
    assert [error.msg for error in errors] == [
        "Transition 'ok' of state 'start' goes to 'finsh', which is not a state "
        "(the nearest is 'finish').",
        "Final state 'finish' is reached by no path from the initial state 'start'.",
    ]


def test_errors_are_in_file_order() -> None:
    """Errors from different checks come sorted by line and column."""
    errors = check(load_flow(FLOWFILES / "bad" / "structure" / "no-way-out.yaml"))

    positions = [(error.line, error.column) for error in errors]
    assert len(positions) == 4
    assert positions == sorted(positions)


POSITIONS = r"""mfaflow: 1
name: positions
initial: a
states:
  a:
    call:
      method: POST
      url: /x
      json:
        literal: |
          first line
          second ${data.one} here
        folded: >
          first
            ${data.two} indented
        plain: before ${data.three}
        single: 'it''s ${data.four}'
        double: "tab\t${data.five}"
        escaped: "\x24{data.six} and ${data.seven}"
        multi: two
          lines ${data.eight}
    on: {ok: done}
  done: {final: true}
"""


def test_references_are_reported_where_they_are_written() -> None:
    """Each reference's own line and column, in every style of YAML string."""
    errors = check(parsed(POSITIONS))

    found = {error.msg.split()[1]: (error.line, error.column) for error in errors}
    assert found == {
        "${data.one}": (12, 18),
        "${data.two}": (15, 13),
        "${data.three}": (16, 23),
        "${data.four}": (17, 24),
        "${data.five}": (18, 23),
        # An escape spells a '${' the file does not show: the string's start.
        "${data.six}": (19, 18),
        "${data.seven}": (19, 18),
        "${data.eight}": (21, 17),
    }


def test_an_invalid_template_is_reported_where_its_reference_is() -> None:
    """A broken reference inside a block is located at its own line and column."""
    text = POSITIONS.replace("second ${data.one} here", "second ${data.one here")

    with pytest.raises(DefinitionErrors) as caught:
        parsed(text)

    assert [(error.line, error.column) for error in caught.value.errors] == [(12, 18)]
    assert caught.value.errors[0].msg.startswith("Invalid template in 'json'")


# -- what a sub-flow ends with ------------------------------------------------

CHILD = """mfaflow: 1
name: child
EXPIRY
initial: ask
states:
  ask:
    input: {code: {}}
    on: {ok: done}
  done: {final: true}
"""


def parent_of(child: Flow, key: str) -> list[DefinitionError]:
    """The problems of a flow whose sub-flow state waits for ``key`` from ``child``."""
    flow = parsed(
        "mfaflow: 1\nname: parent\ninitial: step\nstates:\n"
        f"  step: {{flow: child, on: {{success: done, {key}: done}}}}\n"
        "  done: {final: true}\n"
    )
    return check_flow(
        flow, actions=None, guards=None, flows={"child"}, subflows=lambda _: child
    )


def test_expired_is_an_ending_of_a_sub_flow_that_expires_without_on_expiry() -> None:
    """A sub-flow with expires_in and no on_expiry ends as expired when it expires."""
    child = parsed(CHILD.replace("EXPIRY", "expires_in: 60"))

    assert parent_of(child, "expired") == []


def test_expired_is_no_ending_of_a_sub_flow_that_never_expires() -> None:
    """Waiting for expired from a sub-flow without expiry or such a state is told."""
    child = parsed(CHILD.replace("EXPIRY", ""))

    (error,) = parent_of(child, "expired")

    assert (error.line, error.column) == (5, 43)
    assert error.msg == (
        "State 'step' has a transition for 'expired', which the sub-flow 'child' "
        "never ends with; its final states: done; its outcomes: success."
    )


# -- expiry as a way out of waiting ---------------------------------------------

WAITS = """mfaflow: 1
name: waits
EXPIRY
initial: start
states:
  start:
    call: {method: POST, url: /token}
    on:
      ok: done
      http.4xx: ask
      http.5xx: expired
      authorization_pending: {to: poll, delay: 5}
  poll:
    call: {method: POST, url: /token}
    on: {authorization_pending: {to: poll, delay: 5RENEW}}
  ask:
    input: {code: {}}
    on: {ok: ask}
  done: {final: true}
  expired: {final: true, outcome: expired}
"""


def waits(expiry: str, renew: str = "") -> Flow:
    """WAITS, whose poll and ask loop on themselves, with ``expiry`` at the top."""
    return parsed(WAITS.replace("EXPIRY", expiry).replace("RENEW", renew))


def ending_problems(flow: Flow) -> list[str]:
    """The 'leads to no final state' problems of ``flow``."""
    return [e.msg for e in check(flow) if "leads to no final state" in e.msg]


def test_a_waiting_loop_never_ends_in_a_flow_that_does_not_expire() -> None:
    """Without expires_in, a poll loop and an input loop can never end."""
    assert ending_problems(waits("")) == [
        "State 'poll' leads to no final state: a run that enters it can never end.",
        "State 'ask' leads to no final state: a run that enters it can never end.",
    ]


@pytest.mark.parametrize(
    "expiry", ["expires_in: 600\non_expiry: expired", "expires_in: 600"]
)
def test_a_waiting_loop_ends_by_expiring(expiry: str) -> None:
    """With expires_in (and on_expiry or not), states that wait end by expiring."""
    assert check(waits(expiry)) == []


def test_a_loop_that_never_waits_is_told_though_the_flow_expires() -> None:
    """A loop without a wait takes its steps at once: expiry does not end it."""
    flow = parsed(
        "mfaflow: 1\nname: spin\nexpires_in: 600\ninitial: a\nstates:\n"
        "  a: {call: {url: /x}, on: {ok: b, http.4xx: done}}\n"
        "  b: {call: {url: /y}, on: {ok: c}}\n  c: {on: {ok: b}}\n"
        "  done: {final: true}\n"
    )

    assert ending_problems(flow) == [
        "State 'b' leads to no final state: a run that enters it can never end.",
        "State 'c' leads to no final state: a run that enters it can never end.",
    ]


def test_a_waiting_loop_that_renews_its_expiry_passes() -> None:
    """A poll loop that sets expires_in again on each round passes, though it
    never expires (a known limit of the check)."""
    flow = waits("expires_in: 600\non_expiry: expired", ", expires_in: 600")

    assert ending_problems(flow) == []


def test_a_run_in_a_waiting_loop_of_an_expiring_flow_ends() -> None:
    """What the check counts on: a run that polls and polls ends once it expires."""
    now = [1_000_000.0]
    pending = b'{"error": "authorization_pending"}'
    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        transport=MockTransport(lambda request: Response(400, {}, pending)),
        clock=lambda: now[0],
    )
    result = engine.start(waits("expires_in: 600\non_expiry: expired"))
    while not result.ended:
        assert result.state == "poll"
        now[0] += 60
        result = engine.resume(result.run_id)

    assert (result.state, result.outcome) == ("expired", "expired")
    assert now[0] - 1_000_000.0 == 600


SECRET_CHILD = """
mfaflow: 1
name: child
initial: done
inputs:
  login_hint: {}
  secret_code: {secret: true}
outputs:
  token: {secret: true}
states:
  done: {final: true, output: {token: '${inputs.secret_code}'}}
"""

SECRET_PARENT = """
mfaflow: 1
name: parent
initial: sub
inputs:
  password: {secret: true}
data:
  kept: {}
  token: {secret: true}
states:
  sub:
    flow: child
    with: {login_hint: '${inputs.password}', secret_code: '${inputs.password}'}
    on:
      success: {to: done, save: {kept: '${output.token}', token: '${output.token}'}}
  done: {final: true}
"""


def test_secrets_handed_to_or_from_a_sub_flow_in_clear_are_reported() -> None:
    """A secret passed as a plain sub-flow input, or a secret output kept plainly."""
    child = parse_flow(SECRET_CHILD, "child.yaml")
    errors = check_flow(
        parsed(SECRET_PARENT),
        actions=ACTIONS,
        guards=GUARDS,
        flows={"child"},
        subflows=lambda name: child if name == "child" else None,
    )

    assert [(error.line, error.column, error.msg) for error in errors] == [
        (
            13,
            25,
            "State 'sub' gives the sub-flow 'child' as its input 'login_hint' "
            "${inputs.password} (the secret input 'password'), which would be "
            "stored and shown in clear; mark 'login_hint' 'secret: true' in "
            "'child', or leave the secret out.",
        ),
        (
            15,
            41,
            "Transition 'success' of state 'sub' saves into the data 'kept' "
            "${output.token} (the secret output 'token' of 'child'), which would "
            "be stored and shown in clear; mark 'kept' 'secret: true' under "
            "'data', or leave the secret out.",
        ),
    ]


def test_validate_refuses_a_secret_written_in_clear(tmp_path: Path) -> None:
    """The command line tells the place a secret input would be shown in clear."""
    from click.testing import CliRunner

    from mfaflow._cli import cli

    path = tmp_path / "leak.yaml"
    path.write_text(
        "mfaflow: 1\nname: leak\ninitial: done\n"
        "inputs:\n  password: {secret: true}\noutputs:\n  echo: {}\n"
        "states:\n  done: {final: true, output: {echo: '${inputs.password}'}}\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(cli, ["validate", str(path)])

    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{path}:9:39: Final state 'done' gives as the output 'echo' "
        "${inputs.password} (the secret input 'password'), which would be stored "
        "and shown in clear; mark 'echo' 'secret: true' under 'outputs', or "
        "leave the secret out."
    )


LOOP = """
mfaflow: 1
name: loop
initial: again
states:
  again:
    flow: loop
    on: {success: done}
  done: {final: true}
"""


def cycle_flow(name: str, other: str) -> Flow:
    """A flow whose only way to its end is through the sub-flow ``other``."""
    return parse_flow(
        f"mfaflow: 1\nname: {name}\ninitial: call\nstates:\n"
        f"  call:\n    flow: {other}\n    on: {{success: done}}\n"
        "  done: {final: true}\n",
        f"{name}.yaml",
    )


def test_a_flow_that_always_starts_itself_is_refused() -> None:
    """A sub-flow state every run passes, naming the flow itself, is told."""
    (error,) = check_flow(parsed(LOOP), actions=None, guards=None)

    assert (error.line, error.column) == (7, 11)
    assert error.msg == (
        "State 'again' starts the sub-flow 'loop', which is this flow itself: "
        "a run would nest it in itself without end."
    )


def test_a_cycle_of_flows_that_start_each_other_is_refused() -> None:
    """a starts b, which always starts a again: told, with the chain."""
    flows = {"a": cycle_flow("a", "b"), "b": cycle_flow("b", "a")}

    (error,) = check_flow(flows["a"], actions=None, guards=None, subflows=flows.get)

    assert error.msg == (
        "State 'call' starts the sub-flow 'b', which leads back to this flow "
        "(a -> b -> a): a run would nest it in itself without end."
    )


def test_a_flow_that_starts_itself_on_some_paths_only_passes() -> None:
    """A guard that may take another way (as authorize does) lets the flow end."""
    text = LOOP.replace(
        "initial: again\n",
        "initial: pick\ninputs:\n  nest: {default: 'no'}\n",
    ).replace(
        "states:\n",
        "states:\n  pick:\n    on:\n      ok:\n"
        "        - {to: again, when: {equals: ['${inputs.nest}', 'yes']}}\n"
        "        - done\n",
    )

    assert check_flow(parsed(text), actions=None, guards=None) == []


def test_an_engine_refuses_a_flow_that_starts_itself_before_any_request() -> None:
    """Starting the flow is a definition error; no step of it runs."""
    sent: list[object] = []
    engine = Engine(
        Client("https://tenant.example.test/", "app"),
        transport=MockTransport(lambda request: sent.append(request) or Response(200)),
    )

    with pytest.raises(DefinitionErrors, match="which is this flow itself"):
        engine.start(parsed(LOOP))
    assert sent == []
