"""The JSON Schema of flow files agrees with the loader."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from _flowfiles import ACTIONS, FLOWS, GOOD, GUARDS, SHIPPED, bad
from hypothesis import given, settings
from hypothesis import strategies as st

from mfaflow._errors import DefinitionError, DefinitionErrors
from mfaflow._loader import parse_flow
from mfaflow._validate import check_flow
from mfaflow._yaml import compose

SCHEMA = json.loads(files("mfaflow").joinpath("flow.schema.json").read_text("utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def schema_accepts(document: Any) -> bool:
    """Whether the schema accepts a document (plain JSON-like data)."""
    return bool(VALIDATOR.is_valid(document))


def loader_accepts(text: str) -> bool:
    """Whether parse_flow accepts a text."""
    try:
        parse_flow(text, "generated.yaml")
    except DefinitionErrors:
        return False
    return True


def document(path: Path) -> Any:
    """The data of a flow file as the loader reads it, for the schema."""
    return compose(path.read_text(encoding="utf-8"), path.name).plain()


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The shipped schema passes the draft 2020-12 meta-schema."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _properties(schema: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(schema, dict):
        for name, child in schema.get("properties", {}).items():
            found.append((name, child))
        for value in schema.values():
            found += _properties(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _properties(value)
    return found


def test_every_fixed_key_has_a_description() -> None:
    """Every key the schema lists has a description for editors to show."""
    for name, child in _properties(SCHEMA):
        if child is False:
            continue  # "this key may not be here", inside dependentSchemas
        described = "description" in child or "$ref" in child
        assert described, f"{name!r} has no description"
        target = child.get("$ref", "").rsplit("/", 1)[-1]
        if target:
            assert "description" in child or "description" in SCHEMA["$defs"][target]


def test_objects_with_fixed_keys_refuse_others() -> None:
    """Every object schema that lists its keys sets additionalProperties to false."""
    definitions = SCHEMA["$defs"].values()
    fixed = [SCHEMA, *(d for d in definitions if "properties" in d)]
    fixed = [schema for schema in fixed if "propertyNames" not in schema]

    assert len(fixed) == 9
    for schema in fixed:
        assert schema.get("additionalProperties") is False, schema.get("description")


@pytest.mark.parametrize(
    "path", GOOD + SHIPPED, ids=lambda path: f"{path.parent.name}/{path.name}"
)
def test_good_and_shipped_flows_pass_the_schema_and_load(path: Path) -> None:
    """Every good fixture and every shipped flow validates and loads."""
    errors = [error.message for error in VALIDATOR.iter_errors(document(path))]

    assert errors == []
    assert loader_accepts(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", bad("schema"), ids=lambda path: path.name)
def test_schema_level_problems_are_refused_by_both(path: Path) -> None:
    """Each schema-level broken fixture is refused by the schema and by the loader."""
    assert not schema_accepts(document(path))
    assert not loader_accepts(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", bad("loader"), ids=lambda path: path.name)
def test_some_problems_only_the_loader_sees(path: Path) -> None:
    """Problems the schema cannot state (undeclared listed inputs) pass it only."""
    assert schema_accepts(document(path))
    assert not loader_accepts(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", bad("structure"), ids=lambda path: path.name)
def test_structural_problems_pass_both(path: Path) -> None:
    """Flows with only structural problems pass the schema and load."""
    assert schema_accepts(document(path))
    assert loader_accepts(path.read_text(encoding="utf-8"))


# Generated documents: a valid flow with every kind of element, then a few
# random edits (a key set to a random value, a key removed, a list item
# replaced). The edits draw from the format's own keys and names and from
# values of every type, valid and broken, so both sides meet every rule.

BASE: dict[str, Any] = {
    "mfaflow": 1,
    "name": "generated",
    "version": 1,
    "inputs": {"otp": {"secret": True, "pattern": "^[0-9]+$"}, "scope": None},
    "data": {"tokens": {"secret": True}, "count": None},
    "outputs": {"token": {"description": "The token."}},
    "expires_in": 600,
    "on_expiry": "c",
    "initial": "a",
    "states": {
        "a": {
            "call": {
                "method": "POST",
                "url": "/oauth/token",
                "form": {"otp": "${inputs.otp}", "n": 1},
                "timeout": 5,
            },
            "on": {
                "ok": {
                    "to": "b",
                    "save": {"tokens": "${response.body}"},
                    "when": {"all": [{"equals": [1, 1]}, {"not": {"absent": "x"}}]},
                },
                "http.5xx": ["c", {"to": "c", "delay": 1}],
            },
            "retry": [{"errors": ["http.5xx"], "attempts": 2, "jitter": "full"}],
            "catch": [{"errors": ["*"], "to": "c"}],
        },
        "b": {"input": ["otp"], "on": {"ok": "d"}},
        "d": {"action": "pkce", "with": {"method": "S256"}, "on": {"ok": "e"}},
        "e": {"flow": "sub-flow", "with": {"x": 1}, "on": {"success": "c"}},
        "f": {
            "call": {
                "method": "POST",
                "url": "/mfa/challenge",
                "json": {"mfa_token": "${data.tokens}"},
                "client_auth": True,
            },
            "on": {"ok": "c"},
        },
        "c": {
            "final": True,
            "outcome": "success",
            "output": {"token": "${data.tokens}"},
        },
    },
}

KEYS = sorted(
    {
        *("mfaflow", "name", "version", "summary", "description", "inputs", "data"),
        *("outputs", "expires_in", "on_expiry", "initial", "states", "call", "action"),
        *("input", "flow", "final", "with", "on", "retry", "catch", "outcome"),
        *("message", "output", "method", "url", "endpoint", "query", "form", "json"),
        *("headers", "bearer", "timeout", "to", "when", "save", "delay", "errors"),
        *("interval", "backoff", "attempts", "max_delay", "jitter", "required"),
        *("default", "secret", "pattern", "prompt", "choices", "link", "equals"),
        *("all", "not", "reveal", "client_auth", "client_secret"),
        *("present", "one_of", "ok", "otp", "a", "b", "c", "http.5xx", "*"),
        *("bad name", "Bad-Name", "tranistions", "x.y", "2fa"),
    }
)
TEXTS = [
    *("ok", "a", "b", "c", "d", "otp", "tokens", "POST", "post", "GET", "none", "full"),
    *("success", "failure", "expired", "http.5xx", "transport.*", "*", "bad name"),
    *("Bad-Name", "sub-flow", "pkce", "os.system", "token_endpoint", "^[0-9]+$"),
    *("[0-9", "", "yes", "on", "1", "${inputs.otp}", "${data.tokens}", "${foo}"),
    *("${inputs.", "$${x}", "x ${inputs.otp}", "${ run.id }", "${response.body.0}"),
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=3),
    st.sampled_from([-0.5, 0.0, 0.5, 1.0, 2.5]),
    st.sampled_from(TEXTS),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=6,
)


#: Values worth trying under each key: valid ones and near misses.
PLAUSIBLE: dict[str, list[Any]] = {
    "mfaflow": [1, 1.0, 2, "1", True],
    "name": ["x", "x-y", "-x", "X", "9a"],
    "version": [1, 0, 2.0, 1.5],
    "inputs": [{}, {"otp": None}, {"bad name": None}, []],
    "data": [{}, {"tokens": None, "count": {}}, {"x": {"secret": "yes"}}],
    "outputs": [{"token": None}, {"token": {"secret": True, "extra": 1}}],
    "expires_in": [0, 1, "${inputs.scope}", "${inputs.scope} s", "x"],
    "on_expiry": ["c", "x y"],
    "initial": ["a", "Bad"],
    "states": [{}, {"z": {"final": True}}],
    "call": [{"url": "/x"}, {"endpoint": "token_endpoint", "url": "/x"}, {}],
    "action": ["pkce", "os.system", "bad name"],
    "input": [["otp"], ["otp", "otp"], ["scope"], {}, {"x": None}, "otp", ["new"]],
    "flow": ["sub", "Sub"],
    "final": [True, False, "true"],
    "with": [{"a": 1}, {"b-c": 1}],
    "on": [{"ok": "c"}, {"ok": []}, {"bad event": "c"}, {"ok": ["c", {"to": "c"}]}],
    "retry": [[{"errors": ["*"]}], [], [{}]],
    "catch": [[{"errors": ["*"], "to": "c"}], [{"errors": ["*"]}]],
    "outcome": ["success", "failure", "expired", "done"],
    "message": ["hi ${inputs.otp}", "${", 5],
    "output": [{"token": "${data.tokens}"}, {"bad key": 1}],
    "method": ["GET", "get", "FETCH"],
    "url": ["/x", "${inputs.otp}", "${bad}", 5],
    "endpoint": ["token_endpoint", "bad-name"],
    "form": [{}, {"a": "${inputs.otp}"}, {"client_secret": "${client.client_secret}"}],
    "json": [{"a": [1, "${data.tokens}"]}, "${x", [1], "${data.tokens}", "x ${run.id}"],
    "client_auth": [True, False, "true", None],
    "bearer": ["${data.tokens}", 5],
    "timeout": [0, 0.1, 10, "5"],
    "to": ["a", "c", "nowhere", "Bad name"],
    "when": [
        {"equals": [1, 2]},
        {"equals": [1]},
        {"equals": [1, 2, 3]},
        {"present": 1, "absent": 2},
        {"all": []},
        {"custom_guard": 5},
        {"not": {"present": 1}},
    ],
    "save": [{"tokens": "${response.body}"}, {"bad-key": 1}, []],
    "delay": [0, -1, "${data.count}", "${data.count}s", "soon"],
    "errors": [["*"], [], ["bad name"], "ok"],
    "interval": [0, 0.5, -1, "1"],
    "backoff": [1, 0.99, 2],
    "attempts": [0, 3, -1, 1.5, 2.0, True],
    "max_delay": [0, -0.1, 30],
    "jitter": ["none", "full", "some"],
    "required": [False, None],
    "default": ["${data.tokens}", "${nope}", [1]],
    "secret": [True, "yes", False],
    "reveal": [True, False, 1],
    "pattern": ["^a$", "[", 5],
    "prompt": ["Code", 5],
    "choices": [[1], [], "${data.tokens}", "x ${data.tokens}", "plain"],
    "link": [
        *("https://example.test/x", "otpauth://totp/x?secret=${inputs.otp}"),
        *("${data.tokens}", "https://${client.issuer_host}/", "Open ${data.tokens}"),
        *("example.test/x", "$${x}", "${", "${nope}", 5, ""),
    ],
}


def _value_for(key: str) -> st.SearchStrategy[Any]:
    if key in PLAUSIBLE:
        plausible = st.sampled_from(PLAUSIBLE[key])
        return st.one_of(plausible, plausible, plausible, VALUES)
    return VALUES


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every mapping and list inside ``node``."""
    found = []
    if isinstance(node, dict | list):
        found.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            found += _containers(child, (*path, key))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A flow document after zero to three random edits."""
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        path = draw(st.sampled_from(_containers(document)))
        target = _at(document, path)
        if isinstance(target, dict):
            present = [st.sampled_from(sorted(target))] if target else []
            key = draw(st.one_of(*present, st.sampled_from(KEYS)))
            if key in target and draw(st.booleans()):
                del target[key]
            else:
                target[key] = copy.deepcopy(draw(_value_for(key)))
        elif target:
            index = draw(st.integers(0, len(target) - 1))
            owner = next((key for key in reversed(path) if isinstance(key, str)), "")
            target[index] = copy.deepcopy(draw(_value_for(owner)))
    return document


_STATE_KEYS = ["call", "action", "input", "flow", "final", "with", "on", "retry"]
_STATE_KEYS += ["catch", "outcome", "message", "output", "description"]
_INPUT_KEYS = ["description", "required", "default", "secret", "pattern", "prompt"]
_INPUT_KEYS += ["choices", "link"]
_TRANSITION = ["to", "when", "save", "delay", "expires_in", "unknown"]

#: Places in BASE and the keys the format allows there (plus one it does not).
PLACES: list[tuple[tuple[Any, ...], list[str]]] = [
    ((), [*BASE, "summary", "description", "unknown"]),
    (("inputs", "otp"), [*_INPUT_KEYS, "unknown"]),
    (("inputs", "scope"), [*_INPUT_KEYS, "unknown"]),
    (("data", "tokens"), ["description", "secret", "unknown"]),
    (("outputs", "token"), ["description", "secret", "reveal", "unknown"]),
    *((("states", name), [*_STATE_KEYS, "unknown"]) for name in "abcdef"),
    (("states", "a", "call"), [*BASE["states"]["a"]["call"], "endpoint", "query"]),
    (("states", "a", "call"), ["json", "headers", "bearer", "unknown"]),
    (("states", "a", "call"), ["client_auth"]),
    (("states", "f", "call"), ["json", "form", "client_auth", "bearer"]),
    (("states", "f", "call", "json"), ["client_secret", "client_id"]),
    (("states", "a", "on", "ok"), _TRANSITION),
    (("states", "a", "on", "http.5xx", 1), _TRANSITION),
    (("states", "a", "retry", 0), [*PLAUSIBLE["retry"][0][0], "interval", "backoff"]),
    (("states", "a", "retry", 0), ["attempts", "max_delay", "jitter", "unknown"]),
    (("states", "a", "catch", 0), ["errors", "to", "save", "unknown"]),
]


def _single_edits() -> list[tuple[str, Any]]:
    """BASE with one key set to each of its plausible values, or removed."""
    edits = []
    for path, keys in PLACES:
        for key in keys:
            for value in [*PLAUSIBLE.get(key, [None, 1, "x"]), _REMOVE]:
                document = copy.deepcopy(BASE)
                parent: Any = _at(document, path[:-1]) if path else None
                target = _at(document, path)
                if target is None:  # an empty declaration becomes a mapping
                    target = parent[path[-1]] = {}
                if value is _REMOVE:
                    target.pop(key, None)
                else:
                    target[key] = copy.deepcopy(value)
                edits.append((f"{'.'.join(map(str, path))}.{key}={value!r}", document))
    return edits


_REMOVE = object()


def test_single_edits_are_judged_alike() -> None:
    """Each key at each place, set to valid and near-miss values, is judged alike."""
    disagreements = []
    edits = _single_edits()
    for label, document in edits:
        text = json.dumps(document)  # JSON is YAML too, and twice as quick to read
        expected = schema_accepts(document) and not _undeclared_listed_input(document)
        if loader_accepts(text) != expected:
            disagreements.append(f"{label}: schema says {expected}")

    assert len(edits) > 400
    assert disagreements == []


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _undeclared_listed_input(document: Any) -> bool:
    """Whether an input state lists a name the flow's inputs do not declare.

    The schema cannot say this; the loader refuses it (only when reading
    the states at all, that is, when the format version is right).
    """
    states = document.get("states")
    if document.get("mfaflow") != 1 or not isinstance(states, dict):
        return False
    inputs = document.get("inputs")
    declared = set(inputs) if isinstance(inputs, dict) else set()
    for state in states.values():
        listed = state.get("input") if isinstance(state, dict) else None
        if isinstance(listed, list) and any(
            isinstance(name, str) and name not in declared for name in listed
        ):
            return True
    return False


@settings(max_examples=200, deadline=None)
@given(documents())
def test_the_schema_and_the_loader_agree(document: Any) -> None:
    """On generated documents, the schema and the loader accept and refuse alike."""
    text = yaml.dump(document, Dumper=_NoAliases, sort_keys=False, allow_unicode=True)
    assert compose(text).plain() == document  # the YAML says what was generated

    expected = schema_accepts(document) and not _undeclared_listed_input(document)

    assert loader_accepts(text) == expected, "\n".join(
        [text, *(error.message for error in VALIDATOR.iter_errors(document))]
    )


@settings(max_examples=100, deadline=None)
@given(documents())
def test_structural_checks_never_crash(document: Any) -> None:
    """Whatever loads, check_flow answers with a list of definition errors."""
    text = yaml.dump(document, Dumper=_NoAliases, sort_keys=False)
    try:
        flow = parse_flow(text, "generated.yaml")
    except DefinitionErrors:
        return

    errors = check_flow(flow, actions=ACTIONS, guards=GUARDS, flows=FLOWS)

    assert all(isinstance(error, DefinitionError) for error in errors)
