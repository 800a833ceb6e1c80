"""The engine: compiles flows onto ``transitions`` and drives runs through them.

Each flow definition is compiled once, into one ``transitions.Machine``
shared by every run of that flow; a run is a plain document that names its
current state. Taking a step means: execute the current state (send its
HTTP request, call its action, start its sub-flow, or stop to wait), turn
the outcome into an event, and let the machine pick the transition. The
machine is given only callables, never names, so nothing in a flow file can
make ``transitions`` import anything.

Order of handling an event in a state: the first ``retry`` rule that
matches and has attempts left; then the ``on`` keys, most specific first;
then the first matching ``catch`` rule. An event none of them take stops
the run with :class:`~mfaflow.UnhandledEvent` (an OAuth error of the server
with :class:`~mfaflow.UnhandledServerError`, which is an
:class:`~mfaflow.AuthorizationServerError` too).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode, urljoin, urlsplit, urlunsplit

from attrs import evolve, field, frozen
from transitions import Machine

from . import _template
from ._catalog import Catalog
from ._errors import (
    ActionError,
    ConnectError,
    ConnectionDropped,
    InputError,
    ResponseTooLarge,
    RunEnded,
    RunError,
    TLSError,
    TransportError,
    TransportTimeout,
    UnhandledEvent,
    UnhandledServerError,
)
from ._fields import MAX_SECONDS
from ._model import (
    Call,
    CatchRule,
    Condition,
    Flow,
    InputSpec,
    RetryRule,
    State,
    Transition,
    event_matches,
)
from ._registry import (
    AUTH0_ENDPOINTS,
    COMBINATORS,
    ActionContext,
    ActionResult,
    Registry,
    default_registry,
)
from ._run import Frame, HistoryEntry, InputRequest, RunResult, RunState, texts_in
from ._store import MemoryStore, Store, StoredRun
from ._template import Reference, Template
from ._transport import Request, Response, Transport, parse_json, safe_url

__all__ = ["Client", "Engine", "RunEvent"]

log = logging.getLogger(__name__)


_DISCOVERY_PATH = "/.well-known/openid-configuration"
#: How deep sub-flows may nest in one run: far more than any real flow,
#: and a stop for a flow that starts itself in a way validation cannot see.
MAX_NESTING = 16
#: The largest answer the engine parses, whatever the transport allows:
#: 4 MiB, far above any answer of an authorization server.
MAX_ANSWER = 4 * 1_048_576
#: What an OAuth ``error`` code must look like to become an event: the
#: names a flow file may write (``invalid_grant``, ``a0.mfa_required``).
_SERVER_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,3}")
#: Events the engine gives itself, which a server must not be able to fire.
_RESERVED_EVENTS = frozenset({"ok", "expired"})
_RESERVED_PREFIXES = ("transport.", "response.", "http.", "action.")


#: How a confidential client may authenticate: the credentials in the body
#: (``client_secret_post``) or in an ``Authorization: Basic`` header
#: (``client_secret_basic``, RFC 6749 section 2.3.1). Auth0 accepts both.
CLIENT_AUTH_METHODS = ("post", "basic")


def _check_client_auth(client: Client, attribute: Any, value: str) -> None:
    if value not in CLIENT_AUTH_METHODS:
        allowed = ", ".join(repr(method) for method in CLIENT_AUTH_METHODS)
        raise ValueError(f"client_auth must be one of {allowed}, not {value!r}.")


#: What an issuer URL with user information is refused with; the URL
#: itself is not shown, as its password would be.
USERINFO_REFUSED = (
    "The issuer URL must not hold a user name or password (user:password@host); "
    "give the client's credentials as its client id and client secret instead."
)


def check_issuer(issuer: str) -> None:
    """Refuse an issuer URL that carries user information, without showing it.

    Everything a run records and prints names the issuer; a password in it
    would be shown everywhere, and no authorization server takes one so.

    Raises:
        ValueError: the URL holds ``user@`` or ``user:password@``.
    """
    if "@" in urlsplit(issuer).netloc:
        raise ValueError(USERINFO_REFUSED)


def _check_issuer(client: Client, attribute: Any, value: str) -> None:
    check_issuer(value)


@frozen(repr=False)
class Client:
    """The application a flow acts for, at one authorization server.

    ``issuer`` is the server's base URL (``https://tenant.example.com/``).
    ``client_auth`` says how a confidential client (one with a
    ``client_secret``) authenticates the calls a flow marks ``client_auth:
    true``: ``post`` (the default) puts ``client_id`` and ``client_secret``
    in the body, ``basic`` sends them in an ``Authorization: Basic`` header.
    A public client sends only its ``client_id``, either way. The client
    secret is never shown by ``repr``.

    Raises:
        ValueError: ``client_auth`` is not ``post`` or ``basic``.
    """

    issuer: str = field(validator=_check_issuer)
    client_id: str
    client_secret: str | None = None
    redirect_uri: str | None = None
    audience: str | None = None
    client_auth: str = field(default="post", validator=_check_client_auth)

    @property
    def issuer_host(self) -> str:
        return urlsplit(self.issuer).netloc

    def to_dict(self) -> dict[str, Any]:
        """What a run records of the client it ran for: all but the secret."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "audience": self.audience,
            "client_auth": self.client_auth,
        }

    def template_view(self) -> dict[str, Any]:
        """The values flow files see as ``${client.*}``."""
        return {
            **self.to_dict(),
            "issuer_host": self.issuer_host,
            "client_secret": self.client_secret,
        }

    def credentials(self, *, header: bool) -> tuple[dict[str, str], str | None]:
        """What authenticates a request as this client: body fields, header value.

        The header value (for ``Authorization``) is given only when
        ``header`` allows one and the client authenticates with ``basic``;
        otherwise the body fields carry ``client_id``, and ``client_secret``
        for a confidential client. As RFC 6749 section 2.3.1 says, the id
        and the secret are form-urlencoded before they are joined and
        encoded in base64.
        """
        if self.client_secret is None:
            return {"client_id": self.client_id}, None
        if header and self.client_auth == "basic":
            pair = (
                f"{_form_encoded(self.client_id)}:{_form_encoded(self.client_secret)}"
            )
            return {}, "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return {"client_id": self.client_id, "client_secret": self.client_secret}, None

    def __repr__(self) -> str:
        secret = "***" if self.client_secret else None
        return (
            f"Client(issuer={self.issuer!r}, client_id={self.client_id!r}, "
            f"client_secret={secret!r}, client_auth={self.client_auth!r})"
        )


@frozen
class RunEvent:
    """What hooks are told: a run ``started``, took a ``transition``,
    ``entered`` a sub-flow, began to ``wait``, ``ended`` or ``failed``.

    ``flow`` and ``state`` say where the run is after the event: for
    ``entered``, the sub-flow and its initial state, ``source`` the state
    of the parent that started it. Carries names and times only, never a
    value of the run's data.
    """

    kind: str
    run_id: str
    flow: str
    state: str
    at: float
    event: str | None = None
    source: str | None = None
    outcome: str | None = None
    waiting_for: tuple[str, ...] = ()
    resume_at: float | None = None


