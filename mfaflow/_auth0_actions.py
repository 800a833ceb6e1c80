"""Actions the shipped Auth0 flows use, registered as built-ins.

Each action does one small thing a template cannot: pick the first value
given, build an authorization URL, read a callback URL, choose an
authenticator or the factors to offer for enrolment, count attempts, grow a
polling interval, summarise a list of authenticators. None of them sends a
request or logs a value: the flows do the talking, and the values may be
secret.

Authenticators are read as ``GET /mfa/authenticators`` lists them. Where
sources disagree, both forms are read: ``oob_channel`` (real payloads) and
``oob_channels`` (the reference pages), and lists with or without ``type``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

from ._errors import ActionError
from ._registry import ActionContext, ActionResult

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["register"]

_T = TypeVar("_T")
#: The kind of an authenticator, by ``authenticator_type`` and OOB channel.
_OOB_KINDS = {"sms": "sms", "voice": "voice", "email": "email", "auth0": "push"}
#: Auth0's factor type (as in ``mfa_requirements``) of each kind.
_FACTOR_TYPES = {
    "otp": "otp",
    "sms": "phone",
    "voice": "phone",
    "email": "email",
    "push": "push-notification",
    "recovery-code": "recovery-code",
}
#: The factors mfa-enroll enrols, in the order it offers them.
_ENROLLABLE = ("otp", "sms", "voice", "email", "push")
#: The factors of each factor type ``mfa_requirements.enroll`` may list.
_ENROLLED_AS = {
    "otp": ("otp",),
    "phone": ("sms", "voice"),
    "email": ("email",),
    "push-notification": ("push",),
}
#: Factors offered whatever ``enroll`` lists. Sources disagree on email:
#: Auth0's docs give the factor type ``email`` for challenges only, so an
#: ``enroll`` list leaves it out, yet its MFA API guide enrols email with
#: ``/mfa/associate``. A tenant that refuses it says so when asked.
_ALWAYS_OFFERED = frozenset({"email"})
#: How a person is told where a code went, by kind.
_VIA = {
    "otp": "your authenticator app",
    "sms": "text message",
    "voice": "voice call",
    "email": "email",
    "push": "push notification",
    "recovery-code": "recovery code",
}
#: The fields of an authenticator a flow may show (names are masked by the tenant).
_SHOWN = ("id", "type", "authenticator_type", "oob_channel", "name", "active")


def register(registry: Registry) -> None:
    """Add the actions of the shipped Auth0 flows to ``registry``."""
    registry.add_action("coalesce", coalesce)
    registry.add_action("authorize_url", authorize_url)
    registry.add_action("parse_callback", parse_callback)
    registry.add_action("choose_authenticator", choose_authenticator)
    registry.add_action("enrolment_factors", enrolment_factors)
    registry.add_action("next_attempt", next_attempt)
    registry.add_action("increase", increase)
    registry.add_action("summarize_authenticators", summarize_authenticators)
    registry.add_action("find_authenticator", find_authenticator)


# -- values -------------------------------------------------------------------


def coalesce(context: ActionContext, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Give each name the first of its candidates that is not null or empty.

    ``with: {audience: ['${inputs.audience}', '${client.audience}']}``
    gives ``{audience: ...}``; a name whose candidates are all empty gets
    ``None``.
    """
    result: dict[str, Any] = {}
    for name, candidates in args.items():
        listed = candidates if isinstance(candidates, list | tuple) else [candidates]
        result[name] = next((value for value in listed if not _empty(value)), None)
    return result


def next_attempt(context: ActionContext, args: Mapping[str, Any]) -> ActionResult:
    """Count one more failed attempt; ``exhausted`` once ``limit`` is reached.

    ``with: {attempt: '${data.attempts}', limit: 3}``; a null ``attempt``
    counts as 0. The result is ``{attempt: n}``, the new count.
    """
    attempt = _whole_number(args.get("attempt") or 0, "attempt") + 1
    limit = _whole_number(args.get("limit", 3), "limit")
    event = "exhausted" if attempt >= limit else "ok"
    return ActionResult(event, {"attempt": attempt})


