"""Reading flow files: YAML to the definition model, with every problem located."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

import pytest
from _flowfiles import ACTIONS, FLOWFILES, FLOWS, GOOD, GUARDS, assert_reported, bad
from hypothesis import given, settings
from hypothesis import strategies as st

from mfaflow._errors import DefinitionError, DefinitionErrors
from mfaflow._loader import MAX_FILE_SIZE, load_flow, parse_flow
from mfaflow._model import Condition, Flow, Location, Transition
from mfaflow._template import Reference, Template
from mfaflow._yaml import MAX_ALIAS_NODES

MINIMAL = """\
mfaflow: 1
name: minimal
initial: a
states:
  a: {final: true}
"""


def parse_errors(text: str) -> list[DefinitionError]:
    """The errors parse_flow reports for ``text``."""
    with pytest.raises(DefinitionErrors) as caught:
        parse_flow(text, "test.yaml")
    return caught.value.errors


def load(name: str) -> Flow:
    """Load a good fixture by its file name."""
    return load_flow(FLOWFILES / "good" / name)


@pytest.mark.parametrize("path", GOOD, ids=lambda path: path.name)
def test_good_fixtures_load(path: Path) -> None:
    """Every good fixture loads into a flow named after its file."""
    flow = load_flow(path)

    assert flow.name == path.stem
    assert flow.source == str(path)


@pytest.mark.parametrize(
    "path", bad("yaml") + bad("schema") + bad("loader"), ids=lambda path: path.name
)
def test_broken_fixtures_report_every_problem_where_it_is(path: Path) -> None:
    """Each broken fixture is refused with exactly its problems, at their positions."""
    with pytest.raises(DefinitionErrors) as caught:
        parse_flow(path.read_text(encoding="utf-8"), path.name)

    assert_reported(caught.value.errors, path)


@pytest.mark.parametrize(
    "path", bad("yaml") + bad("schema") + bad("loader"), ids=lambda path: path.name
)
def test_messages_are_sentences(path: Path) -> None:
    """Every message starts with a capital or a quoted name and ends in a full stop."""
    with pytest.raises(DefinitionErrors) as caught:
        parse_flow(path.read_text(encoding="utf-8"), path.name)

    for error in caught.value.errors:
        assert error.msg.endswith("."), error.msg
        assert error.msg[0].isupper() or error.msg[0] == "'", error.msg


def test_the_top_level_keys_become_the_flow() -> None:
    """Name, version, texts, expiry and initial state are read from their keys."""
    flow = load("password-grant.yaml")

    assert flow.version == 2
    assert flow.summary.startswith("Resource Owner Password Grant")
    assert flow.description.startswith("Asks the token endpoint")
    assert flow.expires_in == 600
    assert flow.on_expiry == "expired"
    assert flow.initial == "request_token"
    assert list(flow.states)[:3] == ["request_token", "step_up", "done"]


def test_input_specs_take_their_defaults() -> None:
    """An input is required unless it has a default or says otherwise."""
    inputs = load("password-grant.yaml").inputs

    assert inputs["username"].required
    assert inputs["username"].description == "The user's email address."
    assert inputs["password"].secret
    assert not inputs["scope"].required
    assert inputs["scope"].default == "openid profile offline_access"
    otp = inputs["otp"]
    assert (otp.pattern, otp.prompt, otp.required) == (
        "^[0-9]{6}$",
        "One-time code",
        False,
    )


def test_empty_declarations_are_allowed() -> None:
    """`problem:` with nothing after it declares data with no description."""
    flow = load("password-grant.yaml")

    assert flow.data["problem"].description == ""
    assert not flow.data["problem"].secret
    assert flow.outputs["access_token"].secret


def test_call_states_keep_their_request() -> None:
    """A call's method, URL, form, headers and timeout reach the model."""
    state = load("password-grant.yaml").states["request_token"]

    assert state.kind == "call"
    assert state.call is not None
    assert (state.call.method, state.call.url, state.call.timeout) == (
        "POST",
        "/oauth/token",
        10,
    )
    assert state.call.form is not None
    assert state.call.form["grant_type"] == "password"
    assert state.call.form["username"] == Template(
        "${inputs.username}", (Reference("inputs", ("username",), 0),)
    )
    assert state.call.headers["Accept"] == "application/json"


