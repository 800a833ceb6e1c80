"""MFA: enrolment, challenges, verification, and the ``mfa_token`` transactions.

The HTTP endpoints (``_mfa``, ``_oauth``) and the tenant's Python methods
(for the login pages) share these functions, so both give the same answers.

Choices where Auth0's sources disagree or say nothing (also in
``docs/tenant.md``):

- A rejected push answers ``access_denied`` with ``MFA Authorization
  rejected.`` and HTTP 400, as a recording of a real tenant shows (the docs
  say ``invalid_grant``). A pending push answers ``authorization_pending``
  with HTTP 400 (recorded), not 200 (an old docs sample).
- Push polls draw from a bucket per ``mfa_token`` (per challenge for the
  login pages), ``limits.push_polls``: Auth0's "MFA OOB token exchange"
  limit of a burst of 12 and 12 a minute per session. A poll that finds it
  empty answers ``slow_down`` (HTTP 400) and takes nothing, so a client
  that backs off is never locked out.
- When the bucket of failed codes (10, one back every 6 minutes; shared by
  OTP, binding and recovery codes of a user) is empty, verification answers
  HTTP 429 ``too_many_attempts`` without checking the code; Auth0's code
  for this case is unconfirmed. Exhausted send limits answer 429
  ``too_many_requests``. Both carry ``Retry-After`` and the
  ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` headers of Auth0's
  rate limits.
- Statuses follow the reference pages: ``Invalid otp_code.`` and
  ``Invalid binding_code.`` are 400; a bad or expired ``oob_code``
  (``oob_code is expired``, code ``invalid_grant``), a bad recovery code and
  a bad or expired ``mfa_token`` (``Malformed mfa_token``, ``expired_token``
  / ``mfa_token is expired``) are 401. Auth0's exact descriptions are kept,
  even where they lack a full stop, because SDKs match them.
- ``mfa_requirements`` lists ``challenge`` types when the user has an active
  authenticator and ``enroll`` types otherwise (``email`` is never listed
  for enrolment, as the docs mark it challenge-only; the MFA API still
  enrols it).
- Recovery codes come with an enrolment while the user has no active
  authenticator; a later unconfirmed attempt gets a fresh code, replacing
  the unconfirmed one. The code becomes usable once the first authenticator
  is confirmed.
- Enrolling with an ``mfa_token`` while the user has an active
  authenticator answers 403 ``access_denied`` ``User is already enrolled.``
  (Auth0's code and status are unconfirmed).
- An MFA-audience access token used at ``/mfa/associate`` may be given as
  the ``mfa_token`` of an MFA grant to confirm that enrolment; it then
  yields a new MFA-audience token. Elsewhere an access token is not an
  ``mfa_token`` (``Malformed mfa_token``).
- An ``mfa_token`` stays usable until it expires, also after a successful
  MFA grant.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode

import attrs
from attrs import frozen

from ._config import Limit
from ._errors import OAuthError
from ._limits import TokenBucket
from ._otp import barcode_uri, matching_step, new_secret
from ._secrets import (
    digest,
    new_code,
    new_device_id,
    new_recovery_code,
    new_token,
    same,
)
from ._state import (
    ID_PREFIXES,
    Authenticator,
    Message,
    MfaTransaction,
    OobChallenge,
    PushRequest,
    User,
)

if TYPE_CHECKING:
    from ._tenant import Tenant

__all__ = ["Challenge", "Enrolment"]

logger = logging.getLogger(__name__)

MFA_TOKEN_PREFIX = "Fe26.2**"
_STATUS_BAD_CODE = 400
_STATUS_BAD_TOKEN = 401
#: The factor type each enabled factor offers in ``mfa_requirements.enroll``.
_ENROL_TYPES = {
    "otp": "otp",
    "sms": "phone",
    "voice": "phone",
    "push": "push-notification",
}
#: The rate limit ("*_sends" bucket) each channel's messages count against.
_SEND_LIMITS = {
    "sms": "phone_sends",
    "voice": "phone_sends",
    "email": "email_sends",
    "auth0": "push_sends",
}
#: What each channel sends, for the message of an exhausted send limit.
_SENT_THINGS = {
    "sms": "text messages",
    "voice": "voice calls",
    "email": "emails",
    "auth0": "push notifications",
}
#: Factors that count as "a valid factor" for the MFA audience.
_STRONG_CHANNELS = ("otp", "sms", "voice", "auth0")


@frozen
class Enrolment:
    """What enrolling an authenticator gives back, as ``/mfa/associate`` answers.

    ``secret`` and ``barcode_uri`` are set for ``otp`` (``barcode_uri`` also
    for push, to scan); ``oob_code`` (and ``binding_method`` ``prompt`` for
    codes sent by SMS, voice or email) for ``oob``. ``recovery_codes`` is
    non-empty on a user's first enrolment when recovery codes are on. The
    authenticator stays inactive until confirmed.
    """

    authenticator: Authenticator
    secret: str | None = attrs.field(default=None, repr=False)
    barcode_uri: str | None = attrs.field(default=None, repr=False)
    oob_code: str | None = attrs.field(default=None, repr=False)
    binding_method: str | None = None
    recovery_codes: tuple[str, ...] = attrs.field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        """Return the body of the ``/mfa/associate`` answer."""
        body: dict[str, Any] = {
            "authenticator_type": self.authenticator.authenticator_type
        }
        optional = {
            "secret": self.secret,
            "barcode_uri": self.barcode_uri,
            "oob_channel": self.authenticator.oob_channel,
            "oob_code": self.oob_code,
            "binding_method": self.binding_method,
        }
        body.update(
            {key: value for key, value in optional.items() if value is not None}
        )
        if self.recovery_codes:
            body["recovery_codes"] = list(self.recovery_codes)
        return body


@frozen
class Challenge:
    """A challenge started for one authenticator, as ``/mfa/challenge`` answers.

    For ``otp`` nothing is sent: the user reads the code from their app. For
    ``oob``, ``oob_code`` identifies the challenge when verifying it;
    ``binding_method`` is ``prompt`` when a code was sent by SMS, voice or
    email, and ``None`` for push. ``request_id`` is the challenge's public
    handle (a push is approved or rejected by it).
    """

    challenge_type: Literal["otp", "oob"]
    authenticator_id: str
    oob_code: str | None = attrs.field(default=None, repr=False)
    binding_method: str | None = None
    expires_at: float | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the body of the ``/mfa/challenge`` answer."""
        body: dict[str, Any] = {"challenge_type": self.challenge_type}
        if self.oob_code is not None:
            body["oob_code"] = self.oob_code
        if self.binding_method is not None:
            body["binding_method"] = self.binding_method
        return body


