"""The MFA API: ``/mfa/associate``, ``/mfa/challenge``, ``/mfa/authenticators``.

Which token each endpoint takes (reference §1.5):

- ``POST /mfa/associate`` (Bearer): an ``mfa_token`` while the user has no
  active authenticator; otherwise an MFA-audience access token with
  ``enroll``.
- ``GET /mfa/authenticators`` (Bearer): an ``mfa_token``, or an access
  token with ``read:authenticators``.
- ``DELETE /mfa/authenticators/{id}`` (Bearer): only an access token with
  ``remove:authenticators``; an ``mfa_token`` gets 401 ``invalid_token``.
- ``POST /mfa/challenge``: the ``mfa_token`` in the body, with the client's
  ``client_id`` (and its authentication, for a confidential client).

A Bearer value shaped like a JWT is read as an access token (401
``invalid_token`` if it is not a live MFA-audience token of this tenant,
403 ``insufficient_scope`` without the needed scope); any other value as an
``mfa_token`` (401 ``Malformed mfa_token`` / ``mfa_token is expired``).

Inputs accepted in every form the sources show: ``authenticator_types`` as
an array or a string, ``oob_channels`` (array) or ``oob_channel``
(string), ``challenge_type`` as a space-separated list (all types when
omitted), and the OpenAPI-only ``oob_channel`` on ``/mfa/challenge`` as a
filter. Answers use the singular ``oob_channel`` of real payloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import field, frozen
from werkzeug.wrappers import Request, Response

from . import _factors
from ._app import ROUTES
from ._errors import OAuthError
from ._http import Params, authenticate_client, bearer_token, json_response
from ._issuing import audiences, invalid_token, verify_access_token
from ._state import MfaTransaction, User

if TYPE_CHECKING:
    from ._tenant import Tenant

_CHALLENGE_TYPES = ("otp", "oob")
_OOB_CHANNELS = ("sms", "voice", "email", "auth0")


@frozen
class _Bearer:
    """Who a Bearer token speaks for, and how."""

    user: User
    transaction: MfaTransaction | None
    token: str = field(repr=False)
    claims: dict[str, Any] | None = None


def _bearer(
    tenant: Tenant, request: Request, *, scope: str, mfa_token: bool
) -> _Bearer:
    token = bearer_token(request)
    if token.count(".") == 2:
        claims = verify_access_token(tenant, token)
        if tenant.mfa_audience not in audiences(claims):
            raise invalid_token(
                f"The access token is not for the MFA API ({tenant.mfa_audience!r})."
            )
        if scope not in claims["scope"].split():
            raise OAuthError(
                "insufficient_scope",
                f"The access token lacks the {scope!r} scope.",
                403,
                headers={"WWW-Authenticate": _insufficient_scope(scope)},
            )
        user = tenant.store.get_user(str(claims["sub"]))
        if user is None:
            raise invalid_token("The access token's user no longer exists.")
        return _Bearer(user, None, token, claims)
    if not mfa_token:
        raise invalid_token(
            f"This endpoint needs an MFA API access token with the {scope!r} scope; "
            "an mfa_token is not accepted."
        )
    transaction = _factors.find_transaction(tenant, token)
    user = tenant.store.get_user(transaction.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "Malformed mfa_token", 401)
    return _Bearer(user, transaction, token)


def _insufficient_scope(scope: str) -> str:
    return f'Bearer error="insufficient_scope", scope="{scope}"'


@ROUTES.route("/mfa/associate", methods=("POST",))
def associate(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Enrol an authenticator; it stays inactive until an MFA grant confirms it."""
    bearer = _bearer(tenant, request, scope="enroll", mfa_token=True)
    params = Params.of(request)
    if "client_id" in params:
        authenticate_client(tenant, request, params)
    factor = _requested_factor(params)
    transaction = bearer.transaction
    if transaction is None:
        assert bearer.claims is not None  # an access token always has claims
        transaction = _factors.enrolment_transaction(
            tenant, bearer.token, bearer.claims
        )
    elif _factors.active_factors(tenant, bearer.user.id):
        raise OAuthError("access_denied", "User is already enrolled.", 403)
    enrolment = _factors.enrol(
        tenant,
        bearer.user,
        factor,
        phone_number=params.get("phone_number"),
        email=params.get("email"),
        transaction_hash=transaction.token_hash,
    )
    _factors.remember_enrolment(tenant, transaction, enrolment.authenticator.id)
    return json_response(enrolment.to_json())


def _requested_factor(params: Params) -> str:
    types = params.strings("authenticator_types")
    if len(types) != 1 or types[0] not in _CHALLENGE_TYPES:
        msg = f"authenticator_types must be ['otp'] or ['oob']; got {types!r}."
        raise OAuthError("invalid_request", msg)
    if types[0] == "otp":
        return "otp"
    channels = params.strings("oob_channels") or params.strings("oob_channel")
    if len(channels) != 1 or channels[0] not in _OOB_CHANNELS:
        msg = (
            "oob_channels must name one channel of "
            f"{', '.join(repr(c) for c in _OOB_CHANNELS)}; got {channels!r}."
        )
        raise OAuthError("invalid_request", msg)
    return "push" if channels[0] == "auth0" else channels[0]


@ROUTES.route("/mfa/challenge", methods=("POST",))
def challenge(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Challenge one of the user's active authenticators."""
    params = Params.of(request)
    client = authenticate_client(tenant, request, params)
    transaction = _factors.client_transaction(
        tenant, client.client_id, params.require("mfa_token")
    )
    types = params.strings("challenge_type") or list(_CHALLENGE_TYPES)
    unknown = [kind for kind in types if kind not in _CHALLENGE_TYPES]
    if unknown:
        msg = f"Unsupported challenge_type {unknown[0]!r}; supported: 'otp', 'oob'."
        raise OAuthError("unsupported_challenge_type", msg)
    chosen = _factors.choose_authenticator(
        tenant,
        transaction.user_id,
        types,
        authenticator_id=params.get("authenticator_id"),
        oob_channel=params.get("oob_channel"),
    )
    started = _factors.start_challenge(
        tenant, chosen, transaction_hash=transaction.token_hash
    )
    return json_response(started.to_json())


@ROUTES.route("/mfa/authenticators")
def list_authenticators(
    tenant: Tenant, request: Request, args: Mapping[str, str]
) -> Response:
    """List the user's authenticators, active or not."""
    bearer = _bearer(tenant, request, scope="read:authenticators", mfa_token=True)
    found = tenant.store.authenticators(bearer.user.id)
    return json_response([a.to_json() for a in found])


@ROUTES.route("/mfa/authenticators/<authenticator_id>", methods=("DELETE",))
def delete_authenticator(
    tenant: Tenant, request: Request, args: Mapping[str, str]
) -> Response:
    """Delete an authenticator and its twin; 204 on success."""
    bearer = _bearer(tenant, request, scope="remove:authenticators", mfa_token=False)
    _factors.delete(tenant, bearer.user.id, args["authenticator_id"])
    return Response(status=204)
