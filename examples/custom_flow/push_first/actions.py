"""The ``pick_push`` action: find the push authenticator to challenge first.

mfaflow registers it under the name ``pick_push`` through the entry point
this package declares in the ``mfaflow.actions`` group; a flow file uses it
as ``action: pick_push``. Like every action, it is called with the run's
context and the state's ``with:`` arguments (templates already filled in),
and answers with an event and a result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mfaflow import ActionContext, ActionError, ActionResult

__all__ = ["pick_push"]

#: Auth0's factor type of a push authenticator, in ``mfa_requirements``.
PUSH_TYPE = "push-notification"


def pick_push(context: ActionContext, args: Mapping[str, Any]) -> ActionResult:
    """Choose the user's first active push authenticator.

    Args:
        context: the run calling the action (unused: the choice depends on
            the arguments alone).
        args: ``authenticators``, the list ``GET /mfa/authenticators``
            gave; ``requirements``, the ``mfa_requirements`` of the
            ``mfa_required`` answer (a mapping, its JSON text, or null).

    Returns:
        ``ok`` with ``{"id": ..., "name": ...}`` of the push authenticator;
        ``none`` when the user has no active one, or when ``requirements``
        lists challenge types without push.
    """
    if not _push_allowed(args.get("requirements")):
        return ActionResult("none")
    for authenticator in args.get("authenticators") or ():
        if _is_active_push(authenticator):
            chosen = {"id": authenticator["id"], "name": authenticator.get("name")}
            return ActionResult("ok", chosen)
    return ActionResult("none")


def _is_active_push(authenticator: Any) -> bool:
    """Whether a listed authenticator is an active push (Guardian) one.

    Auth0 lists the channel as ``oob_channel``; some answers carry the
    plural ``oob_channels`` list instead, so both are read.
    """
    if not isinstance(authenticator, Mapping) or "id" not in authenticator:
        return False
    if authenticator.get("active") is False:
        return False
    if authenticator.get("type") == PUSH_TYPE:
        return True
    channels = authenticator.get("oob_channels") or authenticator.get("oob_channel")
    return authenticator.get("authenticator_type") == "oob" and "auth0" in _listed(
        channels
    )


def _push_allowed(requirements: Any) -> bool:
    """Whether ``mfa_requirements`` lets a push be challenged (true when silent)."""
    if isinstance(requirements, str) and requirements.strip():
        try:
            requirements = json.loads(requirements)
        except ValueError:
            # ActionError: the message is safe to show as the run's error.
            msg = "mfa_requirements must be the JSON object of the mfa_required answer."
            raise ActionError(msg) from None
    if not isinstance(requirements, Mapping):
        return True
    challenge = requirements.get("challenge")
    if not isinstance(challenge, list):
        return True
    return any(
        isinstance(entry, Mapping) and entry.get("type") == PUSH_TYPE
        for entry in challenge
    )


def _listed(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return ()