# --- Transactions ---------------------------------------------------------------------


def open_transaction(
    tenant: Tenant,
    user: User,
    client_id: str,
    audience: str | None,
    scope: Sequence[str],
    *,
    refresh_token_hash: str | None = None,
) -> str:
    """Start a login that needs MFA; return its new ``mfa_token``."""
    now = tenant.clock.now()
    token = new_token(MFA_TOKEN_PREFIX)
    transaction = MfaTransaction(
        token_hash=digest(token),
        kind="login",
        user_id=user.id,
        client_id=client_id,
        audience=audience,
        scope=scope,
        created_at=now,
        expires_at=now + tenant.config.lifetimes.mfa_token,
        refresh_token_hash=refresh_token_hash,
    )
    tenant.transient.prune(now)
    tenant.transient.transactions[transaction.token_hash] = transaction
    logger.debug("Opened an MFA transaction for user %s", user.id)
    return token


def mfa_required(
    tenant: Tenant,
    user: User,
    client_id: str,
    audience: str | None,
    scope: Sequence[str],
    *,
    refresh_token_hash: str | None = None,
) -> OAuthError:
    """Return the ``mfa_required`` answer (403, as observed) for a new transaction."""
    token = open_transaction(
        tenant, user, client_id, audience, scope, refresh_token_hash=refresh_token_hash
    )
    return OAuthError(
        "mfa_required",
        "Multifactor authentication required",
        403,
        extra={"mfa_token": token, "mfa_requirements": requirements(tenant, user.id)},
    )


