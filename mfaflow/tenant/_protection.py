"""Signing in with a password, behind Auth0's attack protection.

The password grants and the login pages both sign users in through
:func:`sign_in`, so both answer alike. Choices (also in ``docs/tenant.md``):

- Wrong email or password: 403 ``invalid_grant`` ``Wrong email or
  password.``, as observed.
- Brute-force protection: ``limits.login_failures`` (10) consecutive wrong
  passwords for one user block their logins for ``limits.login_lockout``
  seconds (30 days, the longest Auth0 keeps such a block), answering 429
  ``too_many_attempts`` ``Your account has been blocked after multiple
  consecutive login attempts.`` even for the right password, with the
  seconds until the block ends (rounded up) as ``Retry-After`` and no
  ``X-RateLimit-*`` headers, as it is no rate limit. Auth0 counts
  per user and IP address; every client of a test tenant is on loopback,
  so the tenant counts per user. A right password resets the count;
  :meth:`Tenant.unblock_user` (``POST /__control/users/unblock``) lifts
  the block. The count lives in memory, as a login in progress does.
- A user an administrator blocked (``blocked: true``): 401
  ``unauthorized`` ``user is blocked``.
- A password found in a data breach (``password_leaked: true``): 401
  ``password_leaked`` with Auth0's description; the reference lists this
  code with 401 (legacy ``/oauth/ro``), which the tenant keeps.
- Both are told only to someone who knows the password, so neither
  reveals anything about an account to a guesser.
- ``limits.logins``, when set, limits password logins per username
  (counted whether they succeed or not): 429 ``too_many_requests`` with
  ``Retry-After`` and the ``X-RateLimit-*`` headers. It is off by default:
  Auth0's own limits depend on the plan.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import attrs

from ._errors import OAuthError
from ._factors import bucket
from ._state import Lockout, User

if TYPE_CHECKING:
    from ._tenant import Tenant

__all__ = ["BLOCKED", "LEAKED", "LOCKED_OUT", "WRONG_PASSWORD", "sign_in", "unblock"]

logger = logging.getLogger(__name__)

WRONG_PASSWORD = "Wrong email or password."
LOCKED_OUT = "Your account has been blocked after multiple consecutive login attempts."
BLOCKED = "user is blocked"
LEAKED = (
    "This login attempt has been blocked because the password you're using was "
    "previously disclosed through a data breach (not in this application)."
)


def sign_in(tenant: Tenant, username: str, password: str) -> User:
    """Return the user ``username`` names if ``password`` is theirs and may sign in.

    Raises:
        OAuthError: 429 ``too_many_requests`` (``limits.logins``), 429
            ``too_many_attempts`` (brute-force block), 403 ``invalid_grant``
            (wrong email or password), 401 ``unauthorized`` (blocked user),
            401 ``password_leaked``.
    """
    _check_rate(tenant, username)
    known = tenant.store.find_user(username)
    if known is not None:
        _check_lockout(tenant, known)
    user = tenant.check_password(username, password)
    if user is None:
        if known is not None:
            _count_failure(tenant, known)
        raise OAuthError("invalid_grant", WRONG_PASSWORD, 403)
    tenant.transient.lockouts.pop(user.id, None)
    if user.blocked:
        raise OAuthError("unauthorized", BLOCKED, 401)
    if user.password_leaked:
        raise OAuthError("password_leaked", LEAKED, 401)
    return user


def unblock(tenant: Tenant, user: User) -> User:
    """Lift an administrator's block and a brute-force block of ``user``."""
    tenant.transient.lockouts.pop(user.id, None)
    if user.blocked:
        user = attrs.evolve(user, blocked=False)
        tenant.store.put_user(user)
    logger.debug("Unblocked user %s", user.id)
    return user


def _check_rate(tenant: Tenant, username: str) -> None:
    limit = tenant.config.limits.logins
    if limit is None:
        return
    now = tenant.clock.now()
    logins = bucket(tenant, "logins", username.lower(), limit)
    if not logins.take(now):
        msg = "Too many logins for this user; wait before trying again."
        raise OAuthError("too_many_requests", msg, 429, headers=logins.headers(now))


def _check_lockout(tenant: Tenant, user: User) -> None:
    lockout = tenant.transient.lockouts.get(user.id)
    if lockout is None or lockout.blocked_until is None:
        return
    now = tenant.clock.now()
    if now < lockout.blocked_until:
        # A block, not a rate limit: Retry-After alone, never early.
        wait = str(math.ceil(lockout.blocked_until - now))
        raise OAuthError(
            "too_many_attempts", LOCKED_OUT, 429, headers={"Retry-After": wait}
        )
    del tenant.transient.lockouts[user.id]


def _count_failure(tenant: Tenant, user: User) -> None:
    limits = tenant.config.limits
    if limits.login_failures == 0:
        return
    failures = tenant.transient.lockouts.get(user.id, Lockout()).failures + 1
    blocked_until = None
    if failures >= limits.login_failures:
        blocked_until = tenant.clock.now() + limits.login_lockout
        logger.info("Blocked user %s after %d failed passwords", user.id, failures)
    tenant.transient.lockouts[user.id] = Lockout(failures, blocked_until)
