"""Reading the YAML of flow files safely, keeping where each value was written.

PyYAML composes the text into a node graph; nothing is constructed by
PyYAML's constructors, so no tag can make it import or call anything. This
module walks that graph into :class:`Node` trees of plain values, each with
its :class:`~mfaflow._model.Location`, and refuses what a flow file has no
use for: tags other than YAML's plain ones, duplicate and merge keys,
recursive aliases, and aliases that expand past :data:`MAX_ALIAS_NODES`.

Scalars are resolved as by PyYAML's safe loader, except that only ``true``
and ``false`` (also ``True``, ``TRUE``, ``False``, ``FALSE``) are booleans,
so ``on``, ``off``, ``yes`` and ``no`` stay strings; timestamps,
non-finite numbers and YAML 1.1's octal and base-60 numbers (``012345``,
``1:30``) stay strings too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, cast

import yaml
from attrs import field, frozen

from ._errors import DefinitionError, DefinitionErrors
from ._model import Location

__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "Node", "compose"]

#: How many nodes aliases may add to a file in all, against "billion laughs".
MAX_ALIAS_NODES = 10_000
#: How deeply mappings and lists may nest.
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null")
)


@frozen
class Node:
    """One YAML value and where it was written.

    ``value`` is ``None``, a ``bool``, ``int``, ``float`` or ``str`` for a
    scalar, a ``tuple`` of nodes for a list, or a ``dict`` of nodes by key
    for a mapping; ``keys`` then says where each key was written.
    """

    value: Any
    location: Location
    keys: Mapping[str, Location] = field(factory=dict)
    #: A scalar's text as written in the file, quotes and all; empty when
    #: unknown (a value reached through an alias).
    raw: str = field(default="", repr=False)

    def locate(self, offset: int) -> Location:
        """Where the ``${`` at ``offset`` of a text value was written.

        The file's text and the value differ by quotes, escapes, folding and
        indentation, but each ``${`` of the value is a ``${`` of the file
        in the same order, unless escapes made or hid one. When they do not
        pair up, or ``offset`` is not at a ``${``, the value's own location
        stands in.
        """
        if not self.raw or not isinstance(self.value, str):
            return self.location
        written = _starts(self.raw)
        read = _starts(self.value)
        if len(written) != len(read) or offset not in read:
            return self.location
        at = written[read.index(offset)]
        start = self.location
        line_start = self.raw.rfind("\n", 0, at)
        if line_start < 0:
            return Location(start.file, start.line, start.column + at)
        line = start.line + self.raw.count("\n", 0, at)
        return Location(start.file, line, at - line_start)

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, tuple)

    def plain(self) -> Any:
        """The value as plain Python data (dicts, lists, scalars), as JSON has it."""
        if isinstance(self.value, dict):
            return {key: node.plain() for key, node in self.value.items()}
        if isinstance(self.value, tuple):
            return [node.plain() for node in self.value]
        return self.value


def _starts(text: str) -> list[int]:
    """The offsets of every ``${`` in ``text``."""
    found = []
    at = text.find("${")
    while at >= 0:
        found.append(at)
        at = text.find("${", at + 1)
    return found


class _Alias(yaml.Node):
    """Where an alias was used: the composer would hand back its target only."""

    def __init__(self, target: yaml.Node, event: yaml.AliasEvent) -> None:
        super().__init__("alias", None, cast(Any, event.start_mark), None)
        self.target = target
        self.anchor = str(event.anchor)


class _Loader(yaml.SafeLoader):
    """The safe loader with the flow format's scalar rules; only composes."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 (PyYAML's own design)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = super().compose_node(parent, index)
            assert target is not None  # an alias always names a node
            return _Alias(target, event)
        return super().compose_node(parent, index)


def _resolver(tag: str, pattern: str, first: str) -> None:
    # An empty first character stands for the empty scalar.
    starts = [*first, ""] if tag == "null" else list(first)
    _Loader.add_implicit_resolver(_TAG + tag, re.compile(pattern, re.X), starts)


_resolver("null", r"^(?:~|null|Null|NULL|)$", "~nN")
_resolver("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
# YAML 1.1's octal (012345, which would be 5349) and base-60 (1:30, which
# would be 90) forms are left out: such values stay text, as a code or a
# time of day written so should.
_resolver(
    "int",
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    "-+0123456789",
)
_resolver(
    "float",
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$""",
    "-+0123456789.",
)


def compose(text: str, file: str = "<string>") -> Node:
    """Read ``text`` into a :class:`Node` tree.

    Raises:
        DefinitionErrors: the text is not YAML, holds no document, or uses
            what flow files forbid; each error says where.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise DefinitionErrors([_syntax_error(exc, file)]) from None
    except yaml.reader.ReaderError as exc:
        raise DefinitionErrors([_reader_error(exc, text, file)]) from None
    except RecursionError:
        message = f"The file nests values too deeply; at most {MAX_DEPTH} levels."
        raise DefinitionErrors([DefinitionError(message, file, 1, 1)]) from None
    if root is None:
        message = "The file is empty; a flow file starts with 'mfaflow: 1'."
        raise DefinitionErrors([DefinitionError(message, file, 1, 1)])

    walker = _Walker(file, text)
    try:
        node = walker.walk(root)
    except _Abort as abort:
        raise DefinitionErrors([abort.error]) from None
    if walker.errors:
        raise DefinitionErrors(walker.errors)
    return node


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> DefinitionError:
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or "unreadable text").rstrip(".")
    if exc.context and "duplicate anchor" in exc.context:
        problem = exc.context.split(";")[0]  # PyYAML's problem is "second occurrence"
    elif exc.context:
        problem += f" ({exc.context.rstrip('.')}{_begun(exc)})"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return DefinitionError(
        f"The file is not valid YAML: {problem}.", file, line, column
    )


def _begun(exc: yaml.MarkedYAMLError) -> str:
    """Where what was being read began (an unclosed quote), if not at the problem."""
    begun, problem = exc.context_mark, exc.problem_mark
    if begun is None or (
        problem is not None
        and (begun.line, begun.column) == (problem.line, problem.column)
    ):
        return ""
    return f" that began at line {begun.line + 1}, column {begun.column + 1}"


def _reader_error(
    exc: yaml.reader.ReaderError, text: str, file: str
) -> DefinitionError:
    position = min(int(exc.position), len(text))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = exc.character
    code = ord(character) if isinstance(character, str) else int(character)
    message = f"The file is not valid YAML: the character U+{code:04X} is not allowed."
    return DefinitionError(message, file, line, column)


class _Abort(Exception):
    """Stops the walk at a problem past which nothing sensible can be read."""

    def __init__(self, error: DefinitionError) -> None:
        super().__init__(error.msg)
        self.error = error


class _Walker:
    """Turns a composed graph into nodes, expanding aliases within limits."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.errors: list[DefinitionError] = []
        self.expanded = 0
        self.alias: _Alias | None = None  # the outermost alias being expanded
        self.active: list[yaml.Node] = []  # the path from the root, for cycles

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def fail(self, node: yaml.Node, message: str) -> None:
        self.errors.append(self._error(node, message))

    def refuse_tag(self, node: yaml.Node, tag: str) -> None:
        shown = tag.replace(_TAG, "!!")
        message = (
            f"The tag {shown!r} is not allowed; flow files hold plain values only."
        )
        self.fail(node, message)

    def walk(self, node: yaml.Node) -> Node:
        if isinstance(node, _Alias):
            return self._expand(node)
        self._count(node)
        self.active.append(node)
        try:
            return self._convert(node)
        finally:
            self.active.pop()

    def _expand(self, alias: _Alias) -> Node:
        if any(node is alias.target for node in self.active):
            message = (
                f"The alias *{alias.anchor} refers to a value that contains it; "
                "recursive aliases are not allowed."
            )
            raise _Abort(self._error(alias, message))
        outer = self.alias
        self.alias = outer or alias
        try:
            node = self.walk(alias.target)
        finally:
            self.alias = outer
        return Node(node.value, self.location(alias), node.keys)

    def _count(self, node: yaml.Node) -> None:
        if len(self.active) >= MAX_DEPTH:
            message = f"The file nests values more than {MAX_DEPTH} levels deep."
            raise _Abort(self._error(node, message))
        if self.alias is None:
            return
        self.expanded += 1
        if self.expanded > MAX_ALIAS_NODES:
            message = (
                f"The file expands to more than {MAX_ALIAS_NODES} nodes through "
                f"aliases, here at *{self.alias.anchor}; aliases may repeat at most "
                f"{MAX_ALIAS_NODES} nodes in all."
            )
            raise _Abort(self._error(self.alias, message))

    def _error(self, node: yaml.Node, message: str) -> DefinitionError:
        location = self.location(node)
        return DefinitionError(message, self.file, location.line, location.column)

    def _convert(self, node: yaml.Node) -> Node:
        if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
            return Node(
                tuple(self.walk(item) for item in node.value), self.location(node)
            )
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            raw = self.text[node.start_mark.index : node.end_mark.index]
            return Node(self._scalar(node), self.location(node), raw=raw)
        self.refuse_tag(node, node.tag)
        return Node(None, self.location(node))

    def _mapping(self, node: yaml.MappingNode) -> Node:
        values: dict[str, Node] = {}
        keys: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            if key in keys:
                first = keys[key]
                self.fail(
                    key_node,
                    f"The key {key!r} is given twice; "
                    f"it was first given at line {first.line}, column {first.column}.",
                )
                continue
            keys[key] = self.location(key_node)
            values[key] = self.walk(value_node)
        return Node(values, self.location(node), keys)

    def _key(self, node: yaml.Node) -> str | None:
        target = node.target if isinstance(node, _Alias) else node
        if not isinstance(target, yaml.ScalarNode):
            self.fail(
                node, "A mapping key must be plain text, not a mapping or a list."
            )
            return None
        if target.tag not in _SCALAR_TAGS:
            self.refuse_tag(node, target.tag)
            return None
        if target.value == "<<" and target.style is None:
            self.fail(
                node,
                "Merge keys ('<<') are not supported; "
                "write the keys out, or alias a whole value.",
            )
            return None
        return str(target.value)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        text = str(node.value)
        kind = node.tag[len(_TAG) :]
        try:
            return _SCALARS[kind](text)
        except (ValueError, IndexError, OverflowError):
            self.fail(node, f"The value {text!r} is not a valid {kind}.")
            return None


def _null(text: str) -> None:
    if text not in ("", "~", "null", "Null", "NULL"):
        raise ValueError(text)


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def _int(text: str) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    if digits[:2] in ("0b", "0x"):
        return sign * int(digits[2:], 2 if digits[1] == "b" else 16)
    return sign * int(digits)


def _float(text: str) -> float:
    value = float(text.replace("_", ""))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_SCALARS: dict[str, Any] = {
    "str": str,
    "null": _null,
    "bool": _bool,
    "int": _int,
    "float": _float,
}