Hook = Callable[[RunEvent], None]


class _Cursor:
    """The stand-in model a shared machine moves for one step of one run."""

    __slots__ = ("state", "taken")

    def __init__(self, state: str) -> None:
        self.state = state
        self.taken: list[Transition | CatchRule] = []


class _Compiled:
    """One flow compiled onto one shared ``transitions.Machine``."""

    def __init__(
        self, flow: Flow, guard: Callable[[Condition, Mapping[str, Any]], bool]
    ):
        self.flow = flow
        self.machine = Machine(
            model=None,
            states=list(flow.states),
            initial=flow.initial,
            auto_transitions=False,
            send_event=True,
        )
        self.keys: dict[str, tuple[str, ...]] = {}
        #: The secret fields of the flow and its sub-flows, once known.
        self.secret_fields: tuple[str, ...] | None = None
        for state in flow.states.values():
            for transition in state.transitions:
                self._add(state.name, transition.event, transition, guard)
            for index, rule in enumerate(state.catch):
                self._add(state.name, f"catch#{index}", rule, guard)
            self.keys[state.name] = tuple(
                dict.fromkeys(t.event for t in state.transitions)
            )

    def _add(
        self,
        source: str,
        trigger: str,
        rule: Transition | CatchRule,
        guard: Callable[[Condition, Mapping[str, Any]], bool],
    ) -> None:
        conditions: list[str | Callable[..., bool | None]] = []
        when = rule.when if isinstance(rule, Transition) else None
        if when is not None:
            conditions.append(
                lambda event_data: guard(when, event_data.kwargs["scope"])
            )
        self.machine.add_transition(
            trigger,
            source,
            rule.target,
            conditions=conditions,
            after=[lambda event_data: event_data.model.taken.append(rule)],
        )

    def take(
        self, state: str, trigger: str, scope: Mapping[str, Any]
    ) -> Transition | CatchRule | None:
        """Fire ``trigger`` in ``state``; the rule taken, or None if no guard held."""
        cursor = _Cursor(state)
        self.machine.events[trigger].trigger(cursor, scope=scope)
        return cursor.taken[-1] if cursor.taken else None


def _matches_any(patterns: Iterable[str], event: str) -> bool:
    return any(event_matches(pattern, event) is not None for pattern in patterns)


class _Outcome:
    """What executing a state produced: an event and the values it brings."""

    __slots__ = ("event", "scope")

    def __init__(self, event: str, **scope: Any) -> None:
        self.event = event
        self.scope = scope


class _Wait(Exception):
    """Raised inside a step when the run must stop and wait."""


class _GuardFailed(Exception):
    """A guard raised; its exception is the cause. Carried out of ``transitions``."""

    def __init__(self, guard: str) -> None:
        super().__init__(guard)
        self.guard = guard