def test_endpoint_calls_default_to_get() -> None:
    """A call naming an endpoint and no method is a GET with no URL."""
    call = load("mfa-challenge.yaml").states["list"].call

    assert call is not None
    assert (call.method, call.endpoint, call.url) == (
        "GET",
        "mfa_authenticators_endpoint",
        None,
    )


def test_transition_shorthands() -> None:
    """A string is a target, a mapping a transition, a list alternatives in order."""
    transitions = load("password-grant.yaml").states["request_token"].transitions
    by_event: dict[str, list[Transition]] = {}
    for transition in transitions:
        by_event.setdefault(transition.event, []).append(transition)

    assert [t.target for t in by_event["http.5xx"]] == ["unavailable"]
    assert by_event["mfa_required"][0].expires_in == 300
    assert set(by_event["mfa_required"][0].save) == {"mfa_token"}
    locked, rejected = by_event["invalid_grant"]
    assert (locked.target, rejected.target) == ("locked", "rejected")
    assert locked.when is not None
    assert locked.when.guard == "equals"
    assert rejected.when is None


def test_on_is_the_transitions_key_and_yes_no_stay_text() -> None:
    """`on` is read as the transitions key and on, off, yes, no, y, n stay text."""
    flow = load("shorthands.yaml")

    assert flow.inputs["answer"].choices == ("yes", "no", "on", "off", "y", "n")
    assert flow.inputs["answer"].default == "yes"
    assert [t.target for t in flow.states["ask"].transitions] == [
        "agreed",
        "declined",
        "refused",
    ]


@pytest.mark.parametrize("word", ["true", "True", "TRUE"])
def test_true_in_its_yaml_spellings_is_a_boolean(word: str) -> None:
    """true, True and TRUE are booleans."""
    flow = parse_flow(MINIMAL.replace("final: true", f"final: {word}"))

    assert flow.states["a"].final


@pytest.mark.parametrize("word", ["yes", "on", "y", "tRuE"])
def test_other_words_are_not_booleans(word: str) -> None:
    """yes, on, y and odd casings are text, so `final` refuses them."""
    (error,) = parse_errors(MINIMAL.replace("final: true", f"final: {word}"))

    assert (error.line, error.column) == (5, 14)
    assert error.msg.startswith(
        "'final' of state 'a' must be true (leave 'final' out of a state that is "
        f"not final), got {word!r}"
    )


def test_list_form_inputs_are_the_flows_specs() -> None:
    """`input: [answer]` asks for the flow's own `answer` input, spec and all."""
    flow = load("shorthands.yaml")

    (spec,) = flow.states["ask"].inputs
    assert spec is flow.inputs["answer"]


def test_inline_inputs_are_specs_of_the_state() -> None:
    """`input: {otp: {...}}` declares the input on the state."""
    (spec,) = load("mfa-challenge.yaml").states["ask_code"].inputs

    assert (spec.name, spec.secret, spec.pattern) == ("otp", True, "^[0-9]{6}$")
    assert spec.prompt == "Enter the 6-digit code"
    assert spec.location == Location(
        str(FLOWFILES / "good" / "mfa-challenge.yaml"), 65, 7
    )


def test_with_gives_action_and_sub_flow_arguments() -> None:
    """`with:` becomes the state's args, for actions and for sub-flows."""
    challenge = load("mfa-challenge.yaml")
    password = load("password-grant.yaml")

    assert challenge.states["make_nonce"].action == "pkce"
    assert dict(challenge.states["make_nonce"].args) == {
        "method": "S256",
        "lengths": (43, 128),
    }
    assert password.states["step_up"].flow == "mfa-challenge"
    assert set(password.states["step_up"].args) == {"mfa_token"}


def test_nested_conditions_become_condition_trees() -> None:
    """all, any and not hold nested conditions; other guards hold their values."""
    first, second, _ = load("mfa-challenge.yaml").states["route"].transitions

    assert first.when is not None
    assert first.when.guard == "all"
    present, negated = first.when.args
    assert isinstance(present, Condition)
    assert present.guard == "present"
    assert isinstance(negated.args, Condition)
    assert negated.args.guard == "equals"
    assert second.when is not None
    assert second.when.guard == "any"
    assert second.when.args[1].args[1] == ("none",)


