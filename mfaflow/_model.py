"""The immutable model of a flow definition.

The loader turns YAML into these classes; the engine, the diagrams and the
CLI read only these classes, never YAML. Values that come from the file
(``Value``) are JSON-like: ``None``, ``bool``, ``int``, ``float``, ``str``,
:class:`~mfaflow._template.Template`, tuples of values and read-only
mappings of ``str`` to values.

See ``docs/flow-format.md`` for the file format these classes model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs
from attrs import field, frozen

from ._template import Template

__all__ = [
    "Call",
    "CatchRule",
    "Condition",
    "DataSpec",
    "Flow",
    "InputSpec",
    "Location",
    "OutputSpec",
    "RetryRule",
    "State",
    "StateKind",
    "Transition",
    "Value",
    "event_matches",
    "leaves",
]

Value: TypeAlias = Any
StateKind = Literal["call", "action", "input", "flow", "pass", "final"]
Outcome = Literal["success", "failure", "expired"]


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@frozen
class Location:
    """Where something was written: file, line and column, from 1."""

    file: str = "<string>"
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


_NOWHERE = Location()


@frozen
class InputSpec:
    """A named input: given at start, or asked for by an ``input`` state.

    ``required`` is false when a default is given. ``pattern`` is a regular
    expression the whole value must match. ``prompt`` (text, possibly a
    template) is what a person is asked. ``choices`` (a value, possibly a
    template) lists the values a person may pick from. ``link`` (a URL,
    possibly a template) is one the person should open (``https://...``) or
    scan into an authenticator app (``otpauth://...``) before answering.
    """

    name: str
    description: str = ""
    required: bool = True
    default: Value = None
    secret: bool = False
    pattern: str | None = None
    prompt: Value = None
    choices: Value = None
    link: Value = None
    location: Location = _NOWHERE


@frozen
class DataSpec:
    """A named piece of data a run saves from answers, declared up front."""

    name: str
    description: str = ""
    secret: bool = False
    location: Location = _NOWHERE


@frozen
class OutputSpec:
    """A named output a final state may give.

    ``reveal`` marks a secret the person must see once, such as a recovery
    code: callers show it in clear, then have the stored run forget it
    (:meth:`~mfaflow.Engine.forget_revealed`). A revealed output is secret.
    """

    name: str
    description: str = ""
    secret: bool = False
    location: Location = _NOWHERE
    reveal: bool = False


@frozen
class Call:
    """An HTTP step.

    Exactly one of ``url`` (a path relative to the issuer, or a full URL;
    may be a template) and ``endpoint`` (a name from the issuer's OpenID
    Connect discovery document, such as ``token_endpoint``) is set. At most
    one of ``form`` and ``json`` is set. ``bearer`` fills an
    ``Authorization: Bearer`` header. ``client_auth`` authenticates the
    call as the client, the way :class:`~mfaflow.Client` says (it needs a
    body: ``form``, or a ``json`` object). ``timeout`` overrides the
    transport's read timeout, in seconds.
    """

    method: str
    url: Value = None
    endpoint: str | None = None
    query: Mapping[str, Value] = field(factory=dict, converter=_frozen_mapping)
    form: Mapping[str, Value] | None = None
    json: Value = None
    headers: Mapping[str, Value] = field(factory=dict, converter=_frozen_mapping)
    bearer: Value = None
    client_auth: bool = False
    timeout: float | None = None
    location: Location = _NOWHERE


@frozen
class Condition:
    """A guard on a transition: a registered guard name and its arguments.

    Built-in guards: ``equals``, ``not_equals``, ``present``, ``absent``,
    ``matches``, ``one_of``; and ``all``, ``any``, ``not`` whose arguments
    are nested conditions (a tuple of :class:`Condition`, or one for ``not``).
    """

    guard: str
    args: Value = None
    location: Location = _NOWHERE


@frozen
class Transition:
    """One way out of a state on an event.

    ``event`` is the ``on`` key it was written under: an event name or a
    pattern (``http.5xx``, ``transport.*``, ``*``). ``save`` maps data names
    to values filled in from the event. ``delay`` (seconds) makes the run
    wait before entering ``target``. ``expires_in`` (seconds) sets the run's
    expiry from now.
    """

    event: str
    target: str
    when: Condition | None = None
    save: Mapping[str, Value] = field(factory=dict, converter=_frozen_mapping)
    delay: Value = None
    expires_in: Value = None
    location: Location = _NOWHERE


@frozen
class RetryRule:
    """Retry a state on matching events, in the manner of Amazon States Language.

    The n-th retry (from 1) waits ``min(interval * backoff ** (n - 1),
    max_delay)`` seconds; with ``jitter == "full"`` a random share of that.
    After ``attempts`` retries the event is handled as if no rule matched.
    """

    errors: tuple[str, ...]
    interval: float = 1.0
    backoff: float = 2.0
    attempts: int = 3
    max_delay: float | None = None
    jitter: Literal["none", "full"] = "none"
    location: Location = _NOWHERE


@frozen
class CatchRule:
    """Handle matching events no ``on`` key took, by going to ``target``."""

    errors: tuple[str, ...]
    target: str
    save: Mapping[str, Value] = field(factory=dict, converter=_frozen_mapping)
    location: Location = _NOWHERE


@frozen
class State:
    """One state of a flow.

    ``kind`` says what entering it does:

    - ``call``: send ``call``; the answer becomes the event.
    - ``action``: run the registered action ``action`` with ``args``.
    - ``input``: wait until ``inputs`` are given; then the event ``ok``.
    - ``flow``: run the flow named ``flow`` with ``args`` as its inputs; its
      final state's name, or failing that its outcome, is the event.
    - ``pass``: the event ``ok`` at once (for routing on conditions).
    - ``final``: the run ends with ``outcome``, ``output`` and ``message``.
    """

    name: str
    kind: StateKind
    description: str = ""
    call: Call | None = None
    action: str | None = None
    flow: str | None = None
    args: Mapping[str, Value] = field(factory=dict, converter=_frozen_mapping)
    inputs: tuple[InputSpec, ...] = ()
    transitions: tuple[Transition, ...] = ()
    retry: tuple[RetryRule, ...] = ()
    catch: tuple[CatchRule, ...] = ()
    outcome: Outcome = "success"
    output: Mapping[str, Value] = field(factory=dict, converter=_frozen_mapping)
    message: Value = None
    location: Location = _NOWHERE
    #: Where the value of each key of the state (``action``, ``flow``, ...)
    #: was written, and where each key of ``with`` and of ``on`` was, for
    #: messages.
    locations: Mapping[str, Location] = field(factory=dict, converter=_frozen_mapping)
    arg_locations: Mapping[str, Location] = field(
        factory=dict, converter=_frozen_mapping
    )
    event_locations: Mapping[str, Location] = field(
        factory=dict, converter=_frozen_mapping
    )

    @property
    def final(self) -> bool:
        return self.kind == "final"

    @property
    def targets(self) -> tuple[str, ...]:
        """Every state this one can lead to, in file order, without repeats."""
        names = [t.target for t in self.transitions] + [c.target for c in self.catch]
        return tuple(dict.fromkeys(names))


@frozen
class Flow:
    """A validated flow definition.

    ``expires_in`` (seconds, possibly a template over the inputs) bounds a
    run's life from its start; when it passes, the run goes to the final
    state ``on_expiry`` (or ends with the outcome ``expired`` if none is
    named).
    """

    name: str
    initial: str
    states: Mapping[str, State] = field(converter=_frozen_mapping)
    version: int = 1
    summary: str = ""
    description: str = ""
    inputs: Mapping[str, InputSpec] = field(factory=dict, converter=_frozen_mapping)
    data: Mapping[str, DataSpec] = field(factory=dict, converter=_frozen_mapping)
    outputs: Mapping[str, OutputSpec] = field(factory=dict, converter=_frozen_mapping)
    expires_in: Value = None
    on_expiry: str | None = None
    location: Location = _NOWHERE
    #: Where the value of each top-level key (``initial``, ``on_expiry``, ...)
    #: was written, for messages that point at it.
    locations: Mapping[str, Location] = field(factory=dict, converter=_frozen_mapping)
    _secret_names: frozenset[str] = field(init=False, eq=False, repr=False)
    _digest: str = field(init=False, eq=False, repr=False)

    @property
    def source(self) -> str:
        """The file the flow was read from."""
        return self.location.file

    def secret_names(self) -> frozenset[str]:
        """Names of secret inputs (of the flow and of its input states) and data."""
        return self._secret_names

    @_secret_names.default
    def _find_secret_names(self) -> frozenset[str]:
        names = {name for name, spec in self.inputs.items() if spec.secret}
        names |= {name for name, spec in self.data.items() if spec.secret}
        for state in self.states.values():
            names |= {spec.name for spec in state.inputs if spec.secret}
        return frozenset(names)

    def secret_outputs(self) -> frozenset[str]:
        """Names of the secret outputs (the revealed ones among them)."""
        return frozenset(name for name, spec in self.outputs.items() if spec.secret)

    def revealed_outputs(self) -> frozenset[str]:
        """Names of the outputs a person must see once (``reveal``)."""
        return frozenset(name for name, spec in self.outputs.items() if spec.reveal)

    @property
    def digest(self) -> str:
        """A fingerprint of what the flow does, to tell a changed definition.

        Two flows that differ only in where things were written, in their
        descriptions or in their summary have the same digest.
        """
        return self._digest

    @_digest.default
    def _find_digest(self) -> str:
        text = json.dumps(_behaviour(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


#: Fields that say nothing of what a flow does.
_NOT_BEHAVIOUR = frozenset(
    {"location", "locations", "arg_locations", "event_locations"}
    | {"description", "summary"}
    | {"_secret_names", "_digest"}
)


def _behaviour(value: Any) -> Any:
    """``value`` as plain data, without :data:`_NOT_BEHAVIOUR`; templates as text."""
    if isinstance(value, Template):
        return {"template": value.source}
    if attrs.has(type(value)):
        return {
            item.name: _behaviour(getattr(value, item.name))
            for item in attrs.fields(type(value))
            if item.name not in _NOT_BEHAVIOUR
        }
    if isinstance(value, Mapping):
        return {str(key): _behaviour(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_behaviour(item) for item in value]
    return value


_STATUS_RANGE = re.compile(r"http\.([1-5])xx")


def event_matches(pattern: str, event: str) -> int | None:
    """How specifically an ``on`` key or ``errors`` entry matches ``event``.

    0 for the exact name, 1 for a status range (``http.5xx``), 2 for a
    ``prefix.*``, 3 for ``*``; ``None`` when it does not match. Lower wins.
    """
    if pattern == event:
        return 0
    status = _STATUS_RANGE.fullmatch(pattern)
    if status and re.fullmatch(rf"http\.{status.group(1)}\d\d", event):
        return 1
    if pattern.endswith(".*") and event.startswith(pattern[:-1]):
        return 2
    if pattern == "*":
        return 3
    return None


def leaves(value: Any) -> Iterator[Any]:
    """What ``value`` holds that is not a mapping, list or tuple, in order.

    A mapping is walked by its values; text is a leaf, not a sequence.
    """
    if isinstance(value, Mapping):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def is_template(value: Value) -> bool:
    """Whether ``value`` is a template (as opposed to a literal)."""
    return isinstance(value, Template)
