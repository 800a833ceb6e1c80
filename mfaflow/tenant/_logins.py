"""Login transactions: how far one browser's sign-in through the login pages got.

``GET /authorize`` opens a transaction and gives the browser its id in a
cookie; each page reads the transaction by that id and moves it on:
``login`` (email and password), ``mfa`` (challenge an authenticator),
``enrol`` (set up an authenticator app), ``recovery-code`` (show a recovery
code once), until the authorization code is issued and the transaction is
closed.

Transactions live in memory beside the tenant's other transient records
(a restart forgets them, as it forgets a login in progress), keyed by the
digest of their id. They last an hour, Auth0's limit for a login
transaction, and at most :data:`MAX_LOGINS` are kept.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Literal

import attrs
from attrs import field, frozen

from ._secrets import digest, new_token, same

if TYPE_CHECKING:
    from ._tenant import Tenant

__all__ = ["LOGIN_LIFETIME", "MAX_LOGINS", "AuthorizationRequest", "Login", "Logins"]

#: Seconds a login transaction lasts.
LOGIN_LIFETIME = 3600.0
#: How many open transactions a tenant keeps; the oldest go first.
MAX_LOGINS = 10_000

Step = Literal["login", "mfa", "enrol", "recovery-code"]


@frozen
class AuthorizationRequest:
    """A checked ``/authorize`` request: where and how to answer the client.

    ``audience`` is canonical (the MFA audience in its ``https`` spelling);
    ``prompt`` holds the values of the ``prompt`` parameter.
    """

    client_id: str
    redirect_uri: str
    state: str | None = None
    scope: str | None = None
    audience: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    login_hint: str | None = None
    prompt: tuple[str, ...] = ()


@frozen
class Login:
    """One sign-in in progress.

    ``amr`` lists the methods passed in this transaction (``pwd``, ``mfa``);
    ``session_amr`` and ``auth_time`` come from the login session it
    continues, if any. ``factor`` is the chosen authenticator's id (or
    ``recovery-code``) and ``oob_code`` its pending challenge. The
    ``enrolment_*`` fields describe an OTP enrolment waiting for its first
    code; ``recovery_codes`` are shown once on the ``recovery-code`` step.
    """

    key: str
    csrf: str = field(repr=False)
    request: AuthorizationRequest
    created_at: float
    expires_at: float
    step: Step = "login"
    email: str = field(default="", repr=False)
    user_id: str | None = None
    amr: tuple[str, ...] = ()
    session_amr: tuple[str, ...] = ()
    auth_time: float | None = None
    factor: str | None = None
    oob_code: str | None = field(default=None, repr=False)
    enrolment_id: str | None = None
    enrolment_secret: str | None = field(default=None, repr=False)
    enrolment_uri: str | None = field(default=None, repr=False)
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)
    first_enrolment: bool = False
    choosing: bool = False

    def csrf_matches(self, given: str | None) -> bool:
        """Whether ``given`` is this transaction's anti-forgery token."""
        return given is not None and same(given, self.csrf)


class Logins:
    """The open login transactions of one tenant."""

    def __init__(self) -> None:
        self._by_key: dict[str, Login] = {}

    def open(
        self, request: AuthorizationRequest, now: float, **fields: object
    ) -> tuple[str, Login]:
        """Open a transaction for ``request``; return its id (a secret) and record."""
        self.prune(now)
        login_id = new_token()
        login = Login(
            key=digest(login_id),
            csrf=new_token(nbytes=24),
            request=request,
            created_at=now,
            expires_at=now + LOGIN_LIFETIME,
            **fields,  # type: ignore[arg-type]
        )
        self._by_key[login.key] = login
        return login_id, login

    def get(self, login_id: str, now: float) -> Login | None:
        """Return the live transaction with ``login_id``, or ``None``."""
        login = self._by_key.get(digest(login_id))
        if login is None or now >= login.expires_at:
            return None
        return login

    def update(self, login: Login, **changes: object) -> Login:
        """Store ``login`` with ``changes``; return the new record."""
        updated = attrs.evolve(login, **changes)  # type: ignore[arg-type]
        self._by_key[login.key] = updated
        return updated

    def close(self, login: Login) -> None:
        """Forget a finished transaction."""
        self._by_key.pop(login.key, None)

    def prune(self, now: float) -> None:
        """Forget expired transactions, and the oldest beyond :data:`MAX_LOGINS`."""
        expired = [
            key for key, login in self._by_key.items() if now >= login.expires_at
        ]
        for key in expired:
            del self._by_key[key]
        while len(self._by_key) >= MAX_LOGINS:
            del self._by_key[next(iter(self._by_key))]

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"<Logins: {len(self)} open>"


# Every view of a tenant (see Tenant.with_issuer) shares its transient
# records, so transactions are kept per transient-state object; they go
# when it does.
_REGISTRY: dict[int, Logins] = {}


def logins_of(tenant: Tenant) -> Logins:
    """Return the login transactions of ``tenant`` (shared by all its views)."""
    transient = tenant.transient
    key = id(transient)
    found = _REGISTRY.get(key)
    if found is None:
        found = _REGISTRY[key] = Logins()
        weakref.finalize(transient, _REGISTRY.pop, key, None)
    return found