def test_retry_and_catch_rules() -> None:
    """Retry fields are read as numbers; catch rules keep their errors and saves."""
    state = load("password-grant.yaml").states["request_token"]

    (retry,) = state.retry
    assert retry.errors == ("http.5xx", "transport.timeout", "transport.connect")
    assert (retry.interval, retry.backoff, retry.attempts) == (1.0, 2.0, 3)
    assert (retry.max_delay, retry.jitter) == (30.0, "full")
    (catch,) = state.catch
    assert (catch.errors, catch.target, set(catch.save)) == (
        ("transport.*",),
        "unavailable",
        {"problem"},
    )


def test_retry_defaults() -> None:
    """A retry rule naming only its errors waits 1 s, backs off by 2, tries 3 times."""
    text = MINIMAL.replace(
        "  a: {final: true}",
        "  a:\n    call: {url: /x}\n    on: {ok: b}\n    retry: [{errors: ['*']}]\n"
        "  b: {final: true}",
    )
    (rule,) = parse_flow(text).states["a"].retry

    assert (
        rule.interval,
        rule.backoff,
        rule.attempts,
        rule.max_delay,
        rule.jitter,
    ) == (
        1.0,
        2.0,
        3,
        None,
        "none",
    )


def test_final_states() -> None:
    """Final states keep outcome, message and output; outcome defaults to success."""
    states = load("password-grant.yaml").states

    assert states["done"].final
    assert states["done"].outcome == "success"
    assert isinstance(states["done"].message, Template)
    assert set(states["done"].output) == {"access_token", "refresh_token"}
    assert states["rejected"].outcome == "failure"
    assert states["expired"].outcome == "expired"
    assert load("mfa-challenge.yaml").states["success"].outcome == "success"


def test_pass_states() -> None:
    """A state with none of call, action, input, flow and final is a pass state."""
    assert load("mfa-challenge.yaml").states["route"].kind == "pass"


def test_templates_know_where_they_were_written() -> None:
    """A template carries the line and column of its string."""
    flow = load("password-grant.yaml")
    call = flow.states["request_token"].call
    assert call is not None
    assert call.form is not None

    template = call.form["username"]
    assert isinstance(template, Template)
    assert (template.line, template.column) == (33, 19)


def test_escaped_references_are_text() -> None:
    """`$${` writes a literal `${`, and a string with only escapes stays a string."""
    flow = parse_flow(
        MINIMAL.replace("{final: true}", "{final: true, message: 'cost $${inputs.x}'}")
    )

    assert flow.states["a"].message == "cost ${inputs.x}"


LINKS = """\
mfaflow: 1
name: links
inputs:
  help: {required: false, link: 'https://help.example.test/codes'}
data:
  enrolment: {secret: true}
initial: ask
states:
  ask:
    input:
      otp: {secret: true, link: '${data.enrolment.barcode_uri}'}
    on: {ok: done}
  done: {final: true}
"""


def test_links_are_templates_or_literal_urls() -> None:
    """`link` of an input is a template where it holds references, else the URL."""
    flow = parse_flow(LINKS, "links.yaml")

    assert flow.inputs["help"].link == "https://help.example.test/codes"
    (otp,) = flow.states["ask"].inputs
    assert isinstance(otp.link, Template)
    assert otp.link.references == (Reference("data", ("enrolment", "barcode_uri")),)
    assert (otp.link.line, otp.link.column) == (11, 33)


def test_a_link_naming_undeclared_data_is_refused_where_it_is_written() -> None:
    """A link's reference to undeclared data fails the checks, at file:line:column."""
    path = FLOWFILES / "bad" / "structure" / "undefined-link-references.yaml"

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path, actions=ACTIONS, guards=GUARDS, flows=FLOWS)

    assert str(caught.value.errors[0]) == (
        f"{path}:8:39: Reference ${{data.authorize_ur}} in input 'callback_url' "
        "names 'authorize_ur', which is not declared under 'data'."
    )