def find_transaction(
    tenant: Tenant, token: str, kinds: Iterable[str] = ("login",)
) -> MfaTransaction:
    """Return the live transaction ``token`` stands for.

    Raises:
        OAuthError: ``invalid_grant`` ``Malformed mfa_token`` when the token
            is unknown or of another kind; ``expired_token`` ``mfa_token is
            expired`` when it has expired.
    """
    transaction = tenant.transient.transactions.get(digest(token))
    if transaction is None or transaction.kind not in kinds:
        raise OAuthError("invalid_grant", "Malformed mfa_token", _STATUS_BAD_TOKEN)
    if tenant.clock.now() >= transaction.expires_at:
        raise OAuthError("expired_token", "mfa_token is expired", _STATUS_BAD_TOKEN)
    return transaction


def client_transaction(
    tenant: Tenant, client_id: str, token: str, kinds: Iterable[str] = ("login",)
) -> MfaTransaction:
    """Return the live transaction ``token`` stands for, opened for ``client_id``.

    Raises:
        OAuthError: as :func:`find_transaction` does; ``invalid_grant`` when
            the transaction was opened for another client.
    """
    transaction = find_transaction(tenant, token, kinds)
    if transaction.client_id != client_id:
        msg = "The mfa_token was issued to another client."
        raise OAuthError("invalid_grant", msg, _STATUS_BAD_TOKEN)
    return transaction


def enrolment_transaction(
    tenant: Tenant, access_token: str, claims: dict[str, Any]
) -> MfaTransaction:
    """Return the enrolment transaction of an MFA-audience access token.

    It is made when the token is first used to enrol.
    """
    key = digest(access_token)
    transaction = tenant.transient.transactions.get(key)
    if transaction is None:
        transaction = MfaTransaction(
            token_hash=key,
            kind="enrolment",
            user_id=str(claims["sub"]),
            client_id=str(claims.get("azp", "")),
            audience=tenant.mfa_audience,
            scope=str(claims.get("scope", "")).split(),
            created_at=tenant.clock.now(),
            expires_at=float(claims["exp"]),
        )
        tenant.transient.transactions[key] = transaction
    return transaction


def remember_enrolment(
    tenant: Tenant, transaction: MfaTransaction, authenticator_id: str
) -> None:
    """Let ``transaction`` confirm the authenticator it just enrolled."""
    tenant.transient.transactions[transaction.token_hash] = attrs.evolve(
        transaction, enrolments=(*transaction.enrolments, authenticator_id)
    )


# --- Who needs what -------------------------------------------------------------------


def active_factors(tenant: Tenant, user_id: str) -> list[Authenticator]:
    """Return the user's active authenticators, except recovery codes."""
    return [
        a
        for a in tenant.store.authenticators(user_id)
        if a.active and a.authenticator_type != "recovery-code"
    ]


def needs_mfa(tenant: Tenant, user: User, audience: str | None) -> bool:
    """Whether a login of ``user`` for ``audience`` must pass MFA first.

    For the MFA audience, only when the user has an active factor other
    than email (so a user without one can get a token to enrol); otherwise
    as the user's ``mfa`` policy says.
    """
    if audience == tenant.mfa_audience:
        return any(
            a.channel in _STRONG_CHANNELS for a in active_factors(tenant, user.id)
        )
    return user.mfa == "always"


def requirements(tenant: Tenant, user_id: str) -> dict[str, list[dict[str, str]]]:
    """Return ``mfa_requirements``: ``challenge`` types, else ``enroll`` types."""
    active = [a for a in tenant.store.authenticators(user_id) if a.active]
    if active:
        return {"challenge": _types(a.type for a in active)}
    enrollable = (_ENROL_TYPES[f] for f in tenant.config.factors if f in _ENROL_TYPES)
    return {"enroll": _types(enrollable)}


def _types(types: Iterable[str]) -> list[dict[str, str]]:
    return [{"type": kind} for kind in dict.fromkeys(types)]


# --- Enrolment ------------------------------------------------------------------------


