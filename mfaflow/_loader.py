"""Flow files to the definition model.

:func:`parse_flow` reads YAML text into a :class:`~mfaflow._model.Flow`,
checking everything the JSON Schema (``flow.schema.json``) checks, and
reporting every problem it finds at once. :func:`load_flow` reads a file
and, given the registered names, also runs the structural checks of
:func:`mfaflow._validate.check_flow`. ``docs/flow-format.md`` describes the
format.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Container, Mapping
from pathlib import Path
from typing import TypeVar

from ._errors import DefinitionError, DefinitionErrors
from ._model import DataSpec, Flow, InputSpec, Location, OutputSpec, State
from ._states import StateReader
from ._validate import check_flow
from ._yaml import Node, compose

__all__ = ["FORMAT_VERSION", "MAX_FILE_SIZE", "load_flow", "parse_flow"]

logger = logging.getLogger(__name__)

#: The version of the file format this module reads (the ``mfaflow:`` key).
FORMAT_VERSION = 1
#: The largest flow file :func:`load_flow` reads, in bytes.
MAX_FILE_SIZE = 1 << 20

_FLOW_KEYS = (
    *("mfaflow", "name", "version", "summary", "description", "inputs", "data"),
    *("outputs", "expires_in", "on_expiry", "initial", "states"),
)
_FLOW_REQUIRED = ("mfaflow", "name", "initial", "states")
_SPEC_KEYS = ("description", "secret")
_OUTPUT_KEYS = (*_SPEC_KEYS, "reveal")


def parse_flow(text: str, file: str = "<string>") -> Flow:
    """Read a flow from YAML ``text``; ``file`` names it in messages.

    Raises:
        DefinitionErrors: every problem found, in the order of the file.
    """
    reader = _FlowReader(file)
    flow = reader.flow(compose(text, file))
    if reader.errors:
        raise DefinitionErrors(sorted(reader.errors, key=_position))
    logger.debug("Read flow %r from %s", flow.name, file)
    return flow


def load_flow(
    path: str | os.PathLike[str],
    *,
    actions: Container[str] | None = None,
    guards: Container[str] | None = None,
    flows: Container[str] | None = None,
    subflows: Callable[[str], Flow | None] | None = None,
) -> Flow:
    """Read the flow file at ``path``.

    When any of ``actions``, ``guards`` or ``flows`` (the names that exist)
    is given, the structural checks of :func:`~mfaflow._validate.check_flow`
    run too; names of a kind not given are not checked. ``subflows`` gives
    the definitions of sub-flows by name, to check what they are given.

    Raises:
        DefinitionErrors: the file cannot be read, is larger than
            :data:`MAX_FILE_SIZE`, is not UTF-8, or is broken.
    """
    file = os.fspath(path)
    flow = parse_flow(_read(Path(file)), file)
    if actions is None and guards is None and flows is None:
        return flow

    errors = check_flow(
        flow, actions=actions, guards=guards, flows=flows, subflows=subflows
    )
    if errors:
        raise DefinitionErrors(errors)
    return flow


def _read(path: Path) -> str:
    file = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        message = f"Cannot read the flow file: {exc.strerror or exc}."
        raise DefinitionErrors([DefinitionError(message, file, 1, 1)]) from exc
    if len(data) > MAX_FILE_SIZE:
        message = (
            f"The flow file is larger than 1 MiB ({MAX_FILE_SIZE} bytes); "
            "flow files must be smaller."
        )
        raise DefinitionErrors([DefinitionError(message, file, 1, 1)])

    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DefinitionErrors([_decode_error(data, exc, file)]) from None


def _decode_error(data: bytes, exc: UnicodeDecodeError, file: str) -> DefinitionError:
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    column = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
    message = (
        f"The flow file is not UTF-8 text: the byte 0x{data[exc.start]:02X} "
        "cannot be read."
    )
    return DefinitionError(message, file, line, column)


def _position(error: DefinitionError) -> tuple[int, int]:
    return (error.line, error.column)


T = TypeVar("T")


class _FlowReader(StateReader):
    """Builds a :class:`Flow` from the node tree of a file."""

    def flow(self, root: Node) -> Flow:
        entries = self.fields(root, "the flow", _FLOW_KEYS, _FLOW_REQUIRED)
        if not self.version_ok(entries.get("mfaflow")):
            return Flow(name="", initial="", states={})

        where = "the flow"
        inputs = self.declared(entries, "inputs", "an input", self.input_spec)
        return Flow(
            name=self.optional(entries, "name", where, self.flow_name, ""),
            version=self.optional(entries, "version", where, self.positive, 1),
            summary=self.optional(entries, "summary", where, self.text, ""),
            description=self.optional(entries, "description", where, self.text, ""),
            inputs=inputs,
            data=self.declared(entries, "data", "data", self.data_spec),
            outputs=self.declared(entries, "outputs", "an output", self.output_spec),
            expires_in=self.optional(entries, "expires_in", where, self.lifetime, None),
            on_expiry=self.optional(entries, "on_expiry", where, self.name, None),
            initial=self.optional(entries, "initial", where, self.name, ""),
            states=self.states(entries.get("states"), inputs),
            location=root.location,
            locations={key: node.location for key, node in entries.items()},
        )

    def version_ok(self, node: Node | None) -> bool:
        # A missing key is reported as such; another version may mean
        # another format, so nothing else in the file is worth reporting.
        if node is None:
            return True
        value = node.value
        if value == FORMAT_VERSION and not isinstance(value, bool | str):
            return True
        expected = f"{FORMAT_VERSION}, the format version this mfaflow reads"
        self.wrong(node, "'mfaflow'", expected)
        return False

    def declared(
        self,
        entries: dict[str, Node],
        key: str,
        noun: str,
        build: Callable[[str, Node, Location], T],
    ) -> dict[str, T]:
        """The inputs, data or outputs under ``key``, built by name."""
        node = entries.get(key)
        if node is None:
            return {}
        where = f"{key!r} of the flow"
        return {
            name: build(name, child, at)
            for name, child, at in self.named(node, where, noun)
        }

    def data_spec(self, name: str, node: Node, at: Location) -> DataSpec:
        where = f"data {name!r}"
        entries = self.fields(node, where, _SPEC_KEYS, nullable=True)
        description = self.optional(entries, "description", where, self.text, "")
        secret = self.optional(entries, "secret", where, self.flag, False)
        return DataSpec(name, description, secret, at)

    def output_spec(self, name: str, node: Node, at: Location) -> OutputSpec:
        where = f"output {name!r}"
        entries = self.fields(node, where, _OUTPUT_KEYS, nullable=True)
        description = self.optional(entries, "description", where, self.text, "")
        reveal = self.optional(entries, "reveal", where, self.flag, False)
        secret = self.optional(entries, "secret", where, self.flag, reveal)
        if reveal and not secret:
            message = (
                f"Output {name!r} has 'reveal: true' and 'secret: false'; "
                "a revealed output is a secret (leave 'secret' out)."
            )
            self.fail(entries["secret"], message)
        return OutputSpec(name, description, secret or reveal, at, reveal)

    def states(
        self, node: Node | None, inputs: Mapping[str, InputSpec]
    ) -> dict[str, State]:
        if node is None:
            return {}
        where = "'states' of the flow"
        if node.is_mapping and not node.value:
            self.wrong(node, where, "a mapping with at least one state")
        return {
            name: self.state(name, child, at, inputs)
            for name, child, at in self.named(node, where, "a state")
        }
