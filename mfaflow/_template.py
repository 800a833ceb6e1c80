"""The template syntax of flow files: ``${root.path.to.value}``.

A template is text with references in ``${...}``. A reference is a dotted
path: a root (``inputs``, ``data``, ``client``, ``response``, ``result``,
``output``, ``error``, ``run``) followed by keys or list indexes. Nothing is
evaluated as code: a reference can only look values up.

A string that is exactly one reference yields the referenced value itself
(a dict stays a dict, a number stays a number); any other string yields
text, with ``None`` rendered as the empty string. ``$${`` writes a literal
``${``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

__all__ = [
    "ROOTS",
    "Reference",
    "Template",
    "TemplateError",
    "parse",
    "render",
    "resolve",
]

#: The names a reference may start with.
ROOTS = frozenset(
    {"inputs", "data", "client", "response", "result", "output", "error", "run"}
)

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|[0-9]+")


class TemplateError(ValueError):
    """A template cannot be parsed; ``offset`` is where, in its source."""

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(msg)
        self.offset = offset


@frozen
class Reference:
    """One ``${...}`` reference: its root and the keys below it.

    ``line`` and ``column`` (from 1; 0 when unknown) say where the reference
    itself was written in its flow file; they take no part in equality.
    """

    root: str
    path: tuple[str, ...]
    #: Offset of the ``$`` in the template's source.
    offset: int = 0
    line: int = field(default=0, eq=False)
    column: int = field(default=0, eq=False)

    def __str__(self) -> str:
        return "${" + ".".join((self.root, *self.path)) + "}"


@frozen
class Template:
    """A parsed template: literal text and references, in order.

    ``line`` and ``column`` (from 1; 0 when unknown) say where the string
    starts in its flow file, for messages; they take no part in equality.
    """

    source: str
    parts: tuple[str | Reference, ...]
    line: int = field(default=0, eq=False)
    column: int = field(default=0, eq=False)

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(part for part in self.parts if isinstance(part, Reference))

    def __str__(self) -> str:
        return self.source


def parse(source: str) -> str | Template:
    """Parse ``source``; plain text without references comes back unchanged.

    Raises:
        TemplateError: a reference is empty, malformed, unclosed or starts
            with an unknown root; its ``offset`` says where.
    """
    if "${" not in source:
        return source

    parts: list[str | Reference] = []
    literal = ""
    position = 0
    for match in _REFERENCE.finditer(source):
        literal += _checked_gap(source, position, match.start())
        position = match.end()
        if match.group(0) == "$${":
            literal += "${"
            continue
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(_parse_reference(match.group(1), match.start()))
    literal += _checked_gap(source, position, len(source))
    if literal:
        parts.append(literal)
    if not any(isinstance(part, Reference) for part in parts):
        return "".join(str(part) for part in parts)
    return Template(source, tuple(parts))


def _checked_gap(source: str, start: int, end: int) -> str:
    gap = source[start:end]
    if "${" in gap:
        offset = start + gap.index("${")
        raise TemplateError(f"unclosed reference at offset {offset}", offset)
    return gap


def _parse_reference(body: str, offset: int) -> Reference:
    segments = body.strip().split(".")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise TemplateError(
            f"malformed reference ${{{body}}} at offset {offset}", offset
        )
    root, *path = segments
    if root not in ROOTS:
        allowed = ", ".join(sorted(ROOTS))
        raise TemplateError(
            f"reference ${{{body}}} starts with unknown root {root!r} "
            f"(allowed: {allowed})",
            offset,
        )
    return Reference(root, tuple(path), offset)


def resolve(reference: Reference, context: Mapping[str, Any]) -> Any:
    """Look ``reference`` up in ``context``; a missing key yields ``None``."""
    value: Any = context.get(reference.root)
    for key in reference.path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            index = int(key) if key.isascii() and key.isdigit() else None
            value = value[index] if index is not None and index < len(value) else None
        else:
            return None
    return value


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Fill every template inside ``value`` (nested mappings and lists too)."""
    if isinstance(value, Template):
        return _render_template(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def _render_template(template: Template, context: Mapping[str, Any]) -> Any:
    if len(template.parts) == 1 and isinstance(template.parts[0], Reference):
        return resolve(template.parts[0], context)

    text = []
    for part in template.parts:
        if isinstance(part, Reference):
            found = resolve(part, context)
            text.append("" if found is None else _as_text(found))
        else:
            text.append(part)
    return "".join(text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return " ".join(_as_text(item) for item in value)
    if isinstance(value, Mapping):
        # JSON, not Python's repr: the text usually ends up in a request.
        return json.dumps(dict(value), separators=(",", ":"), default=_jsonable)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)