def enrol(
    tenant: Tenant,
    user: User,
    factor: str,
    *,
    phone_number: str | None = None,
    email: str | None = None,
    transaction_hash: str | None = None,
) -> Enrolment:
    """Enrol a new, inactive authenticator of ``factor`` for ``user``.

    Codes for ``sms``, ``voice`` and ``email`` go to the outbox at once; a
    ``push`` enrolment waits for its approval. Confirming (by the matching
    MFA grant, or :meth:`Tenant.verify_otp` / :meth:`Tenant.verify_oob`)
    activates it.

    Raises:
        OAuthError: ``invalid_request`` when the factor is not enabled or a
            phone number or email address is missing or malformed.
    """
    _check_enabled(tenant, factor)
    recipient = _recipient(factor, user, phone_number, email)
    if factor != "otp":
        # Refuse before storing anything, so a refused enrolment leaves no trace.
        _check_send_limit(tenant, user.id, "auth0" if factor == "push" else factor)
    primary = create_authenticators(tenant, user, factor, recipient)
    recovery_codes = _first_enrolment_codes(tenant, user)
    logger.debug("Enrolled an inactive %s authenticator %s", factor, primary.id)
    if factor == "otp":
        secret = primary.secret or ""
        return Enrolment(
            primary,
            secret=secret,
            barcode_uri=barcode_uri(secret, tenant.config.name, user.email),
            recovery_codes=recovery_codes,
        )
    challenge = start_challenge(
        tenant, primary, transaction_hash=transaction_hash, enrolment=True
    )
    push_uri = None
    if factor == "push":
        push_uri = _push_barcode_uri(tenant, user, challenge)
    return Enrolment(
        primary,
        barcode_uri=push_uri,
        oob_code=challenge.oob_code,
        binding_method=challenge.binding_method,
        recovery_codes=recovery_codes,
    )


def create_authenticators(
    tenant: Tenant,
    user: User,
    factor: str,
    recipient: str | None,
    *,
    active: bool = False,
    ids: tuple[str | None, str | None] = (None, None),
    secret: str | None = None,
) -> Authenticator:
    """Store an authenticator of ``factor`` and its twin, if any; return the first.

    Push gets an OTP twin; SMS and voice get each other when both are
    enabled. ``ids`` fixes the ids of the authenticator and its twin.
    """
    now = tenant.clock.now()
    channel = "auth0" if factor == "push" else factor
    other_channel = twin_channel(tenant, channel)
    primary = _new_authenticator(user, channel, recipient, now, active, ids[0], secret)
    if other_channel is None:
        tenant.store.put_authenticator(primary)
        return primary
    twin = _new_authenticator(user, other_channel, recipient, now, active, ids[1], None)
    primary = attrs.evolve(primary, twin_id=twin.id)
    tenant.store.put_authenticator(primary)
    tenant.store.put_authenticator(attrs.evolve(twin, twin_id=primary.id))
    return primary


def twin_channel(tenant: Tenant, channel: str) -> str | None:
    """Return the channel of the twin an authenticator of ``channel`` gets, if any."""
    if channel == "auth0":
        return "otp"
    twins = {"sms": "voice", "voice": "sms"}
    twin = twins.get(channel)
    return twin if twin in tenant.config.factors else None


def _new_authenticator(
    user: User,
    channel: str,
    recipient: str | None,
    now: float,
    active: bool,
    authenticator_id: str | None,
    secret: str | None,
) -> Authenticator:
    if channel == "otp":
        return Authenticator(
            id=authenticator_id or new_device_id(ID_PREFIXES["otp"]),
            user_id=user.id,
            authenticator_type="otp",
            active=active,
            created_at=now,
            secret=secret or new_secret(),
        )
    return Authenticator(
        id=authenticator_id or new_device_id(ID_PREFIXES[channel]),
        user_id=user.id,
        authenticator_type="oob",
        oob_channel=channel,
        active=active,
        created_at=now,
        name=_display_name(channel, recipient),
        recipient=recipient,
    )


def _display_name(channel: str, recipient: str | None) -> str:
    if channel == "auth0" or recipient is None:
        return "Push device"
    if channel == "email":
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return "X" * (len(recipient) - 4) + recipient[-4:]


