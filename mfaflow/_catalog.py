"""Where flow definitions are found: the shipped flows and the user's own.

A flow is found by name: the file ``<name>.yaml`` (or ``.yml``) in one of
the catalogue's folders, the user's folders first, then the flows shipped
with the package. A flow's file name and its ``name:`` must agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import DefinitionError

if TYPE_CHECKING:
    from ._model import Flow

__all__ = ["Catalog", "shipped_flows_dir"]

_SUFFIXES = (".yaml", ".yml")


def shipped_flows_dir() -> Path:
    """The folder of the flows shipped with mfaflow.

    An installed wheel carries them inside the package; a source checkout
    (an editable install) keeps them at the top of the repository.
    """
    installed = Path(str(resources.files("mfaflow"))) / "_shipped_flows"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "flows"


class Catalog:
    """Flow files by name, from ``paths`` (folders or files) and the shipped flows."""

    def __init__(
        self, paths: Iterable[str | Path] = (), *, shipped: bool = True
    ) -> None:
        self._paths = [Path(path) for path in paths]
        if shipped:
            self._paths.append(shipped_flows_dir())

    def files(self) -> dict[str, Path]:
        """Every flow name the catalogue knows, with its file; earlier paths win."""
        found: dict[str, Path] = {}
        for path in self._paths:
            for file in _flow_files(path):
                found.setdefault(file.stem, file)
        return found

    def names(self) -> frozenset[str]:
        return frozenset(self.files())

    def find(self, name: str) -> Path:
        """The file of the flow ``name``.

        Raises:
            DefinitionError: no folder of the catalogue holds that flow.
        """
        try:
            return self.files()[name]
        except KeyError:
            known = ", ".join(sorted(self.files())) or "none"
            raise DefinitionError(
                f"No flow is named {name!r}; known flows: {known}."
            ) from None

    def definition(self, name: str) -> Flow | None:
        """The flow ``name`` as read, without structural checks; ``None``
        when no file has that name or its file is broken.

        For checking what other flows give it, such as its inputs.
        """
        from ._loader import load_flow

        path = self.files().get(name)
        if path is None:
            return None
        try:
            return load_flow(path)
        except DefinitionError:
            return None


def _flow_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(file for file in path.iterdir() if file.suffix in _SUFFIXES)