def increase(context: ActionContext, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Add ``by`` to ``value`` (a number of seconds), up to ``max``.

    Polling uses it to wait longer after ``slow_down``, as RFC 8628 asks.
    A null ``value`` counts as ``start`` (5 by default).
    """
    value = args.get("value")
    current = _number(args.get("start", 5) if value is None else value, "value")
    grown = current + _number(args.get("by", 5), "by")
    if args.get("max") is not None:
        grown = min(grown, _number(args["max"], "max"))
    return {"value": grown}


# -- the authorization request -------------------------------------------------


def authorize_url(context: ActionContext, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Build the ``/authorize`` URL a browser opens to sign in.

    ``params`` are the query parameters (null ones are left out);
    ``offline_access`` (``true`` or ``false``) adds the ``offline_access``
    scope to ``params.scope`` when it is not there yet; ``endpoint`` is the
    authorization endpoint, relative to the issuer or a full URL; by
    default the ``authorization_endpoint`` of the issuer's discovery
    document (Auth0's ``/authorize`` when there is none).
    """
    params = {
        str(name): str(value)
        for name, value in (args.get("params") or {}).items()
        if not _empty(value)
    }
    if _truthy(args.get("offline_access")):
        scopes = params.get("scope", "").split()
        if "offline_access" not in scopes:
            params["scope"] = " ".join([*scopes, "offline_access"])
    if args.get("endpoint"):
        issuer = str(context.client.issuer)
        base = issuer if issuer.endswith("/") else issuer + "/"
        endpoint = urljoin(base, str(args["endpoint"]))
    else:
        endpoint = context.endpoint("authorization_endpoint")
    separator = "&" if urlsplit(endpoint).query else "?"
    return {"url": endpoint + separator + urlencode(params)}


def parse_callback(context: ActionContext, args: Mapping[str, Any]) -> ActionResult:
    """Read the URL the browser was sent back to after ``/authorize``.

    The result has ``code``, ``state``, ``iss``, ``error`` and
    ``error_description`` (each null when absent), from the query or,
    failing that, the fragment. Events:

    - ``wrong_issuer``: ``with`` gives the ``issuer`` the request went to
      and the callback's ``iss`` (RFC 9207) names another, so another
      server answered (a mix-up attack); the two are compared as text, a
      trailing slash aside;
    - ``ok``: the URL carries a ``code`` or an ``error``;
    - ``invalid``: it carries neither (the person pasted something else).

    A callback without ``iss`` is read as ``ok``: servers that do not
    implement RFC 9207 send none.
    """
    text = str(args.get("url") or "").strip()
    parts = urlsplit(text)
    fields = parse_qs(parts.query) or parse_qs(parts.fragment)
    found = {
        name: (fields[name][0] if fields.get(name) else None)
        for name in ("code", "state", "iss", "error", "error_description")
    }
    if not _same_issuer(found["iss"], args.get("issuer")):
        return ActionResult("wrong_issuer", found)
    event = "ok" if found["code"] or found["error"] else "invalid"
    return ActionResult(event, found)


def _same_issuer(iss: str | None, issuer: Any) -> bool:
    """Whether a callback's ``iss`` names ``issuer``; true when either is absent."""
    if iss is None or _empty(issuer):
        return True
    return iss.rstrip("/") == str(issuer).rstrip("/")


# -- authenticators -------------------------------------------------------------


def choose_authenticator(
    context: ActionContext, args: Mapping[str, Any]
) -> ActionResult:
    """Choose the authenticator to challenge for an ``mfa_required`` answer.

    ``with``: ``authenticators`` (as listed by the tenant), ``requirements``
    (the ``mfa_requirements`` of the answer, a mapping or its JSON text;
    when it lists ``challenge`` types, only those are usable) and
    ``preselect`` (an authenticator's id, its label, or a kind: ``otp``,
    ``sms``, ``voice``, ``email``, ``push``, ``recovery-code``).

    Only active authenticators are usable. Events:

    - ``ok``: one was chosen (the preselected one, or the only factor);
      the result's ``chosen`` describes it;
    - ``ask``: several can be used; ``choices`` lists their labels;
    - ``enrol``: the user has no active authenticator;
    - ``unsupported``: none of the active ones is of an accepted type;
    - ``not_found``: nothing usable matches ``preselect``.

    A recovery code is offered among several choices, or when preselected,
    but never chosen on its own.
    """
    listed = [_described(item) for item in _authenticators(args.get("authenticators"))]
    active = [item for item in listed if item["active"] and item["kind"]]
    allowed = _requirement_types(args.get("requirements"), "challenge")
    usable = [item for item in active if allowed is None or item["type"] in allowed]
    _label_uniquely(usable)
    choices = [item["label"] for item in usable]

    preselect = args.get("preselect")
    if not _empty(preselect):
        chosen = _matching(usable, str(preselect))
        if chosen is None:
            return ActionResult("not_found", {"choices": choices})
        return ActionResult("ok", {"chosen": chosen, "choices": choices})

    factors = [item for item in usable if item["kind"] != "recovery-code"]
    if len(factors) == 1:
        return ActionResult("ok", {"chosen": factors[0], "choices": choices})
    if len(factors) > 1:
        return ActionResult("ask", {"choices": choices})
    if any(item["kind"] != "recovery-code" for item in active):
        return ActionResult("unsupported", {"choices": choices})
    return ActionResult("enrol", {"choices": choices})


def enrolment_factors(context: ActionContext, args: Mapping[str, Any]) -> ActionResult:
    """Choose the factors to offer for enrolment, as ``mfa_requirements`` allows.

    ``with``: ``requirements`` (the ``mfa_requirements`` of the
    ``mfa_required`` answer, a mapping or its JSON text) and ``factors``
    (those the flow can enrol; by default ``otp``, ``sms``, ``voice``,
    ``email``, ``push``). When the requirements list ``enroll`` types, the
    result's ``factors`` keeps, in the order given, those of a listed type
    (``phone`` stands for ``sms`` and ``voice``, ``push-notification`` for
    ``push``) and ``email``, which such a list does not name (see
    :data:`_ALWAYS_OFFERED`); otherwise all of them. Auth0's SDKs read
    ``enroll``, though its documentation does not show it. Events:

    - ``ok``: ``factors`` lists at least one;
    - ``none``: none of ``factors`` is of a listed type (a flow that
      cannot enrol email, and a tenant that lists only WebAuthn, say); the
      result's ``types`` lists the types.
    """
    offered = [str(factor) for factor in args.get("factors") or _ENROLLABLE]
    allowed = _requirement_types(args.get("requirements"), "enroll")
    if allowed is None:
        return ActionResult("ok", {"factors": offered})

    accepted = {f for kind in allowed for f in _ENROLLED_AS.get(kind, ())}
    accepted |= _ALWAYS_OFFERED
    factors = [factor for factor in offered if factor in accepted]
    if not factors:
        return ActionResult("none", {"factors": [], "types": sorted(allowed)})
    return ActionResult("ok", {"factors": factors})


def summarize_authenticators(
    context: ActionContext, args: Mapping[str, Any]
) -> Mapping[str, Any]:
    """Describe the listed authenticators for people: ids, types, names, active.

    The result has ``authenticators`` (each with ``id``, ``type``,
    ``authenticator_type``, ``oob_channel``, ``name`` and ``active``),
    ``count``, and ``text`` (``"1 authenticator"``, ``"3 authenticators"``).
    """
    listed = _authenticators(args.get("authenticators"))
    shown = []
    for item in listed:
        described = _described(item)
        shown.append({field: described.get(field) for field in _SHOWN})
    noun = "authenticator" if len(shown) == 1 else "authenticators"
    return {
        "authenticators": shown,
        "count": len(shown),
        "text": f"{len(shown)} {noun}",
    }


def find_authenticator(context: ActionContext, args: Mapping[str, Any]) -> ActionResult:
    """Find the authenticator ``id`` among the listed ``authenticators``.

    ``ok`` with ``authenticator`` (as listed) and ``quoted_id`` (the id
    escaped for a URL path: ``sms|dev_1`` becomes ``sms%7Cdev_1``), or
    ``not_found``.
    """
    wanted = str(args.get("id") or "")
    for item in _authenticators(args.get("authenticators")):
        if item.get("id") == wanted:
            return ActionResult(
                "ok", {"authenticator": dict(item), "quoted_id": quote(wanted, safe="")}
            )
    return ActionResult("not_found", {"quoted_id": quote(wanted, safe="")})


def _authenticators(value: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        kind = type(value).__name__
        raise ActionError(
            f"authenticators must be the list the tenant answered, not a {kind}."
        )
    return [item for item in value if isinstance(item, Mapping)]


def _described(item: Mapping[str, Any]) -> dict[str, Any]:
    """An authenticator with its ``kind``, factor ``type``, challenge type and label."""
    channel = item.get("oob_channel")
    if channel is None and isinstance(item.get("oob_channels"), list | tuple):
        channel = next(iter(item["oob_channels"]), None)
    kind = _kind(str(item.get("authenticator_type") or ""), channel, item.get("type"))
    name = item.get("name")
    described = {
        "id": item.get("id"),
        "kind": kind,
        "type": item.get("type") or _FACTOR_TYPES.get(kind or ""),
        "authenticator_type": item.get("authenticator_type"),
        "oob_channel": channel,
        "name": name,
        "active": item.get("active") is True,
        "challenge_type": _challenge_type(kind),
        "via": _VIA.get(kind or "", "another factor"),
    }
    described["label"] = _label(kind, name)
    return described


def _challenge_type(kind: str | None) -> str | None:
    """What ``/mfa/challenge`` is asked for: ``otp``, ``oob``, or nothing."""
    if kind in (None, "recovery-code"):
        return None
    return "otp" if kind == "otp" else "oob"


def _kind(authenticator_type: str, channel: Any, factor_type: Any) -> str | None:
    if authenticator_type in ("otp", "recovery-code"):
        return authenticator_type
    if authenticator_type == "oob":
        return _OOB_KINDS.get(str(channel))
    if factor_type == "push-notification":
        return "push"
    return None  # WebAuthn and others cannot be challenged through the MFA API


def _label(kind: str | None, name: Any) -> str:
    if kind == "otp":
        return "One-time code from an authenticator app"
    if kind == "recovery-code":
        return "Recovery code"
    base = {
        "sms": "Text message",
        "voice": "Voice call",
        "email": "Email",
        "push": "Push notification",
    }.get(kind or "", "Other factor")
    return f"{base} to {name}" if name else base


def _label_uniquely(items: list[dict[str, Any]]) -> None:
    """Add the id to labels that would otherwise be shown twice."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item["label"]] = seen.get(item["label"], 0) + 1
    for item in items:
        if seen[item["label"]] > 1:
            item["label"] = f"{item['label']} ({item['id']})"


def _matching(items: Sequence[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    for field in ("id", "label", "kind"):
        for item in items:
            if item.get(field) == wanted:
                return item
    return None


def _requirement_types(requirements: Any, key: str) -> frozenset[str] | None:
    """The factor types ``mfa_requirements`` lists under ``key``.

    ``key`` is ``challenge`` or ``enroll``; ``None`` when it lists none.
    """
    if isinstance(requirements, str) and requirements.strip():
        try:
            requirements = json.loads(requirements)
        except ValueError:
            raise ActionError(
                "mfa_requirements must be the JSON object of the mfa_required answer."
            ) from None
    if not isinstance(requirements, Mapping):
        return None
    listed = requirements.get(key)
    if not isinstance(listed, list | tuple):
        return None
    return frozenset(
        str(entry.get("type")) for entry in listed if isinstance(entry, Mapping)
    )


# -- small helpers -----------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def _whole_number(value: Any, name: str) -> int:
    return _converted(value, int, f"{name} must be a whole number")


def _number(value: Any, name: str) -> float:
    return _converted(value, float, f"{name} must be a number of seconds")


def _converted(value: Any, convert: Callable[[Any], _T], problem: str) -> _T:
    """``convert(value)``; a value it refuses is an ActionError: ``problem, not X.``"""
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ActionError(f"{problem}, not {_shown(value)}.") from None


def _shown(value: Any) -> str:
    """``value`` for a message that may be shown: text by its kind alone.

    Text given where a number was expected may be anything the run holds,
    a secret among them.
    """
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)