def _check_enabled(tenant: Tenant, factor: str) -> None:
    if factor not in tenant.config.factors:
        enabled = ", ".join(repr(f) for f in tenant.config.factors)
        msg = (
            f"The {factor!r} factor is not enabled on this tenant; enabled: {enabled}."
        )
        raise OAuthError("invalid_request", msg)


def _recipient(
    factor: str, user: User, phone_number: str | None, email: str | None
) -> str | None:
    if factor in ("sms", "voice"):
        if phone_number is None:
            msg = f"Enrolling {factor} needs a phone_number."
            raise OAuthError("invalid_request", msg)
        if not (
            phone_number.startswith("+")
            and phone_number[1:].isdigit()
            and 8 <= len(phone_number) <= 16
        ):
            msg = (
                "phone_number must be in E.164 form, such as '+15551234567'; "
                f"got {phone_number!r}."
            )
            raise OAuthError("invalid_request", msg)
        return phone_number
    if factor == "email":
        address = email or user.email
        if "@" not in address:
            msg = f"email must be an email address; got {address!r}."
            raise OAuthError("invalid_request", msg)
        return address
    return None


def _first_enrolment_codes(tenant: Tenant, user: User) -> tuple[str, ...]:
    """Issue a recovery code if this is the user's first enrolment and codes are on."""
    if not tenant.config.recovery_codes:
        return ()
    existing = tenant.store.authenticators(user.id)
    if any(a.active for a in existing):
        return ()
    for old in existing:
        if old.authenticator_type == "recovery-code":
            tenant.store.delete_authenticator(old.id)
    code = new_recovery_code()
    store_recovery_code(tenant, user, code, active=False)
    return (code,)


def store_recovery_code(
    tenant: Tenant,
    user: User,
    code: str,
    *,
    active: bool,
    authenticator_id: str | None = None,
) -> Authenticator:
    """Store ``code`` (as a digest) as the user's recovery-code authenticator."""
    authenticator = Authenticator(
        id=authenticator_id or new_device_id(ID_PREFIXES["recovery-code"]),
        user_id=user.id,
        authenticator_type="recovery-code",
        active=active,
        created_at=tenant.clock.now(),
        secret=digest(_normalise_recovery_code(code)),
    )
    tenant.store.put_authenticator(authenticator)
    return authenticator


def _push_barcode_uri(tenant: Tenant, user: User, challenge: Challenge) -> str:
    # The Guardian app's QR names the enrolment and the tenant, not a secret.
    query = urlencode(
        {"enrollment_tx_id": challenge.request_id, "base_url": tenant.issuer}
    )
    label = quote(f"{tenant.config.name}:{user.email}", safe=":@")
    return f"otpauth://totp/{label}?{query}"


def activate(tenant: Tenant, authenticator: Authenticator) -> Authenticator:
    """Confirm an enrolment: activate it, its twin, and a pending recovery code."""
    active = attrs.evolve(authenticator, active=True)
    tenant.store.put_authenticator(active)
    for other in tenant.store.authenticators(authenticator.user_id):
        is_twin = other.id == authenticator.twin_id
        is_code = other.authenticator_type == "recovery-code"
        if not other.active and (is_twin or is_code):
            tenant.store.put_authenticator(attrs.evolve(other, active=True))
    logger.debug("Confirmed authenticator %s", authenticator.id)
    return active


def delete(tenant: Tenant, user_id: str, authenticator_id: str) -> None:
    """Delete a user's authenticator and its twin.

    Raises:
        OAuthError: 404 ``not_found`` when the user has no such authenticator.
    """
    authenticator = tenant.store.get_authenticator(authenticator_id)
    if authenticator is None or authenticator.user_id != user_id:
        msg = f"Authenticator {authenticator_id!r} not found."
        raise OAuthError("not_found", msg, 404)
    tenant.store.delete_authenticator(authenticator.id)
    if authenticator.twin_id is not None:
        tenant.store.delete_authenticator(authenticator.twin_id)
    logger.debug("Deleted authenticator %s and its twin", authenticator.id)


# --- Challenges -----------------------------------------------------------------------


