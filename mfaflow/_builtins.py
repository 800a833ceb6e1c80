"""The actions and guards every registry starts with."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _auth0_actions
from ._errors import ActionError
from ._registry import ActionContext

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["register"]


def register(registry: Registry) -> None:
    """Add the built-in actions and guards to ``registry``."""
    for name, guard in _GUARDS.items():
        registry.add_guard(name, guard)
    registry.add_action("pkce", pkce)
    registry.add_action("random", random_values)
    _auth0_actions.register(registry)


def _pair(args: Any, guard: str) -> tuple[Any, Any]:
    if not isinstance(args, list | tuple) or len(args) != 2:
        raise ValueError(f"The guard {guard!r} takes a list of two values.")
    return args[0], args[1]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _equals(args: Any) -> bool:
    left, right = _pair(args, "equals")
    return bool(left == right)


def _not_equals(args: Any) -> bool:
    return not _equals(args)


def _matches(args: Any) -> bool:
    value, pattern = _pair(args, "matches")
    return value is not None and re.fullmatch(str(pattern), str(value)) is not None


def _one_of(args: Any) -> bool:
    value, choices = _pair(args, "one_of")
    return value in (choices or ())


_GUARDS = {
    "equals": _equals,
    "not_equals": _not_equals,
    "present": lambda value: not _empty(value),
    "absent": _empty,
    "matches": _matches,
    "one_of": _one_of,
}


def pkce(context: ActionContext, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Make a PKCE pair (RFC 7636): ``code_verifier``, ``code_challenge``, ``method``.

    ``with: {method: S256}`` (the default) or ``plain``.
    """
    method = args.get("method", "S256")
    if method not in ("S256", "plain"):
        raise ActionError(f"PKCE method must be 'S256' or 'plain', not {method!r}.")
    verifier = secrets.token_urlsafe(48)
    challenge = verifier
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return {"code_verifier": verifier, "code_challenge": challenge, "method": method}


def random_values(context: ActionContext, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Make unguessable URL-safe strings, one per name in ``with: {names: [...]}``.

    Used for the ``state`` and ``nonce`` of an authorization request.
    """
    names = args.get("names") or ["value"]
    return {str(name): secrets.token_urlsafe(24) for name in names}
