"""The registry of actions and guards that flow files may name.

A flow file names actions (``action: pkce``) and guards (``when: {equals:
[...]}``). The engine looks those names up here, and only here: a name is
never imported as a Python path. The registry holds the built-ins and, when
asked, what installed packages register under the entry-point groups
``mfaflow.actions`` and ``mfaflow.guards`` (the entry point's name is the
name flow files use; its object is the function).

An action is called as ``action(context, args)`` with an
:class:`ActionContext` and its ``with:`` arguments, already filled in. It
returns an :class:`ActionResult`, or a mapping (the result of the event
``ok``), or ``None`` (``ok`` with no result); it fails by raising
:class:`~mfaflow.ActionError`, whose message the run may show, or any
other exception, which the run shows by its class alone. A guard is called
with its filled-in arguments and returns a ``bool``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urljoin

from attrs import field, frozen

from ._errors import RegistryError

__all__ = [
    "AUTH0_ENDPOINTS",
    "COMBINATORS",
    "ActionContext",
    "ActionResult",
    "Registry",
    "default_registry",
]

log = logging.getLogger(__name__)

#: Where Auth0 serves what OpenID Connect discovery may name, used when
#: discovery fails or lacks an entry (Auth0 lists no MFA endpoints there).
AUTH0_ENDPOINTS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/oauth/token",
    "userinfo_endpoint": "/userinfo",
    "jwks_uri": "/.well-known/jwks.json",
    "revocation_endpoint": "/oauth/revoke",
    "mfa_challenge_endpoint": "/mfa/challenge",
    "mfa_associate_endpoint": "/mfa/associate",
    "mfa_authenticators_endpoint": "/mfa/authenticators",
}

#: Guards that combine other guards; the engine evaluates them itself.
COMBINATORS = frozenset({"all", "any", "not"})


@frozen
class ActionResult:
    """What an action returns: the event it ends with and a result value.

    ``result`` is available to the state's transitions as ``${result}``.
    """

    event: str = "ok"
    result: Any = None


@frozen(repr=False)
class ActionContext:
    """What an action may know of the run calling it."""

    run_id: str
    flow: str
    state: str
    client: Any
    now: float
    #: The run's saved data, read-only; secret values included, so actions
    #: must not log it.
    data: Mapping[str, Any] = field(factory=dict)
    #: Finds endpoint URLs; see :meth:`endpoint`.
    resolve_endpoint: Callable[[str], str] | None = field(
        default=None, repr=False, eq=False
    )

    def endpoint(self, name: str) -> str:
        """The full URL of the endpoint ``name``, as OpenID Connect names it.

        From the issuer's discovery document when the engine has one, else
        Auth0's path (:data:`AUTH0_ENDPOINTS`) below the client's issuer.
        """
        if self.resolve_endpoint is not None:
            return self.resolve_endpoint(name)
        issuer = str(self.client.issuer)
        return urljoin(
            issuer if issuer.endswith("/") else issuer + "/", AUTH0_ENDPOINTS[name]
        )

    def __repr__(self) -> str:
        return f"<ActionContext run={self.run_id} flow={self.flow} state={self.state}>"


Action = Callable[
    [ActionContext, Mapping[str, Any]], "ActionResult | Mapping[str, Any] | None"
]
Guard = Callable[..., bool]


class Registry:
    """Named actions and guards.

    Args:
        builtins: register mfaflow's own actions and guards.
        plugins: also register what installed packages declare under the
            ``mfaflow.actions`` and ``mfaflow.guards`` entry-point groups.
    """

    def __init__(self, *, builtins: bool = True, plugins: bool = True) -> None:
        self._actions: dict[str, Action] = {}
        self._guards: dict[str, Guard] = {}
        if builtins:
            from . import _builtins

            _builtins.register(self)
        if plugins:
            self._load_plugins()

    def action(self, name: str) -> Callable[[Action], Action]:
        """Decorator: register the decorated function as the action ``name``."""

        def register(function: Action) -> Action:
            self.add_action(name, function)
            return function

        return register

    def guard(self, name: str) -> Callable[[Guard], Guard]:
        """Decorator: register the decorated function as the guard ``name``."""

        def register(function: Guard) -> Guard:
            self.add_guard(name, function)
            return function

        return register

    def add_action(self, name: str, function: Action) -> None:
        """Register ``function`` as the action ``name``, replacing any other."""
        self._actions[_checked_name(name, function)] = function

    def add_guard(self, name: str, function: Guard) -> None:
        """Register ``function`` as the guard ``name``, replacing any other."""
        if name in COMBINATORS:
            raise RegistryError(f"The guard name {name!r} is reserved.")
        self._guards[_checked_name(name, function)] = function

    def get_action(self, name: str) -> Action:
        try:
            return self._actions[name]
        except KeyError:
            raise RegistryError(_unknown("action", name, self._actions)) from None

    def get_guard(self, name: str) -> Guard:
        try:
            return self._guards[name]
        except KeyError:
            raise RegistryError(_unknown("guard", name, self._guards)) from None

    def action_names(self) -> frozenset[str]:
        return frozenset(self._actions)

    def guard_names(self) -> frozenset[str]:
        return frozenset(self._guards) | COMBINATORS

    def _load_plugins(self) -> None:
        for group, add in (
            ("mfaflow.actions", self.add_action),
            ("mfaflow.guards", self.add_guard),
        ):
            for entry in entry_points(group=group):
                try:
                    add(entry.name, entry.load())
                except Exception as exc:
                    log.warning(
                        "Skipped the plugin %r of %s (%s: %s).",
                        entry.name,
                        group,
                        type(exc).__name__,
                        exc,
                    )


def _checked_name(name: str, function: object) -> str:
    if not name or not isinstance(name, str):
        raise RegistryError(
            f"A registered name must be a non-empty string, not {name!r}."
        )
    if not callable(function):
        raise RegistryError(
            f"{name!r} must be registered with a callable, not {function!r}."
        )
    return name


def _unknown(kind: str, name: str, known: Mapping[str, object]) -> str:
    choices = ", ".join(sorted(known)) or "none"
    return f"No {kind} is registered as {name!r}; registered: {choices}."


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry with built-ins and plugins, made on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default