def start_challenge(
    tenant: Tenant,
    authenticator: Authenticator,
    *,
    transaction_hash: str | None = None,
    enrolment: bool = False,
) -> Challenge:
    """Challenge ``authenticator``: send a code, start a push, or (OTP) nothing.

    Raises:
        OAuthError: 400 ``unsupported_challenge_type`` for a recovery code;
            429 ``too_many_requests`` when the user's send limit is reached.
    """
    if authenticator.authenticator_type == "otp":
        return Challenge("otp", authenticator.id)
    if authenticator.oob_channel is None:
        msg = "A recovery code is not challenged; send it with the recovery-code grant."
        raise OAuthError("unsupported_challenge_type", msg)
    channel = authenticator.oob_channel
    now = tenant.clock.now()
    _take_send_token(tenant, authenticator.user_id, channel, now)
    oob_code = new_token()
    binding_hash = None
    if channel != "auth0":
        binding_hash = digest(_send_code(tenant, authenticator, enrolment, now))
    challenge = OobChallenge(
        code_hash=digest(oob_code),
        request_id=new_token(nbytes=12),
        user_id=authenticator.user_id,
        authenticator_id=authenticator.id,
        channel=channel,
        created_at=now,
        expires_at=now + tenant.config.lifetimes.oob_code,
        enrolment=enrolment,
        transaction_hash=transaction_hash,
        binding_hash=binding_hash,
    )
    tenant.transient.prune(now)
    tenant.transient.challenges[challenge.code_hash] = challenge
    logger.debug(
        "Started a challenge by %s for authenticator %s",
        "push" if channel == "auth0" else channel,
        authenticator.id,
    )
    return Challenge(
        "oob",
        authenticator.id,
        oob_code=oob_code,
        binding_method=None if binding_hash is None else "prompt",
        expires_at=challenge.expires_at,
        request_id=challenge.request_id,
    )


def _check_send_limit(tenant: Tenant, user_id: str, channel: str) -> None:
    limit = bucket(tenant, _SEND_LIMITS[channel], user_id)
    now = tenant.clock.now()
    if not limit.available(now):
        msg = (
            f"Too many {_SENT_THINGS[channel]} were sent to this user; "
            "wait before asking again."
        )
        raise OAuthError("too_many_requests", msg, 429, headers=limit.headers(now))


def _take_send_token(tenant: Tenant, user_id: str, channel: str, now: float) -> None:
    _check_send_limit(tenant, user_id, channel)
    bucket(tenant, _SEND_LIMITS[channel], user_id).take(now)


def _send_code(
    tenant: Tenant, authenticator: Authenticator, enrolment: bool, now: float
) -> str:
    code = new_code()
    tenant.transient.outbox.append(
        Message(
            channel=authenticator.channel,
            recipient=authenticator.recipient or "",
            code=code,
            user_id=authenticator.user_id,
            sent_at=now,
            purpose="enrolment" if enrolment else "challenge",
        )
    )
    return code


def choose_authenticator(
    tenant: Tenant,
    user_id: str,
    challenge_types: Sequence[str],
    *,
    authenticator_id: str | None = None,
    oob_channel: str | None = None,
) -> Authenticator:
    """Pick the authenticator ``/mfa/challenge`` challenges.

    With ``authenticator_id``, that one; otherwise the user's first-enrolled
    active authenticator of an accepted type (and of ``oob_channel``, if
    given).

    Raises:
        OAuthError: ``association_required`` when the user has no active
            authenticator, ``unsupported_challenge_type`` when none fits,
            ``invalid_request`` for an unknown ``authenticator_id``.
    """
    active = active_factors(tenant, user_id)
    if not active:
        msg = "The user has no active authenticator; enrol one with /mfa/associate."
        raise OAuthError("association_required", msg)
    if authenticator_id is not None:
        chosen = next((a for a in active if a.id == authenticator_id), None)
        if chosen is None:
            msg = f"The user has no active authenticator {authenticator_id!r}."
            raise OAuthError("invalid_request", msg)
        if chosen.authenticator_type not in challenge_types:
            msg = (
                f"Authenticator {authenticator_id!r} is of type "
                f"{chosen.authenticator_type!r}, not one of {list(challenge_types)!r}."
            )
            raise OAuthError("unsupported_challenge_type", msg)
        return chosen
    for authenticator in active:
        if authenticator.authenticator_type in challenge_types and oob_channel in (
            None,
            authenticator.oob_channel,
        ):
            return authenticator
    msg = (
        "The user has no active authenticator for challenge types "
        f"{list(challenge_types)!r}."
    )
    raise OAuthError("unsupported_challenge_type", msg)


