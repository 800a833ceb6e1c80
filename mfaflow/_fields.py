"""Typed reading of YAML nodes, collecting every problem instead of stopping.

:class:`FieldReader` checks one node at a time (a mapping's keys, a name, a
number in range, a template) and records a :class:`DefinitionError` at the
node's position for each problem. A check that fails returns a harmless
stand-in value so reading can go on and find the next problem; the caller
raises once at the end if anything was recorded.

``where`` arguments name the element for messages, in lower case, such as
``"'interval' of retry rule 1 of state 'poll'"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TypeVar

import attrs

from . import _template
from ._errors import DefinitionError
from ._model import Location, Value
from ._template import Reference, Template, TemplateError
from ._yaml import Node

__all__ = [
    "MAX_BACKOFF",
    "MAX_SECONDS",
    "NAME_RULES",
    "FieldReader",
    "is_one_reference",
]

#: The most seconds a flow may give any timeout, wait, delay or lifetime:
#: ten years, far past any login, and far from what overflows a date.
MAX_SECONDS = 315_360_000
#: The largest factor a retry's wait may grow by from one try to the next.
MAX_BACKOFF = 100

T = TypeVar("T")

#: The kinds of names, each with its pattern (matched whole) and its rule.
NAME_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "name": (
        re.compile(r"[A-Za-z_][A-Za-z0-9_]*"),
        "letters, digits and '_', not starting with a digit",
    ),
    "flow": (
        re.compile(r"[a-z0-9][a-z0-9-]*"),
        "lower-case letters, digits and '-', not starting with '-'",
    ),
    "registered": (
        re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*"),
        "letters, digits, '_', '.' and '-', starting with a letter or '_'",
    ),
    "event": (
        re.compile(r"\*|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*(?:\.\*)?"),
        "an event name or pattern such as ok, http.404, http.5xx, transport.* or *",
    ),
}


def sentence(text: str) -> str:
    """``text`` with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def show(node: Node) -> str:
    """A short description of a node's value for messages."""
    value = node.value
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, tuple):
        return "a list" if value else "an empty list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


