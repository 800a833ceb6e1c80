"""The tenant's state: what it knows about users, authenticators and tokens.

Two kinds of state, kept apart on purpose:

Durable records live in a :class:`StateStore` (:class:`MemoryStore` by
default, :class:`SQLiteStore` to survive restarts):

- :class:`User`: a user of the database connection, with a password hash;
- :class:`Authenticator`: an enrolled factor (``otp``, ``oob`` by ``sms``,
  ``voice``, ``email`` or ``auth0`` push, or ``recovery-code``), active once
  confirmed, linked to its twin (push and its OTP; SMS and voice);
- :class:`RefreshToken`: one refresh token, by digest, in a *family* (every
  token issued from one original grant);
- notes the tenant keeps about itself, as named strings: which configured
  records it has written, how far its clock was moved.

Transient records live in memory only, in :class:`TransientState`; a restart
forgets them, as a login in progress would be forgotten:

- :class:`MfaTransaction`: the login (or enrolment) an ``mfa_token`` stands for;
- :class:`OobChallenge`: an ``oob_code`` waiting for its binding code or for
  a push decision;
- :class:`AuthorizationCode`: a code issued by ``/authorize``, to redeem at
  ``/oauth/token``;
- :class:`LoginSession`: a browser session of the login pages;
- :class:`Message`: a code "sent" by SMS, voice or email, in the outbox;
- :class:`Lockout`: a user's consecutive failed passwords (brute-force
  protection).

Records are immutable: change one with :func:`attrs.evolve` and put it back.
No record holds a password, a token or a recovery code in clear: tokens and
codes are kept as SHA-256 digests (``*_hash`` fields). TOTP secrets are the
exception, as verifying a code needs them; they never appear in reprs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import attrs
from attrs import define, field, frozen

from ._errors import TenantSetupError
from ._limits import TokenBucket

__all__ = [
    "Authenticator",
    "AuthorizationCode",
    "LoginSession",
    "MemoryStore",
    "Message",
    "MfaTransaction",
    "OobChallenge",
    "PushRequest",
    "RefreshToken",
    "SQLiteStore",
    "StateStore",
    "TransientState",
    "User",
]

_R = TypeVar("_R")


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


AuthenticatorType = Literal["otp", "oob", "recovery-code"]

#: Auth0's factor type (as in ``mfa_requirements``) of each channel.
_FACTOR_TYPES = {
    "otp": "otp",
    "sms": "phone",
    "voice": "phone",
    "email": "email",
    "auth0": "push-notification",
    "recovery-code": "recovery-code",
}
#: The prefix of authenticator ids, by channel.
ID_PREFIXES = {
    "otp": "totp",
    "sms": "sms",
    "voice": "voice",
    "email": "email",
    "auth0": "push",
    "recovery-code": "recovery-code",
}


@frozen
class User:
    """A user of the tenant's database connection.

    ``blocked`` is an administrator's block of every login;
    ``password_leaked`` says the password was found in a data breach.
    """

    id: str
    email: str
    password_hash: str = field(repr=False)
    name: str = ""
    mfa: Literal["never", "always"] = "never"
    email_verified: bool = True
    blocked: bool = False
    password_leaked: bool = False


@frozen
class Authenticator:
    """An enrolled factor of a user, as ``GET /mfa/authenticators`` lists it.

    ``oob_channel`` is ``sms``, ``voice``, ``email`` or ``auth0`` (push)
    for ``oob`` authenticators. ``recipient`` is the phone number or email
    address codes go to. ``secret`` is the base32 TOTP secret of an ``otp``
    authenticator, or the digest of a ``recovery-code``'s code.
    ``last_otp_step`` is the last TOTP time step accepted, so that a code is
    used once.
    """

    id: str
    user_id: str
    authenticator_type: AuthenticatorType
    oob_channel: str | None = None
    active: bool = False
    created_at: float = 0.0
    name: str | None = None
    recipient: str | None = None
    secret: str | None = field(default=None, repr=False)
    twin_id: str | None = None
    last_otp_step: int = -1

    @property
    def channel(self) -> str:
        """``otp``, ``recovery-code``, or the ``oob_channel``."""
        return self.oob_channel or self.authenticator_type

    @property
    def type(self) -> str:
        """Auth0's factor type: ``otp``, ``phone``, ``email``, ``push-notification``."""
        return _FACTOR_TYPES[self.channel]

    def to_json(self) -> dict[str, Any]:
        """Return the authenticator as ``GET /mfa/authenticators`` lists it."""
        listed: dict[str, Any] = {
            "id": self.id,
            "authenticator_type": self.authenticator_type,
            "active": self.active,
            "type": self.type,
        }
        if self.oob_channel is not None:
            listed["oob_channel"] = self.oob_channel
        if self.name is not None:
            listed["name"] = self.name
        return listed


