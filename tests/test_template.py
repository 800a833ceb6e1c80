"""The template syntax: parsing `${...}` references and filling them in."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfaflow._template import ROOTS, Reference, Template, parse, render, resolve

CONTEXT: dict[str, Any] = {
    "inputs": {"username": "ada@example.test", "count": 3},
    "data": {
        "tokens": {"access_token": "at-1", "scopes": ["openid", "email"]},
        "empty": None,
        "factors": ({"id": "otp|1"}, {"id": "sms|2"}),
    },
    "response": {"status": 200, "body": {"list": [10, 20], "ok": True}},
}


def test_text_without_references_stays_text() -> None:
    """A string with no `${` comes back as the same string."""
    assert parse("openid profile") == "openid profile"


def test_a_reference_is_parsed_into_root_and_path() -> None:
    """`${response.body.list.0}` has root response and path body, list, 0."""
    template = parse("${response.body.list.0}")

    assert template == Template(
        "${response.body.list.0}",
        (Reference("response", ("body", "list", "0"), 0),),
    )


def test_text_and_references_alternate() -> None:
    """Literal text and references keep their order, with each reference's offset."""
    template = parse("Bearer ${data.tokens.access_token} for ${inputs.username}")

    assert isinstance(template, Template)
    assert template.parts == (
        "Bearer ",
        Reference("data", ("tokens", "access_token"), 7),
        " for ",
        Reference("inputs", ("username",), 39),
    )
    assert [str(ref) for ref in template.references] == [
        "${data.tokens.access_token}",
        "${inputs.username}",
    ]


def test_spaces_inside_a_reference_are_ignored() -> None:
    """`${ inputs.username }` is the same reference as without spaces."""
    template = parse("${ inputs.username }")

    assert isinstance(template, Template)
    assert template.references == (Reference("inputs", ("username",), 0),)


def test_a_doubled_dollar_writes_a_literal_reference() -> None:
    """`$${` writes `${`, and a string with only escapes is plain text."""
    assert parse("$${inputs.username}") == "${inputs.username}"
    template = parse("$${x} ${inputs.count}")
    assert isinstance(template, Template)
    assert template.parts[0] == "${x} "


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("${inputs.username", "unclosed reference at offset 0"),
        ("abc ${", "unclosed reference at offset 4"),
        ("${}", "malformed reference ${} at offset 0"),
        ("${inputs.}", "malformed reference ${inputs.} at offset 0"),
        ("${inputs.user name}", "malformed reference ${inputs.user name} at offset 0"),
        ("x ${inputs..a}", "malformed reference ${inputs..a} at offset 2"),
        (
            "${secrets.key}",
            "reference ${secrets.key} starts with unknown root 'secrets'",
        ),
    ],
)
def test_broken_references_are_refused(source: str, message: str) -> None:
    """Unclosed, empty, malformed and unknown-root references raise ValueError."""
    with pytest.raises(ValueError, match="^" + message.replace("$", r"\$")):
        parse(source)


def test_every_root_is_accepted() -> None:
    """Each documented root starts a reference."""
    for root in ROOTS:
        template = parse("${" + root + ".x}")
        assert isinstance(template, Template)
        assert template.references[0].root == root


def test_templates_are_equal_wherever_they_were_written() -> None:
    """The line and column of a template take no part in equality."""
    template = parse("${inputs.username}")
    assert isinstance(template, Template)

    moved = Template(template.source, template.parts, line=4, column=9)

    assert moved == template
    assert (moved.line, moved.column) == (4, 9)
    assert str(moved) == "${inputs.username}"


def test_exactly_one_reference_gives_the_value_itself() -> None:
    """A whole-string reference keeps the value's type: mapping, list, number."""
    assert render(parse("${data.tokens}"), CONTEXT) == CONTEXT["data"]["tokens"]
    assert render(parse("${response.status}"), CONTEXT) == 200
    assert render(parse("${ data.tokens.scopes }"), CONTEXT) == ["openid", "email"]


