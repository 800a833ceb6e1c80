"""Runs: their plain-document form, and what callers get back.

A run is kept as a small JSON document (never pickled). Secret values (of
secret inputs, data and outputs, as the flow declares them) are kept apart
from the rest, so that a store can encrypt them and nothing else.

The document::

    {"id", "flow", "flow_version", "status", "frames", "wait", "outcome",
     "final_state", "output", "message", "error", "history", "created_at",
     "updated_at", "expires_at", "client"}

``status`` is ``running``, ``waiting``, ``ended`` or ``failed`` (stopped by
an error; resuming tries the current state again). ``frames`` is the stack
of flows being run: the first is the flow that was started, each further
one a sub-flow. ``wait`` is ``None``, ``{"kind": "input", "inputs": [...]}``
or ``{"kind": "time", "until": t}``. ``client`` records the client the run
was saved for (issuer, client id, redirect URI, audience; never its
secret), so that a command can resume it knowing the run's id only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from attrs import define, field, frozen

from ._model import Flow, InputSpec, leaves

__all__ = [
    "Frame",
    "HistoryEntry",
    "InputRequest",
    "RunResult",
    "RunState",
    "texts_in",
]

Status = Literal["running", "waiting", "ended", "failed"]


def _call_repr(name: str, shown: Mapping[str, Any]) -> str:
    """``name(key=value, ...)``, each value by its own repr."""
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in shown.items())})"


def _masked(values: Mapping[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    """``values`` with the secret ones (and only they) shown as ``'***'``."""
    return {
        name: "***" if name in secret and value is not None else value
        for name, value in values.items()
    }


@frozen
class InputRequest:
    """One input a waiting run asks for.

    ``link``, when set, is a URL the person should open (``https://...``)
    or scan into an authenticator app (``otpauth://...``) before answering;
    show it as a link or a QR code rather than looking for URLs in the
    prompt. ``link_is_secret`` says that it shows a secret value (an
    ``otpauth://`` URI holds the TOTP secret): show it to the person only,
    and never log it.
    """

    name: str
    #: May show values of the run (such as an ``otpauth://`` URI): not in repr.
    prompt: str = field(repr=False)
    secret: bool = False
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    description: str = ""
    #: May hold a secret (the TOTP secret of an ``otpauth://`` URI): not in repr.
    link: str | None = field(default=None, repr=False)
    link_is_secret: bool = False

    @classmethod
    def from_spec(cls, spec: InputSpec, choices: Any = None) -> InputRequest:
        """The request for ``spec``, its prompt and link not yet filled in.

        A prompt given as a template shows as written; a link given as a
        template (rather than literally) is left out: only a run can fill
        them in.
        """
        listed = tuple(choices) if isinstance(choices, list | tuple) else None
        return cls(
            name=spec.name,
            prompt=str(spec.prompt or spec.description or spec.name),
            secret=spec.secret,
            pattern=spec.pattern,
            choices=listed,
            description=spec.description,
            link=spec.link if isinstance(spec.link, str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prompt": self.prompt,
            "secret": self.secret,
            "pattern": self.pattern,
            "choices": list(self.choices) if self.choices is not None else None,
            "description": self.description,
            "link": self.link,
            "link_is_secret": self.link_is_secret,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InputRequest:
        choices = raw.get("choices")
        return cls(
            name=raw["name"],
            prompt=raw["prompt"],
            secret=bool(raw.get("secret")),
            pattern=raw.get("pattern"),
            choices=tuple(choices) if choices is not None else None,
            description=raw.get("description", ""),
            link=raw.get("link"),
            link_is_secret=bool(raw.get("link_is_secret")),
        )


@frozen
class HistoryEntry:
    """One transition a run took: into ``state``, from ``source``, on ``event``.

    The first entry of a run (and of each sub-flow) has no source or event.
    """

    flow: str
    state: str
    source: str | None
    event: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "state": self.state,
            "from": self.source,
            "event": self.event,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HistoryEntry:
        return cls(
            raw["flow"], raw["state"], raw.get("from"), raw.get("event"), raw["at"]
        )


@frozen(repr=False)
class RunResult:
    """Where a run stands after ``start`` or ``resume``.

    Either it has ended (``ended`` is true; ``outcome``, ``outputs`` and
    ``message`` say how), or it waits: for inputs (``waiting_for``) or
    until a time (``resume_at``, seconds since the epoch).

    ``secret_outputs`` names the outputs to mask; ``revealed_outputs``
    those of them the person must see once (recovery codes): show them in
    clear, then call :meth:`~mfaflow.Engine.forget_revealed`.
    """

    run_id: str
    flow: str
    status: Status
    state: str
    outcome: str | None = None
    outputs: Mapping[str, Any] = field(factory=dict)
    message: str | None = None
    waiting_for: tuple[InputRequest, ...] = ()
    resume_at: float | None = None
    expires_at: float | None = None
    history: tuple[HistoryEntry, ...] = ()
    secret_outputs: frozenset[str] = frozenset()
    error: str | None = None
    revealed_outputs: frozenset[str] = frozenset()

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    @property
    def waiting(self) -> bool:
        return self.status == "waiting"

    @property
    def succeeded(self) -> bool:
        return self.ended and self.outcome == "success"

    def visible_outputs(self) -> dict[str, Any]:
        """The outputs with every secret value replaced by ``'***'``.

        An absent (``None``) secret output stays ``None``, so that masking
        never suggests a value the server did not send.
        """
        return _masked(self.outputs, self.secret_outputs)

    def __repr__(self) -> str:
        if self.ended:
            detail = f"outcome={self.outcome!r} outputs={self.visible_outputs()!r}"
        elif self.waiting_for:
            detail = f"waiting_for={[r.name for r in self.waiting_for]!r}"
        else:
            detail = f"resume_at={self.resume_at!r}"
        return (
            f"<RunResult {self.run_id} flow={self.flow!r} status={self.status!r} "
            f"state={self.state!r} {detail}>"
        )


@define(repr=False)
class Frame:
    """One flow on a run's stack: its state, inputs, data and retry counts.

    The repr shows secret inputs and data as ``'***'``.
    """

    flow: Flow
    state: str
    inputs: dict[str, Any] = field(factory=dict)
    data: dict[str, Any] = field(factory=dict)
    retries: int = 0
    expires_at: float | None = None

    def __repr__(self) -> str:
        secret = self.flow.secret_names()
        inputs, data = _masked(self.inputs, secret), _masked(self.data, secret)
        shown: dict[str, Any] = {"flow": self.flow.name, "state": self.state}
        shown |= {"inputs": inputs, "data": data, "retries": self.retries}
        return _call_repr("Frame", shown)

    def split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The frame as (public document, secret values)."""
        secret = self.flow.secret_names()
        public: dict[str, Any] = {
            "flow": self.flow.name,
            "flow_version": self.flow.version,
            "flow_digest": self.flow.digest,
            "source": self.flow.source,
            "state": self.state,
            "retries": self.retries,
            "expires_at": self.expires_at,
        }
        hidden: dict[str, Any] = {}
        for part in ("inputs", "data"):
            values: dict[str, Any] = getattr(self, part)
            public[part] = {k: v for k, v in values.items() if k not in secret}
            kept = {k: v for k, v in values.items() if k in secret}
            if kept:
                hidden[part] = kept
        return public, hidden


@define(repr=False)
class RunState:
    """A run being driven: the mutable counterpart of its document.

    The repr shows secret inputs, data and outputs as ``'***'``.
    """

    id: str
    frames: list[Frame]
    created_at: float
    status: Status = "running"
    wait: dict[str, Any] | None = None
    outcome: str | None = None
    final_state: str | None = None
    output: dict[str, Any] = field(factory=dict)
    message: str | None = None
    error: str | None = None
    history: list[HistoryEntry] = field(factory=list)
    version: int = 0

    def __repr__(self) -> str:
        output = _masked(self.output, self.root.secret_outputs())
        shown: dict[str, Any] = {"id": self.id, "status": self.status}
        shown |= {"frames": self.frames, "wait": self.wait, "output": output}
        return _call_repr("RunState", shown)

    @property
    def top(self) -> Frame:
        return self.frames[-1]

    @property
    def root(self) -> Flow:
        return self.frames[0].flow

    @property
    def expires_at(self) -> float | None:
        times = [
            frame.expires_at for frame in self.frames if frame.expires_at is not None
        ]
        return min(times) if times else None

    def split(self, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run as (public document, secret values) for a store."""
        frames, hidden_frames = [], {}
        for index, frame in enumerate(self.frames):
            public, hidden = frame.split()
            frames.append(public)
            if hidden:
                hidden_frames[str(index)] = hidden

        secret_outputs = self.root.secret_outputs()
        document = {
            "id": self.id,
            "flow": self.root.name,
            "flow_version": self.root.version,
            "status": self.status,
            "frames": frames,
            "wait": self.wait,
            "outcome": self.outcome,
            "final_state": self.final_state,
            "output": {k: v for k, v in self.output.items() if k not in secret_outputs},
            "message": self.message,
            "error": self.error,
            "history": [entry.to_dict() for entry in self.history],
            "created_at": self.created_at,
            "updated_at": now,
            "expires_at": self.expires_at,
        }
        secrets: dict[str, Any] = {}
        if hidden_frames:
            secrets["frames"] = hidden_frames
        hidden_output = {k: v for k, v in self.output.items() if k in secret_outputs}
        if hidden_output:
            secrets["output"] = hidden_output
        return document, secrets


def texts_in(value: Any) -> Iterator[str]:
    """The text values in ``value``: itself, or those inside lists and mappings."""
    return (leaf for leaf in leaves(value) if isinstance(leaf, str))