# --- Verification ---------------------------------------------------------------------


def bucket(
    tenant: Tenant, name: str, owner: str, limit: Limit | None = None
) -> TokenBucket:
    """Return ``owner``'s bucket for the limit ``name``.

    ``owner`` is what the limit counts for (a user id, an ``mfa_token``'s
    digest); ``limit`` defaults to the attribute ``name`` of ``Limits``.
    """
    key = (name, owner)
    found = tenant.transient.buckets.get(key)
    if found is None:
        chosen = limit or getattr(tenant.config.limits, name)
        found = TokenBucket.full(chosen, tenant.clock.now())
        tenant.transient.buckets[key] = found
    return found


def _check_attempts(tenant: Tenant, user_id: str, now: float) -> TokenBucket:
    failures = bucket(tenant, "otp_failures", user_id)
    if not failures.available(now):
        wait = failures.seconds_until_available(now)
        msg = f"Too many failed codes; wait {wait:.0f} seconds before trying again."
        raise OAuthError("too_many_attempts", msg, 429, headers=failures.headers(now))
    return failures


def verify_otp(
    tenant: Tenant, user_id: str, code: str, candidates: Sequence[Authenticator]
) -> Authenticator:
    """Check a TOTP ``code`` against ``candidates``; confirm an inactive match.

    Raises:
        OAuthError: 429 ``too_many_attempts`` when the failure bucket is
            empty; 400 ``invalid_grant`` ``Invalid otp_code.`` otherwise.
    """
    now = tenant.clock.now()
    failures = _check_attempts(tenant, user_id, now)
    for authenticator in candidates:
        if authenticator.authenticator_type != "otp":
            continue
        step = matching_step(
            authenticator.secret or "", code, now, authenticator.last_otp_step
        )
        if step is None:
            continue
        used = attrs.evolve(authenticator, last_otp_step=step)
        tenant.store.put_authenticator(used)
        return used if used.active else activate(tenant, used)
    failures.take(now)
    logger.debug("Refused a one-time code for user %s", user_id)
    raise OAuthError("invalid_grant", "Invalid otp_code.", _STATUS_BAD_CODE)


def otp_candidates(
    tenant: Tenant, user_id: str, enrolments: Iterable[str] = ()
) -> list[Authenticator]:
    """Return the user's active OTP authenticators and those in ``enrolments``."""
    confirmable = set(enrolments)
    return [
        a
        for a in tenant.store.authenticators(user_id)
        if a.authenticator_type == "otp" and (a.active or a.id in confirmable)
    ]


def verify_oob(
    tenant: Tenant,
    oob_code: str,
    binding_code: str | None,
    *,
    transaction_hash: str | None,
) -> Authenticator:
    """Settle an ``oob_code``: check its binding code, or poll its push.

    Raises:
        OAuthError: ``invalid_grant`` (unknown or expired ``oob_code``, wrong
            binding code), ``invalid_request`` (binding code missing),
            ``authorization_pending``, ``slow_down``, ``access_denied``
            (push rejected), ``too_many_attempts``.
    """
    now = tenant.clock.now()
    key = digest(oob_code)
    challenge = tenant.transient.challenges.get(key)
    authenticator = None
    if challenge is not None and challenge.transaction_hash == transaction_hash:
        authenticator = tenant.store.get_authenticator(challenge.authenticator_id)
    if challenge is None or authenticator is None:
        raise OAuthError("invalid_grant", "Invalid oob_code.", _STATUS_BAD_TOKEN)
    if now >= challenge.expires_at:
        raise OAuthError("invalid_grant", "oob_code is expired", _STATUS_BAD_TOKEN)
    if challenge.channel == "auth0":
        _poll_push(tenant, challenge, now)
    else:
        _check_binding_code(tenant, challenge, binding_code, now)
    del tenant.transient.challenges[key]
    return authenticator if authenticator.active else activate(tenant, authenticator)


