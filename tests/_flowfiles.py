"""The flow files under tests/flowfiles/ and what each broken one expects.

``good/`` holds flows that load and pass every check. ``bad/yaml/`` holds
files whose YAML is refused, ``bad/schema/`` files that break rules the
JSON Schema also states, ``bad/loader/`` files the loader refuses for
reasons the schema cannot state, and ``bad/structure/`` files that load but
fail the structural checks. Each broken file starts with one line per
problem it must be reported with::

    # expect: LINE:COLUMN: the message, or its start
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mfaflow._catalog import Catalog
from mfaflow._errors import DefinitionError

FLOWFILES = Path(__file__).parent / "flowfiles"
SHIPPED = sorted((Path(__file__).parent.parent / "flows").glob("*.yaml"))
GOOD = sorted((FLOWFILES / "good").glob("*.yaml"))

#: The registered names the tests check flows against.
ACTIONS = frozenset({"pkce", "generate_state"})
GUARDS = frozenset(
    {
        "equals",
        "not_equals",
        "present",
        "absent",
        "matches",
        "one_of",
        "all",
        "any",
        "not",
    }
)
FLOWS = frozenset({"mfa-challenge"})
#: The definitions of the sub-flows the tests name: the good fixtures.
SUBFLOWS = Catalog([FLOWFILES / "good"], shipped=False).definition

_EXPECT = re.compile(r"# expect: (\d+):(\d+): (.*)")


def bad(kind: str) -> list[Path]:
    """The broken fixture files of one kind: yaml, schema, loader or structure."""
    return sorted((FLOWFILES / "bad" / kind).glob("*.yaml"))


def expected(path: Path) -> list[tuple[int, int, str]]:
    """The (line, column, message start) a broken fixture declares."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _EXPECT.fullmatch(line)
        if match:
            found.append((int(match[1]), int(match[2]), match[3]))
    assert found, f"{path.name} declares no expected errors"
    return found


def assert_reported(errors: Sequence[DefinitionError], path: Path) -> None:
    """Assert ``errors`` are exactly those ``path`` declares, in order."""
    want = expected(path)
    got = [(error.line, error.column, error.msg) for error in errors]
    assert [(line, column) for line, column, _ in got] == [
        (line, column) for line, column, _ in want
    ], "\n".join(map(str, errors))
    for (_, _, message), (_, _, start) in zip(got, want, strict=True):
        assert message.startswith(start), f"{message!r} does not start with {start!r}"
    assert all(error.file == path.name or error.file == str(path) for error in errors)