def test_values_are_read_only() -> None:
    """Mappings in the model, nested ones too, cannot be changed."""
    flow = load("mfa-challenge.yaml")
    call = flow.states["challenge"].call
    assert call is not None

    assert isinstance(call.json, MappingProxyType)
    with pytest.raises(TypeError):
        call.json["nonce"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        flow.states["x"] = flow.states["list"]  # type: ignore[index]
    assert isinstance(flow.states["make_nonce"].args["lengths"], tuple)


def test_aliases_repeat_values() -> None:
    """An alias gives the anchored value again, located where the alias is."""
    flow = load("shorthands.yaml")

    assert (
        flow.states["refused"].outcome == flow.states["declined"].outcome == "failure"
    )
    assert flow.states["refused"].final


def test_locations_point_at_each_element() -> None:
    """States at their names, transitions at their values, rules at their mappings."""
    flow = load("password-grant.yaml")
    file = str(FLOWFILES / "good" / "password-grant.yaml")
    state = flow.states["request_token"]

    assert flow.location == Location(file, 3, 1)
    assert flow.locations["initial"] == Location(file, 24, 10)
    assert state.location == Location(file, 26, 3)
    assert state.call is not None
    assert state.call.location == Location(file, 29, 7)
    assert state.transitions[0].location == Location(file, 42, 11)
    assert state.retry[0].location == Location(file, 52, 9)
    assert state.catch[0].location == Location(file, 59, 9)
    assert flow.states["done"].location == Location(file, 69, 3)


def test_whole_numbers_written_as_floats_are_integers() -> None:
    """`mfaflow: 1.0` and `version: 3.0` are the integers JSON would read."""
    flow = parse_flow(MINIMAL.replace("mfaflow: 1", "mfaflow: 1.0\nversion: 3.0"))

    assert flow.version == 3
    assert isinstance(flow.version, int)


def test_errors_come_in_file_order() -> None:
    """Problems found in different passes are reported by line and column."""
    text = "mfaflow: 1\nname: Bad\nstates:\n  s: {final: maybe}\ninitial: 5\n"
    errors = parse_errors(text)

    assert [(e.line, e.column) for e in errors] == [(2, 7), (4, 14), (5, 10)]


def test_errors_name_the_file() -> None:
    """Each error and the combined message name the file given."""
    with pytest.raises(DefinitionErrors) as caught:
        parse_flow(
            "mfaflow: 1\nname: x\nstates: {}\ninitial: a\nextra: 1\n", "flows/mine.yaml"
        )

    assert {error.file for error in caught.value.errors} == {"flows/mine.yaml"}
    assert str(caught.value).splitlines() == [
        str(error) for error in caught.value.errors
    ]
    assert str(caught.value).startswith("flows/mine.yaml:3:9: ")


def test_empty_text_is_refused() -> None:
    """An empty string is refused as an empty file, located at the file as a whole."""
    (error,) = parse_errors("")

    assert (error.line, error.column) == (1, 1)
    assert error.msg == "The file is empty; a flow file starts with 'mfaflow: 1'."


def test_python_tags_never_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A `!!python/object/apply:os.system` tag is refused without calling anything."""
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args))

    with pytest.raises(DefinitionErrors):
        load_flow(FLOWFILES / "bad" / "yaml" / "python-tag.yaml")

    assert calls == []
    assert not Path("/tmp/mfaflow-pwned").exists()


@pytest.mark.parametrize(
    "text", ["[" * 5000, "- " * 200 + "x", "{a: " * 300 + "x" + "}" * 300]
)
def test_deep_nesting_is_refused(text: str) -> None:
    """Values nested hundreds deep are refused with a clear error, not a crash."""
    (error,) = parse_errors(text)

    assert "nests values" in error.msg


def test_alias_expansion_is_bounded() -> None:
    """Aliases may repeat up to the limit of nodes; past it the alias is refused."""
    items = ", ".join(["x"] * 99)  # with its list, 100 nodes each time *b is used

    def repeated(times: int) -> str:
        return f"base: &b [{items}]\nmany: [{', '.join(['*b'] * times)}]\n"

    at_limit = parse_errors(repeated(MAX_ALIAS_NODES // 100))
    (error,) = parse_errors(repeated(MAX_ALIAS_NODES // 100 + 1))

    assert not any("alias" in error.msg for error in at_limit)
    assert (error.line, error.column) == (2, len("many: [") + 4 * 100 + 1)
    assert error.msg.startswith(
        f"The file expands to more than {MAX_ALIAS_NODES} nodes through aliases, "
        "here at *b;"
    )


def test_load_flow_refuses_large_files(tmp_path: Path) -> None:
    """A file over 1 MiB is refused before it is parsed."""
    path = tmp_path / "big.yaml"
    path.write_text(MINIMAL + "#" * MAX_FILE_SIZE, encoding="utf-8")

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path)

    (error,) = caught.value.errors
    assert (error.file, error.line, error.column) == (str(path), 1, 1)
    assert "larger than 1 MiB" in error.msg


def test_load_flow_reads_a_file_of_exactly_the_limit(tmp_path: Path) -> None:
    """A file of exactly 1 MiB is still read."""
    path = tmp_path / "full.yaml"
    path.write_text(MINIMAL + "#" * (MAX_FILE_SIZE - len(MINIMAL)), encoding="utf-8")

    assert load_flow(path).name == "minimal"


def test_load_flow_refuses_text_that_is_not_utf8(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is reported at its line and column."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("minimal", "caf\xe9").encode("latin-1"))

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path)

    (error,) = caught.value.errors
    assert (error.line, error.column) == (2, 10)
    assert error.msg == "The flow file is not UTF-8 text: the byte 0xE9 cannot be read."


def test_load_flow_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    """A UTF-8 byte order mark at the start is ignored."""
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())

    assert load_flow(path).name == "minimal"


def test_load_flow_reports_a_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read gives a definition error naming it."""
    path = tmp_path / "missing.yaml"

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path)

    assert (
        str(caught.value)
        == f"{path}:1:1: Cannot read the flow file: No such file or directory."
    )