class FieldReader:
    """Reads nodes of one file, recording problems in :attr:`errors`."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[DefinitionError] = []

    def fail(self, at: Node | Location, message: str) -> None:
        """Record a problem at a node or location."""
        location = at.location if isinstance(at, Node) else at
        self.errors.append(
            DefinitionError(message, self.file, location.line, location.column)
        )

    def wrong(self, node: Node, where: str, expected: str) -> None:
        """Record that ``node`` is not what ``where`` takes."""
        self.fail(node, f"{sentence(where)} must be {expected}, got {show(node)}.")

    def optional(
        self,
        entries: dict[str, Node],
        key: str,
        where: str,
        read: Callable[[Node, str], T],
        default: T,
    ) -> T:
        """Read ``entries[key]`` with ``read``, or give ``default`` if absent."""
        return self.part(entries, key, f"{key!r} of {where}", read, default)

    def part(
        self,
        entries: dict[str, Node],
        key: str,
        where: str,
        read: Callable[[Node, str], T],
        default: T,
    ) -> T:
        """Like :meth:`optional`, but ``read`` gets ``where`` as it is."""
        node = entries.get(key)
        return default if node is None else read(node, where)

    # Shapes.

    def fields(
        self,
        node: Node,
        where: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        *,
        nullable: bool = False,
    ) -> dict[str, Node]:
        """The entries of a mapping whose keys are among ``allowed``."""
        if nullable and node.value is None:
            return {}
        if not node.is_mapping:
            self.wrong(node, where, "a mapping")
            return {}

        entries: dict[str, Node] = {}
        for key, child in node.value.items():
            if key in allowed:
                entries[key] = child
            else:
                listed = ", ".join(allowed)
                self.fail(
                    node.keys[key],
                    f"Unknown key {key!r} in {where}; allowed: {listed}.",
                )
        for key in required:
            if key not in node.value:
                self.fail(node, f"{sentence(where)} lacks the required key {key!r}.")
        return entries

    def entries(self, node: Node, where: str) -> Iterator[tuple[str, Node, Location]]:
        """Each key of a mapping with its value and the key's location."""
        if not node.is_mapping:
            self.wrong(node, where, "a mapping")
            return
        for key, child in node.value.items():
            yield key, child, node.keys[key]

    def items(self, node: Node, where: str) -> tuple[Node, ...]:
        """The items of a list that is not empty."""
        if not node.is_list:
            self.wrong(node, where, "a list")
            return ()
        if not node.value:
            self.wrong(node, where, "a list that is not empty")
        return tuple(node.value)

    # Scalars.

    def text(self, node: Node, where: str) -> str:
        if isinstance(node.value, str):
            return node.value
        self.wrong(node, where, "text")
        return ""

    def flag(self, node: Node, where: str) -> bool:
        if isinstance(node.value, bool):
            return node.value
        self.wrong(node, where, "true or false")
        return False

    def integer(self, node: Node, where: str, minimum: int) -> int:
        value = node.value
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: 3.0 is the integer 3
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        self.wrong(node, where, f"an integer of at least {minimum}")
        return minimum

    def number(
        self,
        node: Node,
        where: str,
        minimum: float,
        *,
        exclusive: bool = False,
        maximum: float | None = None,
    ) -> float:
        """A number above ``minimum`` (or equal, unless ``exclusive``).

        ``maximum``, when given, bounds it from above too, with
        :data:`MAX_SECONDS` named in words: a number of seconds that large
        would only overflow a date or a timer later, with no clear message.
        """
        value = node.value
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        above = is_number and (value > minimum or (value == minimum and not exclusive))
        if above and (maximum is None or value <= maximum):
            return float(value)
        bound = "greater than" if exclusive else "of at least"
        expected = f"a number {bound} {_number(minimum)}"
        if maximum is not None:
            words = " (ten years)" if maximum == MAX_SECONDS else ""
            expected += f" and at most {_number(maximum)}{words}"
        self.wrong(node, where, expected)
        return max(minimum, 1.0)

    def choice(self, node: Node, where: str, choices: tuple[str, ...]) -> str:
        if node.value in choices and isinstance(node.value, str):
            return node.value
        self.wrong(node, where, "one of " + ", ".join(choices))
        return choices[0]

    def regex(self, node: Node, where: str) -> str:
        pattern = self.text(node, where)
        try:
            re.compile(pattern)
        except re.error as exc:
            self.fail(
                node,
                f"{sentence(where)} is not a valid regular expression: "
                f"{exc.msg} at position {exc.pos}.",
            )
        return pattern

    # Names.

    def name(self, node: Node, where: str, kind: str = "name") -> str:
        """A name of ``kind`` (a key of :data:`NAME_RULES`) given as a value."""
        if not isinstance(node.value, str):
            self.wrong(node, where, "a name")
            return ""
        self.check_name(node.value, node.location, where, kind)
        return node.value

    def check_name(self, name: str, at: Location, where: str, kind: str) -> None:
        """Record a problem if ``name`` breaks the rule of ``kind``."""
        pattern, rule = NAME_RULES[kind]
        if not pattern.fullmatch(name):
            self.fail(at, f"Invalid name {name!r} for {where}; use {rule}.")

    # Values that may hold templates.

    def value(self, node: Node, where: str) -> Value:
        """Any value, with templates parsed and containers made read-only."""
        if isinstance(node.value, dict):
            return MappingProxyType(
                {key: self.value(child, where) for key, child in node.value.items()}
            )
        if isinstance(node.value, tuple):
            return tuple(self.value(child, where) for child in node.value)
        if isinstance(node.value, str) and "${" in node.value:
            return self.template(node, where)
        return node.value

    def template(self, node: Node, where: str) -> Value:
        """A string parsed as a template (plain text comes back as ``str``).

        The template and each of its references know where they were
        written, for the messages of later checks.
        """
        try:
            parsed = _template.parse(node.value)
        except TemplateError as exc:
            self.fail(node.locate(exc.offset), f"Invalid template in {where}: {exc}.")
            return node.value
        if not isinstance(parsed, Template):
            return parsed
        parts = tuple(
            _placed(part, node.locate(part.offset))
            if isinstance(part, Reference)
            else part
            for part in parsed.parts
        )
        line, column = node.location.line, node.location.column
        return attrs.evolve(parsed, parts=parts, line=line, column=column)

    def text_value(self, node: Node, where: str) -> Value:
        """Text that may hold references."""
        if not isinstance(node.value, str):
            self.wrong(node, where, "text")
            return ""
        return self.value(node, where)

    def values(
        self, node: Node, where: str, *, names: bool = False
    ) -> Mapping[str, Value]:
        """A read-only mapping of values by key; with ``names``, keys are names."""
        result: dict[str, Value] = {}
        for key, child, at in self.entries(node, where):
            if names:
                self.check_name(key, at, f"a key of {where}", "name")
            result[key] = self.value(child, f"{key!r} of {where}")
        return MappingProxyType(result)

    def reference(self, node: Node, where: str, expected: str) -> Value:
        """A string that is exactly one reference, such as ``${inputs.ttl}``."""
        if isinstance(node.value, str) and "${" in node.value:
            reported = len(self.errors)
            parsed = self.template(node, where)
            if len(self.errors) > reported:
                return None  # a broken template, already reported
            if isinstance(parsed, Template) and is_one_reference(parsed):
                return parsed
        self.wrong(node, where, expected)
        return None

    def seconds(self, node: Node, where: str, *, exclusive: bool) -> Value:
        """A number of seconds, or one reference giving it."""
        if isinstance(node.value, str):
            expected = "a number of seconds or one reference such as '${inputs.ttl}'"
            return self.reference(node, where, expected)
        return self.number(node, where, 0, exclusive=exclusive, maximum=MAX_SECONDS)


def _placed(reference: Reference, at: Location) -> Reference:
    return attrs.evolve(reference, line=at.line, column=at.column)


def is_one_reference(template: Template) -> bool:
    """Whether ``template`` is exactly one reference, which gives a value itself."""
    return len(template.parts) == 1 and isinstance(template.parts[0], Reference)


def _number(value: float) -> str:
    # 0, not 0.0, in messages; int.is_integer() is newer than Python 3.11.
    return str(int(value)) if float(value).is_integer() else str(value)