def test_other_strings_give_text() -> None:
    """References inside text are written as text."""
    rendered = render(parse("${inputs.username} has ${inputs.count} codes"), CONTEXT)

    assert rendered == "ada@example.test has 3 codes"


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("[${data.empty}]", "[]"),
        ("[${response.body.ok}]", "[true]"),
        ("[${data.tokens.scopes}]", "[openid email]"),
        ("[${response.body}]", '[{"list":[10,20],"ok":true}]'),
        ("[${data.missing.deeper}]", "[]"),
    ],
)
def test_values_in_text(source: str, text: str) -> None:
    """In text null is empty, booleans true/false, lists joined, mappings JSON."""
    assert render(parse(source), CONTEXT) == text


def test_read_only_mappings_render_as_json_text() -> None:
    """A read-only mapping, as the model holds, is written as JSON too."""
    context = {"data": {"m": MappingProxyType({"a": MappingProxyType({"b": None})})}}

    assert render(parse("m=${data.m}"), context) == 'm={"a":{"b":null}}'


def test_lists_of_nulls_render_without_none() -> None:
    """A null inside a list renders as nothing, never as Python's None."""
    context = {"data": {"values": ["a", None, "b"]}}

    assert render(parse("${data.values} !"), context) == "a  b !"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("tokens", "access_token"), "at-1"),
        (("factors", "1", "id"), "sms|2"),
        (("factors", "2", "id"), None),
        (("tokens", "scopes", "x"), None),
        (("tokens", "access_token", "0"), None),
        (("missing",), None),
        (("factors", "²"), None),
    ],
)
def test_resolve_follows_keys_and_indexes(path: tuple[str, ...], value: Any) -> None:
    """Paths go through mappings by key and lists by index; anything missing is None."""
    assert resolve(Reference("data", path), CONTEXT) == value


def test_a_missing_root_resolves_to_none() -> None:
    """A root absent from the context resolves to None."""
    assert resolve(Reference("client", ("client_id",)), CONTEXT) is None


def test_render_fills_nested_values() -> None:
    """Templates inside mappings and lists are filled; other values pass through."""
    value = {
        "form": {"user": parse("${inputs.username}"), "n": 1},
        "list": (parse("${inputs.count}"), None),
    }

    assert render(value, CONTEXT) == {
        "form": {"user": "ada@example.test", "n": 1},
        "list": [3, None],
    }


TEXT = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=20)
SEGMENTS = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True),
    st.from_regex(r"[0-9]{1,3}", fullmatch=True),
)
REFERENCES = st.builds(
    lambda root, path: Reference(root, tuple(path)),
    st.sampled_from(sorted(ROOTS)),
    st.lists(SEGMENTS, max_size=3),
)


@given(st.text(max_size=60))
def test_parse_refuses_only_with_value_error(source: str) -> None:
    """Any text parses, or is refused with ValueError and nothing else."""
    try:
        parsed = parse(source)
    except ValueError:
        return
    assert isinstance(parsed, str | Template)


@given(st.text(max_size=60))
def test_escaping_every_reference_gives_the_text_back(text: str) -> None:
    """Writing every `${` as `$${` makes any text come back unchanged, as text."""
    assert parse(text.replace("${", "$${")) == text


@given(st.lists(st.one_of(TEXT, REFERENCES), min_size=1, max_size=5))
def test_parse_finds_the_references_written(parts: list[str | Reference]) -> None:
    """Text joined from literals and references parses back to those references."""
    source = "".join(part if isinstance(part, str) else str(part) for part in parts)
    written = [part for part in parts if isinstance(part, Reference)]

    parsed = parse(source)

    if not written:
        assert parsed == source
        return
    assert isinstance(parsed, Template)
    assert [(ref.root, ref.path) for ref in parsed.references] == [
        (ref.root, ref.path) for ref in written
    ]
    assert str(parsed) == source