def test_load_flow_checks_structure_only_when_given_names() -> None:
    """Without registered names load_flow only parses; with them it checks structure."""
    path = FLOWFILES / "bad" / "structure" / "unreachable.yaml"

    assert load_flow(path).name == "unreachable"
    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path, actions=ACTIONS, guards=GUARDS, flows=FLOWS)
    assert_reported(caught.value.errors, path)


def test_load_flow_checks_only_the_kinds_of_names_given() -> None:
    """Passing only `flows` checks sub-flow names but not action or guard names."""
    path = FLOWFILES / "bad" / "structure" / "unknown-names.yaml"

    with pytest.raises(DefinitionErrors) as caught:
        load_flow(path, flows=FLOWS)

    assert [error.msg.split(";")[0] for error in caught.value.errors] == [
        "Unknown sub-flow 'mfa-enrol' in state 'sub'"
    ]


YAMLISH = st.lists(
    st.sampled_from(
        [
            "mfaflow: 1\n",
            "name: x\n",
            "initial: a\n",
            "states:\n",
            "  a:\n",
            "    on:\n",
            "      ok: b\n",
            "    final: true\n",
            "- ",
            "&a ",
            "*a ",
            "!!python/name:os.system ",
            "{",
            "}",
            "[",
            "]",
            ", ",
            ": ",
            "? ",
            "'",
            '"',
            "${inputs.x}",
            "${",
            "$${",
            "\t",
            "\n",
            "  ",
            "#",
            "<<: ",
            "%YAML 1.1\n",
            "---\n",
            "...\n",
            "!!int ",
            "\x00",
            "\ufeff",
            "\x85",
            "call: {url: /x}\n",
            "input: [a, a]\n",
            "when: {all: []}\n",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), YAMLISH))
def test_any_text_gives_a_flow_or_definition_errors(text: str) -> None:
    """Whatever the text, parse_flow gives a flow or raises DefinitionErrors only."""
    try:
        flow = parse_flow(text, "fuzz.yaml")
    except DefinitionErrors as caught:
        errors = caught.errors
    else:
        assert isinstance(flow, Flow)
        return

    assert errors
    assert all(isinstance(error, DefinitionError) for error in errors)
    assert all(error.msg.endswith(".") for error in errors)


def test_a_revealed_output_is_a_secret() -> None:
    """`reveal: true` marks an output secret too, and says it is to be shown once."""
    flow = parse_flow(
        "mfaflow: 1\nname: r\ninitial: done\n"
        "outputs: {code: {reveal: true}, token: {secret: true}, user: }\n"
        "states:\n  done: {final: true}\n"
    )

    specs = flow.outputs
    assert [(s.name, s.secret, s.reveal) for s in specs.values()] == [
        ("code", True, True),
        ("token", True, False),
        ("user", False, False),
    ]


def test_yaml_1_1_octal_and_base_60_numbers_stay_text() -> None:
    """012345 and 1:30 are kept as written, not read as 5349 and 90."""
    flow = parse_flow(
        "mfaflow: 1\nname: n\ninitial: a\n"
        "inputs: {code: {default: 012345}, at: {default: 1:30}, "
        "f: {default: 1:30.5}, hex: {default: 0x1F}, n: {default: -7}}\n"
        "states:\n  a: {final: true}\n"
    )

    defaults = {name: spec.default for name, spec in flow.inputs.items()}
    assert defaults == {
        "code": "012345",
        "at": "1:30",
        "f": "1:30.5",
        "hex": 31,
        "n": -7,
    }