@frozen
class RefreshToken:
    """One refresh token, stored by the digest of its value.

    ``family_id`` groups every token issued from one original grant;
    ``family_issued_at`` starts the absolute lifetime, which rotation does
    not extend. ``rotated_at`` is set when the token was exchanged for a
    newer one (rotation); ``revoked`` when its family was revoked.
    """

    token_hash: str
    family_id: str
    user_id: str
    client_id: str
    audience: str | None
    scope: tuple[str, ...] = field(converter=_strings)
    amr: tuple[str, ...] = field(converter=_strings)
    issued_at: float
    family_issued_at: float
    last_used_at: float
    rotated_at: float | None = None
    revoked: bool = False


class StateStore(Protocol):
    """Where the tenant keeps its durable records.

    Lists come back in insertion order. Implementations need not be
    thread-safe: the tenant calls them under its own lock.
    """

    def get_user(self, user_id: str) -> User | None: ...

    def find_user(self, email: str) -> User | None:
        """Return the user with ``email`` (compared without case), or ``None``."""
        ...

    def put_user(self, user: User) -> None: ...

    def users(self) -> list[User]: ...

    def authenticators(self, user_id: str) -> list[Authenticator]: ...

    def get_authenticator(self, authenticator_id: str) -> Authenticator | None: ...

    def put_authenticator(self, authenticator: Authenticator) -> None: ...

    def delete_authenticator(self, authenticator_id: str) -> None: ...

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None: ...

    def put_refresh_token(self, token: RefreshToken) -> None: ...

    def refresh_family(self, family_id: str) -> list[RefreshToken]: ...

    def get_note(self, name: str) -> str | None:
        """Return the note ``name`` the tenant kept about itself, or ``None``."""
        ...

    def put_note(self, name: str, value: str) -> None:
        """Keep the note ``name`` (such as which configured records are written)."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """A :class:`StateStore` in dictionaries; gone when the process ends."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._authenticators: dict[str, Authenticator] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self._notes: dict[str, str] = {}

    def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def find_user(self, email: str) -> User | None:
        wanted = email.lower()
        return next(
            (u for u in self._users.values() if u.email.lower() == wanted), None
        )

    def put_user(self, user: User) -> None:
        self._users[user.id] = user

    def users(self) -> list[User]:
        return list(self._users.values())

    def authenticators(self, user_id: str) -> list[Authenticator]:
        return [a for a in self._authenticators.values() if a.user_id == user_id]

    def get_authenticator(self, authenticator_id: str) -> Authenticator | None:
        return self._authenticators.get(authenticator_id)

    def put_authenticator(self, authenticator: Authenticator) -> None:
        self._authenticators[authenticator.id] = authenticator

    def delete_authenticator(self, authenticator_id: str) -> None:
        self._authenticators.pop(authenticator_id, None)

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return self._refresh_tokens.get(token_hash)

    def put_refresh_token(self, token: RefreshToken) -> None:
        self._refresh_tokens[token.token_hash] = token

    def refresh_family(self, family_id: str) -> list[RefreshToken]:
        return [t for t in self._refresh_tokens.values() if t.family_id == family_id]

    def get_note(self, name: str) -> str | None:
        return self._notes.get(name)

    def put_note(self, name: str, value: str) -> None:
        self._notes[name] = value

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email_key TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS authenticators (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS authenticators_by_user ON authenticators (user_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS notes (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class SQLiteStore:
    """A :class:`StateStore` in an SQLite file, surviving restarts.

    Each record is a row holding its fields as JSON, with the columns the
    store looks records up by. The file holds password hashes, TOTP secrets
    and digests of tokens, never a password or a token.

    Args:
        path: The database file; created with its tables when missing.

    Raises:
        TenantSetupError: the file cannot be opened or is not a database.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = _open_database(self.path)

    def get_user(self, user_id: str) -> User | None:
        return self._one(User, "SELECT data FROM users WHERE id = ?", user_id)

    def find_user(self, email: str) -> User | None:
        return self._one(
            User, "SELECT data FROM users WHERE email_key = ?", email.lower()
        )

    def put_user(self, user: User) -> None:
        self._write(
            "INSERT INTO users (id, email_key, data) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET email_key = excluded.email_key, "
            "data = excluded.data",
            user.id,
            user.email.lower(),
            _dump(user),
        )

    def users(self) -> list[User]:
        return self._all(User, "SELECT data FROM users ORDER BY rowid")

    def authenticators(self, user_id: str) -> list[Authenticator]:
        return self._all(
            Authenticator,
            "SELECT data FROM authenticators WHERE user_id = ? ORDER BY rowid",
            user_id,
        )

    def get_authenticator(self, authenticator_id: str) -> Authenticator | None:
        return self._one(
            Authenticator,
            "SELECT data FROM authenticators WHERE id = ?",
            authenticator_id,
        )

    def put_authenticator(self, authenticator: Authenticator) -> None:
        self._write(
            "INSERT INTO authenticators (id, user_id, data) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            authenticator.id,
            authenticator.user_id,
            _dump(authenticator),
        )

    def delete_authenticator(self, authenticator_id: str) -> None:
        self._write("DELETE FROM authenticators WHERE id = ?", authenticator_id)

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return self._one(
            RefreshToken,
            "SELECT data FROM refresh_tokens WHERE token_hash = ?",
            token_hash,
        )

    def put_refresh_token(self, token: RefreshToken) -> None:
        self._write(
            "INSERT INTO refresh_tokens (token_hash, family_id, data) VALUES (?, ?, ?) "
            "ON CONFLICT (token_hash) DO UPDATE SET data = excluded.data",
            token.token_hash,
            token.family_id,
            _dump(token),
        )

    def refresh_family(self, family_id: str) -> list[RefreshToken]:
        return self._all(
            RefreshToken,
            "SELECT data FROM refresh_tokens WHERE family_id = ? ORDER BY rowid",
            family_id,
        )

    def get_note(self, name: str) -> str | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT value FROM notes WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row[0])

    def put_note(self, name: str, value: str) -> None:
        self._write(
            "INSERT INTO notes (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            name,
            value,
        )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

    def _one(self, kind: type[_R], sql: str, *args: Any) -> _R | None:
        rows = self._all(kind, sql, *args)
        return rows[0] if rows else None

    def _all(self, kind: type[_R], sql: str, *args: Any) -> list[_R]:
        with self._lock:
            rows = self._connection.execute(sql, args).fetchall()
        return [kind(**json.loads(row[0])) for row in rows]

    def _write(self, sql: str, *args: Any) -> None:
        with self._lock, self._transaction():
            self._connection.execute(sql, args)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


def _open_database(path: Path) -> sqlite3.Connection:
    """Open the state file at ``path``, making it and its tables when missing.

    A new file is readable by its owner only, as it holds password hashes
    and TOTP secrets; SQLite gives its journal files the same permissions.
    """
    if not path.parent.is_dir():
        msg = (
            f"Cannot open the state file {str(path)!r}: its folder "
            f"{str(path.parent)!r} does not exist."
        )
        raise TenantSetupError(msg)
    try:
        _create_private(path)
        connection = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None
        )
    except OSError as exc:
        msg = f"Cannot open the state file {str(path)!r}: {exc.strerror or exc}."
        raise TenantSetupError(msg) from exc
    except sqlite3.Error as exc:
        msg = f"Cannot open the state file {str(path)!r}: {exc}."
        raise TenantSetupError(msg) from exc
    try:
        connection.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        connection.close()
        msg = f"Cannot use the state file {str(path)!r}: {exc}."
        raise TenantSetupError(msg) from exc
    return connection


def _create_private(path: Path) -> None:
    """Create ``path``, empty and with mode 0600, unless it exists.

    An empty file is an SQLite database without tables.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def _dump(record: Any) -> str:
    return json.dumps(attrs.asdict(record))


# --- Transient state ------------------------------------------------------------------


@frozen
class MfaTransaction:
    """What an ``mfa_token`` (or an access token used to enrol) stands for.

    ``kind`` is ``login`` for an ``mfa_token`` from ``mfa_required``: it ends
    by issuing the tokens the login asked for (``audience``, ``scope``).
    ``kind`` is ``enrolment`` for an MFA-audience access token used at
    ``/mfa/associate``: confirming the enrolment issues a new MFA-audience
    token. ``refresh_token_hash`` is set when a refresh asked for step-up.
    ``enrolments`` are the ids of the authenticators associated in this
    transaction, which it may confirm.
    """

    token_hash: str
    kind: Literal["login", "enrolment"]
    user_id: str
    client_id: str
    audience: str | None
    scope: tuple[str, ...] = field(converter=_strings)
    created_at: float
    expires_at: float
    refresh_token_hash: str | None = None
    enrolments: tuple[str, ...] = field(default=(), converter=_strings)


@frozen
class OobChallenge:
    """An ``oob_code``: a code sent by SMS, voice or email, or a push request.

    ``binding_hash`` is the digest of the code sent (``None`` for push).
    ``transaction_hash`` ties the challenge to its :class:`MfaTransaction`
    (``None`` when started by the login pages). ``decision`` is the push
    answer: ``pending``, ``approved`` or ``rejected``. ``request_id`` is a
    public handle of the challenge, used to approve or reject a push and as
    the push enrolment's ``enrollment_tx_id``.
    """

    code_hash: str
    request_id: str
    user_id: str
    authenticator_id: str
    channel: str
    created_at: float
    expires_at: float
    enrolment: bool = False
    transaction_hash: str | None = None
    binding_hash: str | None = field(default=None, repr=False)
    decision: Literal["pending", "approved", "rejected"] = "pending"


@frozen
class PushRequest:
    """A push notification waiting for the user's decision."""

    id: str
    user_id: str
    authenticator_id: str
    enrolment: bool
    created_at: float
    expires_at: float


@frozen
class AuthorizationCode:
    """An authorization code issued for a logged-in user, redeemable once.

    ``code_challenge_method`` is ``S256`` or ``plain`` when a PKCE
    ``code_challenge`` was given. ``family_id`` names the refresh-token family
    issued on redemption, revoked if the code is presented again.
    """

    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: tuple[str, ...] = field(converter=_strings)
    audience: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    amr: tuple[str, ...] = field(converter=_strings)
    auth_time: float
    created_at: float
    expires_at: float
    used_at: float | None = None
    family_id: str | None = None


@frozen
class LoginSession:
    """A browser session of the login pages, found by its cookie's digest.

    ``amr`` lists how the user authenticated (``pwd``, then ``mfa``).
    """

    session_hash: str
    user_id: str
    created_at: float
    expires_at: float
    amr: tuple[str, ...] = field(converter=_strings)


@frozen
class Message:
    """A one-time code the tenant sent by ``sms``, ``voice`` or ``email``.

    Messages land in the outbox instead of a real phone or mailbox, where a
    test (or a person, through the control endpoints) reads them.
    ``purpose`` is ``enrolment`` or ``challenge``.
    """

    channel: str
    recipient: str
    code: str = field(repr=False)
    user_id: str
    sent_at: float
    purpose: Literal["enrolment", "challenge"]

    def to_json(self) -> dict[str, Any]:
        """Return the message as the control endpoints show it (code included)."""
        return attrs.asdict(self)


@frozen
class Lockout:
    """A user's run of failed passwords, and the block it led to, if any."""

    failures: int = 0
    blocked_until: float | None = None


@define
class TransientState:
    """The in-memory records, each keyed by its digest (or id)."""

    transactions: dict[str, MfaTransaction] = attrs.Factory(dict)
    challenges: dict[str, OobChallenge] = attrs.Factory(dict)
    codes: dict[str, AuthorizationCode] = attrs.Factory(dict)
    sessions: dict[str, LoginSession] = attrs.Factory(dict)
    outbox: list[Message] = attrs.Factory(list)
    #: Rate-limit buckets by (limit name, what the limit counts for).
    buckets: dict[tuple[str, str], TokenBucket] = attrs.Factory(dict)
    #: Brute-force protection: failed passwords and blocks by user id.
    lockouts: dict[str, Lockout] = attrs.Factory(dict)

    #: How long expired records stay, so that using one says "expired".
    RETENTION = 3600.0
    #: How many messages the outbox keeps.
    OUTBOX_SIZE = 1000

    def prune(self, now: float) -> None:
        """Forget records that expired more than :attr:`RETENTION` seconds ago."""
        horizon = now - self.RETENTION
        for table in (self.transactions, self.challenges, self.codes, self.sessions):
            stale = [key for key, item in table.items() if item.expires_at < horizon]
            for key in stale:
                del table[key]
        # A full bucket is what a new one would be: forgetting it loses nothing.
        full = [name for name, bucket in self.buckets.items() if bucket.is_full(now)]
        for name in full:
            del self.buckets[name]
        del self.outbox[: -self.OUTBOX_SIZE]