def _poll_push(tenant: Tenant, challenge: OobChallenge, now: float) -> None:
    limit = tenant.config.limits.push_poll_limit
    session = challenge.transaction_hash or challenge.code_hash
    polls = bucket(tenant, "push_polls", session, limit)
    if not polls.take(now):
        wait = math.ceil(polls.seconds_until_available(now))
        msg = f"Polling too fast; wait {wait} seconds before polling again."
        raise OAuthError("slow_down", msg)
    if challenge.decision == "pending":
        msg = "Authorization pending: please repeat the request in a few seconds."
        raise OAuthError("authorization_pending", msg)
    if challenge.decision == "rejected":
        raise OAuthError("access_denied", "MFA Authorization rejected.")


def _check_binding_code(
    tenant: Tenant, challenge: OobChallenge, binding_code: str | None, now: float
) -> None:
    if binding_code is None:
        msg = f"binding_code is required: enter the code sent by {challenge.channel}."
        raise OAuthError("invalid_request", msg)
    failures = _check_attempts(tenant, challenge.user_id, now)
    if not same(digest(binding_code.strip()), challenge.binding_hash or ""):
        failures.take(now)
        raise OAuthError("invalid_grant", "Invalid binding_code.", _STATUS_BAD_CODE)


def verify_recovery_code(tenant: Tenant, user_id: str, code: str) -> str:
    """Check a recovery code; on success replace it and return the new one.

    Raises:
        OAuthError: ``invalid_request`` when recovery codes are off;
            ``too_many_attempts``; 401 ``invalid_grant`` for a wrong code.
    """
    if not tenant.config.recovery_codes:
        msg = "Recovery codes are not enabled on this tenant."
        raise OAuthError("invalid_request", msg)
    now = tenant.clock.now()
    failures = _check_attempts(tenant, user_id, now)
    stored = next(
        (
            a
            for a in tenant.store.authenticators(user_id)
            if a.authenticator_type == "recovery-code" and a.active
        ),
        None,
    )
    given = digest(_normalise_recovery_code(code))
    if stored is None or not same(given, stored.secret or ""):
        failures.take(now)
        raise OAuthError("invalid_grant", "Invalid recovery_code.", _STATUS_BAD_TOKEN)
    replacement = new_recovery_code()
    tenant.store.put_authenticator(
        attrs.evolve(stored, secret=digest(_normalise_recovery_code(replacement)))
    )
    logger.debug("Replaced the recovery code of user %s", user_id)
    return replacement


def _normalise_recovery_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


# --- Push decisions -------------------------------------------------------------------


def pending_pushes(tenant: Tenant, user_id: str | None = None) -> list[PushRequest]:
    """Return the push requests waiting for a decision, oldest first."""
    now = tenant.clock.now()
    return [
        PushRequest(
            id=c.request_id,
            user_id=c.user_id,
            authenticator_id=c.authenticator_id,
            enrolment=c.enrolment,
            created_at=c.created_at,
            expires_at=c.expires_at,
        )
        for c in tenant.transient.challenges.values()
        if c.channel == "auth0"
        and c.decision == "pending"
        and now < c.expires_at
        and user_id in (None, c.user_id)
    ]


def decide_push(
    tenant: Tenant,
    *,
    approve: bool,
    user_id: str | None = None,
    request_id: str | None = None,
) -> PushRequest:
    """Approve or reject the newest pending push of a user (or the one named).

    Raises:
        OAuthError: 404 ``not_found`` when no such push is pending.
    """
    pending = [p for p in pending_pushes(tenant, user_id) if request_id in (None, p.id)]
    if not pending:
        msg = "No push request is pending" + (
            f" with id {request_id!r}." if request_id else " for that user."
        )
        raise OAuthError("not_found", msg, 404)
    chosen = pending[-1]
    key = next(
        k for k, c in tenant.transient.challenges.items() if c.request_id == chosen.id
    )
    tenant.transient.challenges[key] = attrs.evolve(
        tenant.transient.challenges[key],
        decision="approved" if approve else "rejected",
    )
    logger.debug("Push %s was %s", chosen.id, "approved" if approve else "rejected")
    return chosen