class Engine:
    """Runs flows for one client against one authorization server.

    Args:
        client: the application and its authorization server.
        transport: how HTTP requests are sent; ``requests`` by default.
        store: where runs are kept between steps; in memory by default.
        hooks: callables told of every start, transition, wait and end.
        registry: the actions and guards flows may name.
        flow_paths: folders (or files) of the user's own flows, searched
            before the shipped ones.
        clock: seconds since the epoch; tests pass their own.
        random: a number in [0, 1), for retry jitter.
        max_steps: how many steps one call may take before the run is
            stopped as looping.
    """

    def __init__(
        self,
        client: Client,
        *,
        transport: Transport | None = None,
        store: Store | None = None,
        hooks: Sequence[Hook] = (),
        registry: Registry | None = None,
        flow_paths: Iterable[str | Path] = (),
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] | None = None,
        max_steps: int = 500,
    ) -> None:
        self.client = client
        self._transport = transport
        self.store: Store = store if store is not None else MemoryStore()
        self.hooks = tuple(hooks)
        self.registry = registry if registry is not None else default_registry()
        self.catalog = Catalog(flow_paths)
        self.clock = clock
        if random is None:
            import random as _random

            random = _random.random
        self._random = random
        self.max_steps = max_steps
        #: Compiled flows by the name or path they were asked for by, and by
        #: resolved path: names and files never stand in for each other.
        self._by_key: dict[str, _Compiled] = {}
        #: The last flow compiled of each name, for Flow objects.
        self._by_name: dict[str, _Compiled] = {}
        self._discovery: dict[str, Mapping[str, Any]] = {}

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            from ._transport import RequestsTransport

            self._transport = RequestsTransport()
        return self._transport

    # -- flows ----------------------------------------------------------

    def flow(self, flow: str | Path | Flow) -> Flow:
        """The validated definition of ``flow``: a name, a path, or a Flow.

        Loading, checking and compiling happen once per flow per engine. A
        Flow made by :func:`~mfaflow.parse_flow` (or in code) gets the
        structural checks of :func:`~mfaflow.check_flow` here, against this
        engine's actions, guards and flows.

        Raises:
            DefinitionErrors: the flow is broken.
        """
        return self._compile(flow).flow

    def _compile(self, flow: str | Path | Flow) -> _Compiled:
        if isinstance(flow, Flow):
            return self._compile_flow(flow)
        key = str(flow)
        compiled = self._by_key.get(key)
        if compiled is None:
            path = Path(flow) if _looks_like_path(key) else self.catalog.find(key)
            compiled = self._compile_file(path)
            self._by_key[key] = compiled
        return compiled

    def _compile_file(self, path: Path) -> _Compiled:
        """The flow in the file ``path``, compiled once however it is named."""
        key = str(path.resolve())
        compiled = self._by_key.get(key)
        if compiled is None:
            compiled = _Compiled(self._load(path), self._guard)
            self._by_key[key] = self._by_name[compiled.flow.name] = compiled
        return compiled

    def _compile_flow(self, flow: Flow) -> _Compiled:
        """A Flow object, compiled (and checked) unless it was already."""
        compiled = self._by_name.get(flow.name)
        if compiled is None or compiled.flow is not flow:
            self._check(flow)
            compiled = self._by_name[flow.name] = _Compiled(flow, self._guard)
        return compiled

    def _check(self, flow: Flow) -> None:
        from ._errors import DefinitionErrors
        from ._validate import check_flow

        errors = check_flow(
            flow,
            actions=self.registry.action_names(),
            guards=self.registry.guard_names(),
            flows=self.catalog.names() | {flow.name},
            subflows=self.catalog.definition,
        )
        if errors:
            raise DefinitionErrors(errors)

    def _check_store_keeps(self, compiled: _Compiled) -> None:
        """Let the store refuse the flow's secrets before any request is sent."""
        require = getattr(self.store, "require_key", None)
        if require is None:
            return
        if compiled.secret_fields is None:
            found = self._secret_fields(compiled.flow, set())
            compiled.secret_fields = tuple(sorted(found))
        require(compiled.flow.name, compiled.secret_fields)

    def _secret_fields(self, flow: Flow, seen: set[str]) -> set[str]:
        """The secret inputs, data and outputs of ``flow`` and its sub-flows."""
        seen.add(flow.name)
        found = {
            f"outputs.{name}" for name, spec in flow.outputs.items() if spec.secret
        }
        found |= {f"data.{name}" for name, spec in flow.data.items() if spec.secret}
        inputs = [*flow.inputs.values()]
        for state in flow.states.values():
            inputs += state.inputs
            if state.flow is not None and state.flow not in seen:
                found |= self._secret_fields(self._compile(state.flow).flow, seen)
        return found | {f"inputs.{spec.name}" for spec in inputs if spec.secret}

    def _load(self, path: Path) -> Flow:
        from ._loader import load_flow

        return load_flow(
            path,
            actions=self.registry.action_names(),
            guards=self.registry.guard_names(),
            flows=self.catalog.names() | {path.stem},
            subflows=self.catalog.definition,
        )

    # -- public driving ------------------------------------------------

    def start(
        self, flow: str | Path | Flow, inputs: Mapping[str, Any] | None = None
    ) -> RunResult:
        """Start a run of ``flow`` and drive it until it ends or must wait.

        Raises:
            InputError: an input is missing, unknown or malformed; nothing
                is stored.
            EncryptionKeyMissing: the flow (or a sub-flow) keeps secrets and
                the store has no key to encrypt them; nothing is sent or
                stored.
            RunError: the run stopped on an error; it is stored as
                ``failed`` and can be inspected or resumed.
        """
        compiled = self._compile(flow)
        self._check_store_keeps(compiled)
        now = self.clock()
        frame = self._new_frame(compiled.flow, dict(inputs or {}), now, run_id=None)
        run = RunState(id=uuid.uuid4().hex, frames=[frame], created_at=now)
        run.history.append(
            HistoryEntry(compiled.flow.name, frame.state, None, None, now)
        )
        events = [self._event("started", run)]
        return self._drive(run, events)

    def resume(self, run_id: str, inputs: Mapping[str, Any] | None = None) -> RunResult:
        """Continue a stored run, giving it the ``inputs`` it waits for.

        A run waiting until a time that has not come yet is returned
        unchanged. Inputs it does not wait for are refused.
        """
        run = self._load_run(run_id)
        if run.status == "ended":
            raise RunEnded(
                f"The run {run_id} has already ended with the outcome {run.outcome!r}.",
                flow=run.root.name,
                run_id=run_id,
                state=run.top.state,
            )
        events: list[RunEvent] = []
        waited = run.wait
        if self._expire(run, events):
            self._save(run, run.version, events)
            return self._result(run)
        if waited is not None and run.wait is None:
            # The run expired while it waited: what it was given is moot.
            return self._drive(run, events)
        wait = run.wait or {}
        if wait.get("kind") == "time" and self.clock() < wait["until"]:
            return self._result(run)
        if wait.get("kind") == "input":
            return self._drive(
                run, events, self._accept_inputs(run, dict(inputs or {}))
            )
        if inputs:
            raise InputError(
                f"The run {run_id} is not waiting for input.",
                name=next(iter(inputs)),
                run_id=run_id,
                flow=run.root.name,
                state=run.top.state,
            )
        run.wait = None
        return self._drive(run, events)

    def get(self, run_id: str) -> RunResult:
        """Where the stored run ``run_id`` stands, without changing it."""
        return self._result(self._load_run(run_id))

    def forget_revealed(self, run_id: str) -> RunResult:
        """Remove from the stored run the outputs its flow marks ``reveal``.

        Call it once the person has seen them: a recovery code is shown
        once and kept by the person, not by the store. Every copy of the
        values in the run goes (in its outputs, and in the data they came
        from). The save is version-checked, as every save is.

        Raises:
            RunNotFound: no run has that id.
            ConcurrencyError: the run was saved by someone else meanwhile;
                nothing changed.
        """
        run = self._load_run(run_id)
        values = {
            text
            for name in run.root.revealed_outputs()
            for text in texts_in(run.output.pop(name, None))
        }
        if values:
            for frame in run.frames:
                frame.data = _without(frame.data, values)
            run.output = _without(run.output, values)
            self._save(run, run.version, [])
        return self._result(run)

    def run(
        self,
        flow: str | Path | Flow,
        inputs: Mapping[str, Any] | None = None,
        *,
        ask: Callable[[InputRequest], Any],
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunResult:
        """Start ``flow`` and keep resuming it until it ends.

        ``ask`` is called for each input the run waits for; ``sleep`` for
        each wait until a time.
        """
        result = self.start(flow, inputs)
        while not result.ended:
            if result.waiting_for:
                given = {request.name: ask(request) for request in result.waiting_for}
                result = self.resume(result.run_id, given)
                continue
            delay = (result.resume_at or 0) - self.clock()
            if delay > 0:
                sleep(delay)
            result = self.resume(result.run_id)
        return result

    # -- the loop ---------------------------------------------------------

    def _drive(
        self, run: RunState, events: list[RunEvent], outcome: _Outcome | None = None
    ) -> RunResult:
        expected = run.version
        try:
            self._steps(run, events, outcome)
        except _Wait:
            pass
        except RunError as exc:
            run.status = "failed"
            run.error = str(exc)
            events.append(self._event("failed", run, event=exc.event))
            self._save(run, expected, events)
            raise
        self._save(run, expected, events)
        return self._result(run)

    def _steps(
        self, run: RunState, events: list[RunEvent], outcome: _Outcome | None
    ) -> None:
        run.status = "running"
        run.error = None
        for _ in range(self.max_steps):
            if self._expire(run, events):
                return
            frame = run.top
            state = frame.flow.states[frame.state]
            if state.final:
                if not self._finish(run, state, events):
                    return
                continue
            if outcome is None:
                outcome = self._execute(run, frame, state, events)
                if outcome is None:  # a sub-flow was entered
                    continue
            self._handle(run, frame, state, outcome, events)
            outcome = None
        raise RunError(
            f"The run took {self.max_steps} steps without ending or waiting; "
            "the flow may loop.",
            flow=run.top.flow.name,
            run_id=run.id,
            state=run.top.state,
        )

    def _execute(
        self, run: RunState, frame: Frame, state: State, events: list[RunEvent]
    ) -> _Outcome | None:
        if state.kind == "call":
            return self._call(run, frame, state)
        if state.kind == "action":
            return self._action(run, frame, state)
        if state.kind == "input":
            self._wait_for_input(run, frame, state, events)
        if state.kind == "flow":
            self._enter_subflow(run, frame, state, events)
            return None
        return _Outcome("ok")

    def _handle(
        self,
        run: RunState,
        frame: Frame,
        state: State,
        outcome: _Outcome,
        events: list[RunEvent],
    ) -> None:
        scope = self._scope(run, frame, **outcome.scope)
        rule = self._retry_rule(state, outcome.event, frame)
        if rule is not None:
            frame.retries += 1
            delay = self._backoff(rule, frame.retries)
            log.debug(
                "run %s: retry %d of %s on %s in %.3fs",
                run.id,
                frame.retries,
                state.name,
                outcome.event,
                delay,
            )
            self._wait_until(run, self.clock() + delay, events)

        taken = self._take(run, frame, state, outcome.event, scope)
        if taken is None:
            raise _unhandled(run, frame, state, outcome)
        self._apply(run, frame, state, taken, outcome.event, scope, events)

    def _take(
        self,
        run: RunState,
        frame: Frame,
        state: State,
        event: str,
        scope: Mapping[str, Any],
    ) -> Transition | CatchRule | None:
        compiled = self._compile(frame.flow)
        keys = sorted(
            (rank, key)
            for key in compiled.keys[state.name]
            if (rank := event_matches(key, event)) is not None
        )
        try:
            for _, key in keys:
                taken = compiled.take(state.name, key, scope)
                if taken is not None:
                    return taken
        except _GuardFailed as failed:
            raise RunError(
                f"The guard {failed.guard!r} on the event {event!r} in the state "
                f"{state.name!r} of the flow {frame.flow.name!r} failed with "
                f"{_kind(failed.__cause__)}.",
                flow=frame.flow.name,
                run_id=run.id,
                state=state.name,
                event=event,
            ) from failed.__cause__
        for index, rule in enumerate(state.catch):
            if _matches_any(rule.errors, event):
                return compiled.take(state.name, f"catch#{index}", scope)
        return None

    def _apply(
        self,
        run: RunState,
        frame: Frame,
        state: State,
        taken: Transition | CatchRule,
        event: str,
        scope: Mapping[str, Any],
        events: list[RunEvent],
    ) -> None:
        now = self.clock()
        texts: tuple[str, ...] | None = None
        for name, value in taken.save.items():
            saved = _template.render(value, scope)
            spec = frame.flow.data.get(name)
            if spec is not None and not spec.secret:
                # What an answer repeats of a secret stays out of clear data.
                texts = self._secret_texts(run) if texts is None else texts
                saved = _masked(saved, texts)
            frame.data[name] = saved
        frame.retries = 0
        frame.state = taken.target
        run.history.append(
            HistoryEntry(frame.flow.name, taken.target, state.name, event, now)
        )
        events.append(self._event("transition", run, event=event, source=state.name))
        log.debug("run %s: %s --%s--> %s", run.id, state.name, event, taken.target)

        if isinstance(taken, Transition):
            where = (
                f"of the transition {taken.event!r} of the state {state.name!r} "
                f"in the flow {frame.flow.name!r}"
            )
            context = _context(run, frame, state.name, event)
            if taken.expires_in is not None:
                lifetime = _seconds(
                    taken.expires_in, scope, f"The expires_in {where}", context
                )
                frame.expires_at = now + lifetime
            if taken.delay is not None:
                delay = _seconds(taken.delay, scope, f"The delay {where}", context)
                if delay > 0:
                    self._wait_until(run, now + delay, events)

    # -- executing states ---------------------------------------------

    def _call(self, run: RunState, frame: Frame, state: State) -> _Outcome:
        assert state.call is not None
        request = self._request(run, frame, state)
        try:
            response = self.transport.send(request)
        except TransportError as exc:
            event = _transport_event(exc)
            log.info("%s %s -> %s", request.method, _without_query(request.url), event)
            return _Outcome(event, error=_error(event, message=str(exc)))
        return self._classify(request, response, self._secret_texts(run))

    def _request(self, run: RunState, frame: Frame, state: State) -> Request:
        call = state.call
        assert call is not None
        scope = self._scope(run, frame)
        context = _context(run, frame, state.name)
        url = self._call_url(call, frame, state, scope, context)

        headers = {"Accept": "application/json"}
        headers.update(_fields(_template.render(dict(call.headers), scope)))
        bearer = _template.render(call.bearer, scope)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        form = None if call.form is None else _template.render(dict(call.form), scope)
        payload = None if call.json is None else _template.render(call.json, scope)
        if call.client_auth:
            form, payload = self._authenticate(state, headers, form, payload, context)

        body = None
        if form is not None:
            body = urlencode(_fields(form), doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif call.json is not None:
            body = json.dumps(_drop_none(payload)).encode()
            headers["Content-Type"] = "application/json"
        return Request(call.method, url, headers, body, call.timeout)

    def _call_url(
        self,
        call: Call,
        frame: Frame,
        state: State,
        scope: Mapping[str, Any],
        context: Mapping[str, Any],
    ) -> str:
        """The full URL ``call`` goes to: its endpoint or url, and its query."""
        if call.endpoint:
            url = self._endpoint(call.endpoint, context)
        else:
            where = (
                f"The url of the state {state.name!r} in the flow {frame.flow.name!r}"
            )
            text = _text(_template.render(call.url, scope), where, context)
            url = urljoin(_with_slash(self.client.issuer), text)
        query = _fields(_template.render(dict(call.query), scope))
        if query:
            url += ("&" if urlsplit(url).query else "?") + urlencode(query, doseq=True)
        return url

    def _authenticate(
        self,
        state: State,
        headers: dict[str, str],
        form: dict[str, Any] | None,
        payload: Any,
        context: Mapping[str, Any],
    ) -> tuple[dict[str, Any] | None, Any]:
        """Add the client's credentials to a call that ``client_auth`` marks.

        They go in an ``Authorization: Basic`` header when the client uses
        ``basic`` and the call has no ``Authorization`` of its own (a
        bearer token); in the form or the JSON object otherwise.

        Raises:
            RunError: the JSON body is not an object, so it cannot carry
                the credentials.
        """
        taken = any(name.lower() == "authorization" for name in headers)
        fields, authorization = self.client.credentials(header=not taken)
        if authorization is not None:
            headers["Authorization"] = authorization
        if form is not None:
            return {**form, **fields}, payload
        if not isinstance(payload, Mapping):
            raise RunError(
                f"The json of the state {state.name!r} must be an object to carry "
                f"the client's credentials (client_auth), not {_kind_of(payload)}.",
                **context,
            )
        return form, {**payload, **fields}

    def _classify(
        self, request: Request, response: Response, secrets: tuple[str, ...]
    ) -> _Outcome:
        """The event of an answer, and what the flow may read of it.

        ``secrets`` are the run's secret texts: a server may quote what it
        was sent (a password, the client secret) in its error_description,
        and the error the flow reads shows them as ``***``.
        """
        status = response.status
        if len(response.body) > MAX_ANSWER:
            event = "response.too_large"
            message = (
                f"The answer is {len(response.body)} bytes long, "
                f"more than the {MAX_ANSWER} the engine reads."
            )
            return _Outcome(event, error=_error(event, status=status, message=message))
        body, parsed = _parse_body(response.body)
        shown = {"status": status, "headers": dict(response.headers), "body": body}
        code = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(code, str) and code and not _is_server_event(code, secrets):
            log.info(
                "%s %s -> %d with an error code that is no event name",
                request.method,
                _without_query(request.url),
                status,
            )
            event = "response.invalid"
            message = (
                "The server answered an OAuth error code that cannot be an event "
                "name: not letters, digits, '_', '-' and '.', or one the engine "
                "keeps for itself."
            )
            return _Outcome(
                event,
                response=shown,
                error=_error(event, status=status, message=message),
            )
        if isinstance(code, str) and code:
            # Whatever the status: Auth0's legacy docs show a push poll that
            # is still pending as HTTP 200 {"error": "authorization_pending"}.
            event = code
        elif 200 <= status < 300:
            event = "ok" if parsed else "response.invalid"
        else:
            event = f"http.{status}"
        log.info(
            "%s %s -> %d (%s)",
            request.method,
            _without_query(request.url),
            status,
            event,
        )
        if event == "ok":
            return _Outcome(event, response=shown)
        described = body.get("error_description") if isinstance(body, Mapping) else ""
        if not isinstance(described, str):
            described = ""
        described = _masked(described, secrets)
        return _Outcome(
            event,
            response=shown,
            error=_error(event, status=status, code=code, description=described),
        )

    def _endpoint(self, name: str, context: Mapping[str, Any] | None = None) -> str:
        """The full URL of the endpoint ``name`` (discovered, or Auth0's).

        ``context`` (flow, run id, state) goes into the error of an endpoint
        that neither names.
        """
        return urljoin(_with_slash(self.client.issuer), self._url(name, context))

    def _url(self, endpoint: str, context: Mapping[str, Any] | None) -> str:
        issuer = self.client.issuer
        document = self._discovery.get(issuer)
        if document is None:
            document = self._discover(issuer)
            if document is None:
                # Not read this time: Auth0's paths now, and ask again next time.
                document = {}
            else:
                self._discovery[issuer] = document
        found = document.get(endpoint)
        if isinstance(found, str) and found:
            _check_discovered_issuer(document, issuer, context or {})
            return found
        if endpoint in AUTH0_ENDPOINTS:
            return AUTH0_ENDPOINTS[endpoint]
        context = context or {}
        where = ""
        if context.get("state"):
            where = f" (the state {context['state']!r} of the flow {context['flow']!r})"
        raise RunError(
            f"The issuer's discovery document has no {endpoint!r}{where} and Auth0 "
            f"has no default path for it; known: {', '.join(sorted(AUTH0_ENDPOINTS))}.",
            **context,
        )

    def _discover(self, issuer: str) -> Mapping[str, Any] | None:
        """The issuer's discovery document; empty when it has none.

        ``None`` when it could not be read this time (the server was not
        reached, or answered 5xx), so that a server that was down when the
        first run began is asked again rather than passed over for good.
        """
        url = urljoin(_with_slash(issuer), _DISCOVERY_PATH.lstrip("/"))
        try:
            response = self.transport.send(
                Request("GET", url, {"Accept": "application/json"})
            )
        except TransportError as exc:
            log.warning(
                "Discovery at %s failed (%s); using Auth0's paths for now.",
                url,
                type(exc).__name__,
            )
            return None
        if response.status >= 500:
            log.warning(
                "Discovery at %s answered %d; using Auth0's paths for now.",
                url,
                response.status,
            )
            return None
        try:
            document = response.json() if response.status == 200 else {}
        except ValueError:
            return {}
        return document if isinstance(document, Mapping) else {}

    def _action(self, run: RunState, frame: Frame, state: State) -> _Outcome:
        assert state.action is not None
        function = self.registry.get_action(state.action)
        scope = self._scope(run, frame)
        context = ActionContext(
            run_id=run.id,
            flow=frame.flow.name,
            state=state.name,
            client=self.client,
            now=self.clock(),
            data=dict(frame.data),
            resolve_endpoint=self._endpoint,
        )
        try:
            produced = function(context, _template.render(dict(state.args), scope))
        except Exception as exc:
            log.warning(
                "run %s: the action %r failed with %s.",
                run.id,
                state.action,
                _kind(exc),
            )
            message = _masked(
                _action_failure(state.action, exc), self._secret_texts(run)
            )
            return _Outcome(
                "action.error", error=_error("action.error", message=message)
            )
        if isinstance(produced, ActionResult):
            return _Outcome(produced.event, result=produced.result)
        return _Outcome("ok", result=produced)

    def _wait_for_input(
        self, run: RunState, frame: Frame, state: State, events: list[RunEvent]
    ) -> None:
        scope = self._scope(run, frame)
        # The stored requests show secret values in templated prompts and
        # links as "***"; only the RunResult handed to the caller fills them in.
        secrets = frame.flow.secret_names()
        requests = [
            _filled_in(
                InputRequest.from_spec(spec, _template.render(spec.choices, scope)),
                spec,
                scope,
                secrets,
                reveal=False,
            ).to_dict()
            for spec in state.inputs
        ]
        run.status = "waiting"
        run.wait = {"kind": "input", "inputs": requests}
        events.append(
            self._event("waiting", run, waiting_for=tuple(r["name"] for r in requests))
        )
        log.debug(
            "run %s: %s waits for %s", run.id, state.name, [r["name"] for r in requests]
        )
        raise _Wait

    def _accept_inputs(self, run: RunState, given: dict[str, Any]) -> _Outcome:
        frame = run.top
        state = frame.flow.states[frame.state]
        specs = {spec.name: spec for spec in state.inputs}
        context = {"flow": frame.flow.name, "run_id": run.id, "state": state.name}
        for name in given:
            if name not in specs:
                raise InputError(
                    f"The run is not waiting for the input {name!r}; "
                    f"it waits for: {', '.join(specs)}.",
                    name=name,
                    **context,
                )
        choices = {
            r["name"]: r.get("choices") for r in (run.wait or {}).get("inputs", [])
        }
        for spec in specs.values():
            frame.inputs[spec.name] = _checked_input(
                spec, given, choices.get(spec.name), context
            )
        run.wait = None
        return _Outcome("ok")

    def _enter_subflow(
        self, run: RunState, frame: Frame, state: State, events: list[RunEvent]
    ) -> None:
        assert state.flow is not None
        if len(run.frames) >= MAX_NESTING:
            raise RunError(
                f"The state {state.name!r} of the flow {frame.flow.name!r} would "
                f"nest sub-flows more than {MAX_NESTING} deep; a flow may start "
                "itself without end.",
                flow=frame.flow.name,
                run_id=run.id,
                state=state.name,
            )
        child = self._compile(state.flow).flow
        inputs = _template.render(dict(state.args), self._scope(run, frame))
        now = self.clock()
        try:
            new = self._new_frame(child, _drop_none(inputs), now, run_id=run.id)
        except InputError as exc:
            raise RunError(
                f"The state {state.name!r} starts the flow {child.name!r} "
                f"with a bad input: {exc}",
                flow=frame.flow.name,
                run_id=run.id,
                state=state.name,
            ) from exc
        run.frames.append(new)
        run.history.append(HistoryEntry(child.name, new.state, None, None, now))
        events.append(self._event("entered", run, source=state.name))
        log.debug("run %s: %s enters %s/%s", run.id, state.name, child.name, new.state)

    def _finish(self, run: RunState, state: State, events: list[RunEvent]) -> bool:
        """Leave a final state; False when the whole run has ended."""
        frame = run.top
        scope = self._scope(run, frame)
        output = _template.render(dict(state.output), scope)
        message = _template.render(state.message, scope)
        texts = self._secret_texts(run)
        for key, value in output.items():
            spec = frame.flow.outputs.get(key)
            if spec is None or not spec.secret:
                output[key] = _masked(value, texts)
        message = _masked(message, texts)
        if len(run.frames) == 1:
            run.status = "ended"
            run.outcome = state.outcome
            run.final_state = state.name
            run.output = output
            run.message = None if message is None else str(message)
            run.wait = None
            events.append(self._event("ended", run, outcome=state.outcome))
            log.debug("run %s: ended in %s (%s)", run.id, state.name, state.outcome)
            return False

        run.frames.pop()
        parent = run.top
        parent_state = parent.flow.states[parent.state]
        keys = self._compile(parent.flow).keys[parent.state]
        event = state.name if state.name in keys else state.outcome
        context = {
            "output": output,
            "error": _error(event, message=None if message is None else str(message)),
        }
        self._handle(run, parent, parent_state, _Outcome(event, **context), events)
        return True

    # -- waiting, expiry, retries -------------------------------------

    def _wait_until(self, run: RunState, until: float, events: list[RunEvent]) -> None:
        run.status = "waiting"
        run.wait = {"kind": "time", "until": until}
        events.append(self._event("waiting", run, resume_at=until))
        raise _Wait

    def _expire(self, run: RunState, events: list[RunEvent]) -> bool:
        """Send the outermost expired frame to its expiry state.

        Returns True when that ended the run.
        """
        now = self.clock()
        expired = [
            depth
            for depth, frame in enumerate(run.frames)
            if frame.expires_at is not None and now >= frame.expires_at
        ]
        if not expired:
            return False

        depth = expired[0]
        frame = run.frames[depth]
        del run.frames[depth + 1 :]
        run.wait = None
        source = frame.state
        frame.expires_at = None
        target = frame.flow.on_expiry
        log.debug("run %s: %s expired in %s", run.id, frame.flow.name, source)
        if target is None:
            ending = State(
                name="expired",
                kind="final",
                outcome="expired",
                message=(
                    f"The flow {frame.flow.name!r} expired in the state "
                    f"{source!r} before it ended; start it again."
                ),
            )
            return not self._finish(run, ending, events)
        frame.state = target
        run.history.append(
            HistoryEntry(frame.flow.name, target, source, "expired", now)
        )
        events.append(self._event("transition", run, event="expired", source=source))
        return False

    def _retry_rule(self, state: State, event: str, frame: Frame) -> RetryRule | None:
        for rule in state.retry:
            if _matches_any(rule.errors, event):
                return rule if frame.retries < rule.attempts else None
        return None

    def _backoff(self, rule: RetryRule, attempt: int) -> float:
        try:
            delay = rule.interval * rule.backoff ** (attempt - 1)
        except OverflowError:  # many attempts of a steep backoff
            delay = math.inf
        cap = MAX_SECONDS if rule.max_delay is None else rule.max_delay
        delay = min(delay, cap)
        if rule.jitter == "full":
            delay *= self._random()
        return delay

    # -- guards ---------------------------------------------------------

    def _guard(self, condition: Condition, scope: Mapping[str, Any]) -> bool:
        if condition.guard in COMBINATORS:
            nested = (
                condition.args
                if isinstance(condition.args, tuple)
                else (condition.args,)
            )
            results = (self._guard(inner, scope) for inner in nested)
            if condition.guard == "all":
                return all(results)
            if condition.guard == "any":
                return any(results)
            return not next(results)
        function = self.registry.get_guard(condition.guard)
        try:
            return bool(function(_template.render(condition.args, scope)))
        except Exception as exc:
            raise _GuardFailed(condition.guard) from exc

    # -- documents and results ----------------------------------------

    def _new_frame(
        self, flow: Flow, given: dict[str, Any], now: float, *, run_id: str | None
    ) -> Frame:
        context = {"flow": flow.name, "run_id": run_id, "state": flow.initial}
        unknown = sorted(set(given) - set(flow.inputs))
        if unknown:
            allowed = ", ".join(flow.inputs) or "none"
            raise InputError(
                f"The flow {flow.name!r} has no input {unknown[0]!r}; "
                f"its inputs: {allowed}.",
                name=unknown[0],
                **context,
            )
        inputs = {
            spec.name: _checked_input(spec, given, None, context)
            for spec in flow.inputs.values()
        }
        frame = Frame(flow=flow, state=flow.initial, inputs=inputs)
        if flow.expires_in is not None:
            scope = {"inputs": inputs, "client": self.client.template_view()}
            what = f"The expires_in of the flow {flow.name!r}"
            frame.expires_at = now + _seconds(flow.expires_in, scope, what, context)
        return frame

    def _secret_texts(self, run: RunState) -> tuple[str, ...]:
        """The secret values of ``run`` that are text, longest first.

        The client secret, and each secret input and secret data of every
        frame whose value is text: these are masked wherever a value is
        kept or shown in clear. Secret data holding a structure (a token
        answer) is not taken apart: its other fields, such as
        ``token_type``, are not secret.
        """
        texts = {self.client.client_secret} if self.client.client_secret else set()
        for frame in run.frames:
            secrets = frame.flow.secret_names()
            for values in (frame.inputs, frame.data):
                texts.update(
                    value
                    for name, value in values.items()
                    if name in secrets and isinstance(value, str) and value
                )
        return tuple(sorted(texts, key=len, reverse=True))

    def _scope(self, run: RunState, frame: Frame, **extra: Any) -> dict[str, Any]:
        return {
            "inputs": frame.inputs,
            "data": frame.data,
            "client": self.client.template_view(),
            "run": {"id": run.id, "flow": frame.flow.name, "state": frame.state},
            **extra,
        }

    def _event(self, kind: str, run: RunState, **details: Any) -> RunEvent:
        return RunEvent(
            kind, run.id, run.top.flow.name, run.top.state, self.clock(), **details
        )

    def _stored(self, run: RunState, now: float) -> StoredRun:
        document, secrets = run.split(now)
        document["client"] = self.client.to_dict()
        return StoredRun(
            id=run.id,
            flow=run.root.name,
            status=run.status,
            version=run.version + 1 if run.version else 1,
            document=document,
            secrets=secrets,
            expires_at=run.expires_at,
            updated_at=now,
        )

    def _save(self, run: RunState, expected: int, events: list[RunEvent]) -> None:
        stored = self._stored(run, self.clock())
        if expected == 0:
            self.store.create(stored)
        else:
            self.store.save(stored, expected_version=expected)
        run.version = stored.version
        for event in events:
            for hook in self.hooks:
                hook(event)

    def _load_run(self, run_id: str) -> RunState:
        stored = self.store.load(run_id)
        document, secrets = stored.document, stored.secrets
        hidden = secrets.get("frames", {})
        frames = []
        for index, raw in enumerate(document["frames"]):
            flow = self._frame_flow(run_id, raw)
            secret = hidden.get(str(index), {})
            frames.append(
                Frame(
                    flow=flow,
                    state=raw["state"],
                    inputs={**raw["inputs"], **secret.get("inputs", {})},
                    data={**raw["data"], **secret.get("data", {})},
                    retries=raw["retries"],
                    expires_at=raw["expires_at"],
                )
            )
        return RunState(
            id=document["id"],
            frames=frames,
            created_at=document["created_at"],
            status=document["status"],
            wait=document["wait"],
            outcome=document["outcome"],
            final_state=document["final_state"],
            output={**document["output"], **secrets.get("output", {})},
            message=document["message"],
            error=document["error"],
            history=[HistoryEntry.from_dict(raw) for raw in document["history"]],
            version=stored.version,
        )

    def _frame_flow(self, run_id: str, frame: Mapping[str, Any]) -> Flow:
        """The flow a stored frame runs, checked to be the one it started with.

        Raises:
            RunError: the flow's file now holds another flow, its version or
                its definition changed, or it lacks the frame's state.
        """
        name, state = frame["flow"], frame["state"]
        context = {"flow": name, "run_id": run_id, "state": state}
        flow = self._located(frame, context)
        if flow.name != name:
            raise RunError(
                f"The run {run_id} runs the flow {name!r}, but its file "
                f"{flow.source} now holds the flow {flow.name!r}.",
                **context,
            )
        if flow.version != frame["flow_version"]:
            raise RunError(
                f"The run {run_id} was started with version "
                f"{frame['flow_version']} of the flow {name!r}, but version "
                f"{flow.version} is loaded.",
                **context,
            )
        if frame.get("flow_digest", flow.digest) != flow.digest:
            raise RunError(
                f"The flow {name!r} changed since the run {run_id} started, "
                f"though its version is still {flow.version}; the run cannot go on "
                "with another definition than its own (give a changed flow a "
                "new version).",
                **context,
            )
        if state not in flow.states:
            raise RunError(
                f"The run {run_id} is in the state {state!r}, which the flow "
                f"{name!r} no longer has.",
                **context,
            )
        return flow

    def _located(self, frame: Mapping[str, Any], context: Mapping[str, Any]) -> Flow:
        """A stored frame's flow: from its file, else as compiled, else by name.

        The file comes first: a file of the user's may declare the name of
        a shipped flow. A flow that has no file (made by ``parse_flow``) is
        found among those this engine compiled, by name and source.

        Raises:
            RunError: the flow was read from a file that is gone, and no
                flow of that name can be found instead.
        """
        name: str = frame["flow"]
        source = frame.get("source")
        if source and Path(source).is_file():
            return self._compile_file(Path(source)).flow
        compiled = self._by_name.get(name)
        if compiled is not None and compiled.flow.source == source:
            return compiled.flow
        if source and Path(source).is_absolute() and name not in self.catalog.names():
            raise RunError(
                f"The run {context['run_id']} runs the flow {name!r} from the file "
                f"{source}, which no longer exists; put the file back, or add a "
                f"folder holding it as {name}.yaml to the flow paths (--flows).",
                **context,
            )
        return self._compile(name).flow

    def _result(self, run: RunState) -> RunResult:
        wait = run.wait or {}
        return RunResult(
            run_id=run.id,
            flow=run.root.name,
            status=run.status,
            state=run.final_state or run.top.state,
            outcome=run.outcome,
            outputs=dict(run.output),
            message=run.message,
            waiting_for=self._waiting_for(run),
            resume_at=wait.get("until"),
            expires_at=run.expires_at,
            history=tuple(run.history),
            secret_outputs=run.root.secret_outputs(),
            error=run.error,
            revealed_outputs=run.root.revealed_outputs(),
        )

    def _waiting_for(self, run: RunState) -> tuple[InputRequest, ...]:
        """The inputs a run waits for, prompts and links filled in (secrets too)."""
        stored = (run.wait or {}).get("inputs", ())
        requests = tuple(InputRequest.from_dict(raw) for raw in stored)
        state = run.top.flow.states.get(run.top.state)
        if not requests or state is None:
            return requests
        specs = {spec.name: spec for spec in state.inputs}
        scope = self._scope(run, run.top)
        secrets = run.top.flow.secret_names()
        return tuple(
            _filled_in(request, specs[request.name], scope, secrets, reveal=True)
            if request.name in specs
            else request
            for request in requests
        )


# -- small helpers --------------------------------------------------------


def _filled_in(
    request: InputRequest,
    spec: InputSpec,
    scope: Mapping[str, Any],
    secrets: Container[str],
    *,
    reveal: bool,
) -> InputRequest:
    """``request`` with its spec's prompt and link filled in from ``scope``.

    A prompt or a link may show values of the run, such as the URL to open
    or an ``otpauth://`` URI. Unless ``reveal``, references to the secret
    inputs and data (named in ``secrets``), to the client secret and to a
    whole root show as ``***``, as the stored run keeps them. Either way
    ``link_is_secret`` says whether the link shows such a value.
    """
    hidden = None if reveal else secrets
    changes: dict[str, Any] = {}
    if isinstance(spec.prompt, Template):
        changes["prompt"] = _shown(spec.prompt, scope, hidden)
    if spec.link is not None:
        changes["link"] = _shown(spec.link, scope, hidden) or None
        changes["link_is_secret"] = _shows_secret(spec.link, secrets)
    return evolve(request, **changes)


def _shown(
    text: str | Template, scope: Mapping[str, Any], hidden: Container[str] | None
) -> str:
    """``text`` filled in from ``scope``, with ``***`` where :func:`_hides` says.

    ``hidden`` names the secret inputs and data; ``None`` shows everything.
    """
    if not isinstance(text, Template):
        return text
    parts: list[str | Reference] = [
        "***"
        if isinstance(part, Reference) and hidden is not None and _hides(part, hidden)
        else part
        for part in text.parts
    ]
    # A leading empty part keeps the result text, even for a lone reference.
    shown = _template.render(Template(text.source, ("", *parts)), scope)
    return str(shown)


def _shows_secret(text: str | Template, secrets: Container[str]) -> bool:
    """Whether filling ``text`` in shows a secret value."""
    if not isinstance(text, Template):
        return False
    return any(_hides(reference, secrets) for reference in text.references)


def _hides(reference: Reference, hidden: Container[str]) -> bool:
    """Whether ``***`` stands in for what ``reference`` names, where it is hidden."""
    if not reference.path:
        return True
    if reference.root == "client":
        return reference.path[0] == "client_secret"
    return reference.root in ("inputs", "data") and reference.path[0] in hidden


def _without(values: dict[str, Any], texts: Container[str]) -> dict[str, Any]:
    """``values`` with every text among ``texts`` replaced by ``None``."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return None if value in texts else value
        if isinstance(value, Mapping):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(item) for item in value]
        return value

    return {key: scrub(value) for key, value in values.items()}


def _check_discovered_issuer(
    document: Mapping[str, Any], issuer: str, context: Mapping[str, Any]
) -> None:
    """Refuse endpoints of a discovery document that names another issuer.

    OpenID Connect Discovery 1.0 section 4.3 and RFC 8414 section 3.3: the
    ``issuer`` of the document must be the issuer it was fetched for, or
    a server (or whoever answers in its place) could send the flow's
    passwords and codes elsewhere. Only a trailing slash may differ.

    Raises:
        RunError: the document's issuer is missing or another one.
    """
    named = document.get("issuer")
    if isinstance(named, str) and named.rstrip("/") == issuer.rstrip("/"):
        return
    said = (
        f"names the issuer {safe_url(named)!r}"
        if isinstance(named, str) and named
        else "names no issuer"
    )
    raise RunError(
        f"The discovery document of {safe_url(issuer)} {said}; its endpoints are "
        "not used, as they may belong to another server.",
        **context,
    )


def _is_server_event(code: str, secrets: tuple[str, ...]) -> bool:
    """Whether a server's OAuth ``error`` code may be used as an event name.

    It must be a name a flow file could write, not one of the engine's own
    events (``ok``, ``expired``, ``transport.timeout``, ``http.500``, ...),
    and hold none of the run's secrets: events are logged and recorded.
    """
    if not _SERVER_CODE.fullmatch(code) or code in _RESERVED_EVENTS:
        return False
    if code.startswith(_RESERVED_PREFIXES):
        return False
    return not any(secret in code for secret in secrets)


def _masked(value: Any, texts: tuple[str, ...]) -> Any:
    """``value`` with every occurrence of each of ``texts`` in its text as ``***``."""
    if not texts:
        return value
    if isinstance(value, str):
        for text in texts:
            value = value.replace(text, "***")
        return value
    if isinstance(value, Mapping):
        return {key: _masked(item, texts) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, texts) for item in value]
    return value


def _unhandled(
    run: RunState, frame: Frame, state: State, outcome: _Outcome
) -> UnhandledEvent:
    """The error for an event no transition takes; an OAuth error's names it."""
    context = {"flow": frame.flow.name, "run_id": run.id, "state": state.name}
    error = outcome.scope.get("error") or {}
    if "response" in outcome.scope and error.get("code") == outcome.event:
        return UnhandledServerError(
            error["code"], error["description"], error["status"], **context
        )
    return UnhandledEvent(
        f"The state {state.name!r} of the flow {frame.flow.name!r} has no "
        f"transition for the event {outcome.event!r}.",
        event=outcome.event,
        **context,
    )


def _action_failure(action: str, exc: Exception) -> str:
    """What ``${error.message}`` says of an action that raised ``exc``.

    The message of an :class:`~mfaflow.ActionError`, which the action says
    is safe to show; of any other exception, only its class: its text may
    quote a value of the run, which may be secret.
    """
    if isinstance(exc, ActionError):
        return exc.msg
    return f"The action {action!r} failed with {_kind(exc)}."


def _kind(exc: BaseException | None) -> str:
    """The exception's class, as ``re.error`` or ``ValueError``; never its text.

    The text may quote values of the run, which may be secret.
    """
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
    return module + kind.__qualname__


def _form_encoded(text: str) -> str:
    """``text`` as application/x-www-form-urlencoded writes it (a space is ``+``)."""
    return quote_plus(text, safe="")


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _context(
    run: RunState, frame: Frame, state: str, event: str | None = None
) -> dict[str, Any]:
    """What a RunError raised in ``state`` of ``frame`` carries."""
    return {"flow": frame.flow.name, "run_id": run.id, "state": state, "event": event}


def _text(value: Any, what: str, context: Mapping[str, Any]) -> str:
    """``value`` if it is text that is not empty; ``what`` names it otherwise."""
    if not isinstance(value, str) or not value:
        raise RunError(f"{what} must be text, not {_kind_of(value)}.", **context)
    return value


def _kind_of(value: Any) -> str:
    """What a filled-in value is, for messages; never a value that may be secret.

    Text and numbers are shown, as they are what was expected; a mapping
    or a list (which may be a whole answer, tokens and all) only by kind.
    """
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value == "":
        return "empty text"
    return repr(value)


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(item) for item in value]
    return value


def _fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Form, query or header fields: ``None`` left out, the rest as text."""
    fields: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, list):
            fields[name] = [_scalar_text(item) for item in value]
        else:
            fields[name] = _scalar_text(value)
    return fields


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value)


def _seconds(
    value: Any, scope: Mapping[str, Any], what: str, context: Mapping[str, Any]
) -> float:
    """``value`` filled in as a number of seconds; ``what`` names it otherwise."""
    found = _template.render(value, scope)
    try:
        seconds = float(found)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(found, bool) or not math.isfinite(seconds):
        shown = _kind_of(found)
        raise RunError(f"{what} must be a number of seconds, not {shown}.", **context)
    if not 0 <= seconds <= MAX_SECONDS:
        raise RunError(
            f"{what} must be a number of seconds from 0 to {MAX_SECONDS} "
            f"(ten years), not {_kind_of(found)}.",
            **context,
        )
    return seconds


def _parse_body(raw: bytes) -> tuple[Any, bool]:
    """The body as JSON, and whether it parsed; an empty body is ``None``.

    The parser is the transports' own: a body nested too deeply, or holding
    ``NaN`` or an infinity, does not parse.
    """
    if not raw.strip():
        return None, True
    try:
        return parse_json(raw), True
    except ValueError:
        return None, False


def _transport_event(exc: TransportError) -> str:
    """The event of a failed exchange.

    ``transport.connect`` and ``transport.tls`` say the request was never
    sent, so any call may be repeated; the others say it may have reached
    the server, so a flow repeats only calls that are safe to repeat.
    """
    if isinstance(exc, TLSError):
        return "transport.tls"
    if isinstance(exc, ConnectError):
        return "transport.connect"
    if isinstance(exc, ConnectionDropped):
        return "transport.dropped"
    if isinstance(exc, TransportTimeout):
        return "transport.timeout"
    if isinstance(exc, ResponseTooLarge):
        return "response.too_large"
    return "transport.error"


def _error(
    event: str,
    *,
    status: int | None = None,
    code: str | None = None,
    description: str = "",
    message: str | None = None,
) -> dict[str, Any]:
    if message is None:
        message = description or f"The server answered {event}."
    return {
        "event": event,
        "status": status,
        "code": code,
        "description": description,
        "message": message,
    }


def _checked_input(
    spec: InputSpec, given: Mapping[str, Any], choices: Any, context: Mapping[str, Any]
) -> Any:
    if spec.name not in given or given[spec.name] is None:
        if spec.required:
            raise InputError(
                f"The input {spec.name!r} is required.", name=spec.name, **context
            )
        return spec.default

    value = given[spec.name]
    if spec.pattern is not None and not re.fullmatch(spec.pattern, str(value)):
        shown = "" if spec.secret else f" {value!r}"
        raise InputError(
            f"The input {spec.name!r}{shown} does not match "
            f"the pattern {spec.pattern!r}.",
            name=spec.name,
            **context,
        )
    if choices and value not in choices:
        shown = "The value" if spec.secret else repr(value)
        raise InputError(
            f"{shown} is not one of the choices for {spec.name!r}: "
            f"{', '.join(map(str, choices))}.",
            name=spec.name,
            **context,
        )
    return value
