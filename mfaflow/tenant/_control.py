"""The control endpoints under ``/__control``: the test side of the tenant.

They exist only on a tenant built with ``control=True`` (404 elsewhere) and
do what a phone, a mailbox, an authenticator app or time itself would do:

- ``GET /__control/outbox[?user=&channel=]``: the codes sent, with their values;
- ``GET /__control/outbox/last?user=...[&channel=]``: ``{"code": ...}``;
- ``GET /__control/pushes[?user=]``: pending push requests;
- ``POST /__control/pushes/approve`` and ``/reject`` with ``{"user": ...}``
  or ``{"id": ...}``: decide the newest pending push (or the one named);
- ``GET /__control/authenticators/{id}/totp``: the current TOTP code;
- ``GET /__control/clock`` and ``POST /__control/clock/advance``
  ``{"seconds": N}``: read and move the tenant's clock;
- ``POST /__control/users`` ``{"email", "password", "mfa", "name", "id",
  "blocked", "password_leaked"}``: add a user (201);
- ``POST /__control/users/block`` and ``/unblock`` with ``{"user": ...}``:
  block a user's logins, or lift that block and a brute-force block.

Bodies are JSON or forms; a user is named by id or email.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from werkzeug.wrappers import Request, Response

from ._app import ROUTES
from ._errors import OAuthError
from ._http import Params, json_response
from ._state import PushRequest, User

if TYPE_CHECKING:
    from ._tenant import Tenant


def _user_id(tenant: Tenant, user: str | None) -> str | None:
    if user is None:
        return None
    found = tenant.find_user(user)
    if found is None:
        raise OAuthError("not_found", f"No user {user!r}.", 404)
    return found.id


@ROUTES.route("/__control/outbox", control=True)
def outbox(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """List the messages sent, codes included."""
    user_id = _user_id(tenant, request.args.get("user"))
    messages = tenant.outbox.messages(
        user_id=user_id, channel=request.args.get("channel")
    )
    return json_response({"messages": [m.to_json() for m in messages]})


@ROUTES.route("/__control/outbox/last", control=True)
def last_code(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Return the newest code sent to a user."""
    user = request.args.get("user")
    if user is None:
        raise OAuthError("invalid_request", "Missing required query parameter: user.")
    return json_response({"code": tenant.last_code(user, request.args.get("channel"))})


@ROUTES.route("/__control/pushes", control=True)
def pushes(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """List the push requests waiting for a decision."""
    pending = tenant.pending_pushes(request.args.get("user"))
    return json_response({"pushes": [_push_json(p) for p in pending]})


@ROUTES.route("/__control/pushes/<decision>", methods=("POST",), control=True)
def decide(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Approve or reject a pending push."""
    params = Params.of(request)
    user, request_id = params.get("user"), params.get("id")
    if args["decision"] == "approve":
        decided = tenant.approve_push(user, request_id=request_id)
    elif args["decision"] == "reject":
        decided = tenant.reject_push(user, request_id=request_id)
    else:
        msg = f"Unknown decision {args['decision']!r}; use 'approve' or 'reject'."
        raise OAuthError("not_found", msg, 404)
    return json_response(_push_json(decided))


def _push_json(push: PushRequest) -> dict[str, Any]:
    return attrs.asdict(push)


@ROUTES.route("/__control/authenticators/<authenticator_id>/totp", control=True)
def totp(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Return the current TOTP code of an OTP authenticator."""
    return json_response({"code": tenant.current_totp(args["authenticator_id"])})


@ROUTES.route("/__control/clock", control=True)
def clock(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Return the tenant's time."""
    return json_response({"now": tenant.clock.now()})


@ROUTES.route("/__control/clock/advance", methods=("POST",), control=True)
def advance(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Move the tenant's clock forward."""
    raw = Params.of(request).raw("seconds")
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(raw, bool) or math.isnan(seconds):
        msg = f"seconds must be a number; got {raw!r}."
        raise OAuthError("invalid_request", msg)
    try:
        tenant.clock.advance(seconds)
    except ValueError as exc:
        raise OAuthError("invalid_request", str(exc)) from exc
    return json_response({"now": tenant.clock.now()})


@ROUTES.route("/__control/users", methods=("POST",), control=True)
def add_user(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Add a user to the database connection."""
    params = Params.of(request)
    user = tenant.add_user(
        params.require("email"),
        params.require("password"),
        mfa=params.get("mfa") or "never",
        name=params.get("name") or "",
        user_id=params.get("id"),
        blocked=params.flag("blocked"),
        password_leaked=params.flag("password_leaked"),
    )
    return json_response(_user_json(user), 201)


@ROUTES.route("/__control/users/<action>", methods=("POST",), control=True)
def block(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Block a user, or lift their blocks."""
    user = Params.of(request).require("user")
    if args["action"] == "block":
        changed = tenant.block_user(user)
    elif args["action"] == "unblock":
        changed = tenant.unblock_user(user)
    else:
        msg = f"Unknown action {args['action']!r}; use 'block' or 'unblock'."
        raise OAuthError("not_found", msg, 404)
    return json_response(_user_json(changed))


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "mfa": user.mfa,
        "blocked": user.blocked,
        "password_leaked": user.password_leaked,
    }
