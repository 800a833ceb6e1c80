"""The embedded tenant: an Auth0-compatible authorization server, in process.

A :class:`Tenant` is a WSGI application (:meth:`Tenant.wsgi_app`) serving
the Authentication API grants, the MFA API, discovery and JWKS, and, when
built with ``control=True``, the test-side control endpoints under
``/__control``. Its Python methods are the same operations, for the login
pages and for tests: check a password, list authenticators, enrol,
challenge, verify a code, issue an authorization code, read the outbox,
approve a push, move the clock.

Every method is safe to call from several threads: one lock guards the
tenant's state, and each HTTP request holds it while it is answered.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit

import attrs
from attrs import define

from . import _factors, _issuing, _protection
from ._clock import Clock
from ._config import (
    AUTHORIZATION_CODE,
    GRANT_TYPES,
    AuthenticatorConfig,
    ClientConfig,
    TenantConfig,
    UserConfig,
    default_config,
)
from ._errors import OAuthError, TenantSetupError
from ._otp import code_at
from ._secrets import digest, hash_password, new_token, verify_password
from ._state import (
    ID_PREFIXES,
    Authenticator,
    AuthorizationCode,
    LoginSession,
    MemoryStore,
    Message,
    PushRequest,
    SQLiteStore,
    StateStore,
    TransientState,
    User,
)
from ._tokens import SigningKey, load_private_key, process_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["Outbox", "Tenant"]

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_PKCE_METHODS = ("S256", "plain")
#: The store's note of how far the tenant's own clock was moved, in seconds.
_CLOCK_OFFSET = "clock_offset"


def _locked(
    method: Callable[Concatenate[Tenant, _P], _R],
) -> Callable[Concatenate[Tenant, _P], _R]:
    """Run a tenant method under the tenant's lock."""

    @functools.wraps(method)
    def locked(self: Tenant, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._shared.lock:
            return method(self, *args, **kwargs)

    return locked


@define
class _Shared:
    """What every view of one tenant (see :meth:`Tenant.with_issuer`) shares."""

    clock: Clock
    store: StateStore
    owns_store: bool
    key: SigningKey
    control: bool
    closed: bool = False
    transient: TransientState = attrs.Factory(TransientState)
    lock: threading.RLock = attrs.Factory(threading.RLock)


class Outbox:
    """The codes the tenant sent by SMS, voice and email, oldest first.

    This is where a test, or a person through ``/__control/outbox``, reads
    what would have reached a phone or a mailbox.
    """

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared

    def messages(
        self, *, user_id: str | None = None, channel: str | None = None
    ) -> list[Message]:
        """Return the messages, optionally only one user's or one channel's."""
        with self._shared.lock:
            return [
                m
                for m in self._shared.transient.outbox
                if user_id in (None, m.user_id) and channel in (None, m.channel)
            ]

    def last(
        self, *, user_id: str | None = None, channel: str | None = None
    ) -> Message | None:
        """Return the newest matching message, or ``None``."""
        found = self.messages(user_id=user_id, channel=channel)
        return found[-1] if found else None

    def clear(self) -> None:
        """Forget every message."""
        with self._shared.lock:
            self._shared.transient.outbox.clear()

    def __len__(self) -> int:
        return len(self._shared.transient.outbox)

    def __repr__(self) -> str:
        return f"<Outbox of {len(self)} messages>"


class Tenant:
    """An Auth0-compatible authorization server with the whole MFA API.

    Args:
        config: What the tenant serves; :func:`default_config` (the demo
            tenant) when omitted.
        clock: The time every expiry, limit and TOTP window reads; a
            system clock when omitted, which then keeps how far it was
            moved in the store, so a tenant restarted on the same state
            file goes on at the time it had reached. Tests pass
            ``Clock.fixed()``.
        store: Where users, authenticators and refresh tokens live; an
            SQLite file when ``config.state_file`` is set, else memory.
        signing_key: The RSA key for tokens; else ``config.signing_key_file``,
            else one key generated per process.
        control: Serve the ``/__control`` endpoints (tests and demos only).

    Raises:
        TenantSetupError: the signing key file or the state file cannot be
            used, or the store holds a user whose email the configuration
            gives another id (a :class:`ValueError` too).
    """

    def __init__(
        self,
        config: TenantConfig | None = None,
        *,
        clock: Clock | None = None,
        store: StateStore | None = None,
        signing_key: RSAPrivateKey | None = None,
        control: bool = False,
    ) -> None:
        self._config = default_config() if config is None else config
        if signing_key is None:
            key_file = self._config.signing_key_file
            signing_key = (
                process_key() if key_file is None else load_private_key(key_file)
            )
        owns_store = store is None
        if store is None:
            state_file = self._config.state_file
            store = MemoryStore() if state_file is None else SQLiteStore(state_file)
        self._shared = _Shared(
            clock=clock or Clock(),
            store=store,
            owns_store=owns_store,
            key=SigningKey(signing_key),
            control=control,
        )
        try:
            with self._shared.lock:
                if clock is None:
                    self._keep_clock_offset()
                for user in self._config.users:
                    self._seed_user(user)
        except BaseException:
            self.close()
            raise

    def with_issuer(self, issuer: str) -> Tenant:
        """Return a view of this tenant whose tokens name ``issuer``.

        The view shares everything else (state, clock, key), so a server
        can bind its port first and then serve the tenant at that URL.
        """
        view = object.__new__(Tenant)
        view._shared = self._shared
        view._config = attrs.evolve(self._config, issuer=issuer)
        return view

    # --- Parts ------------------------------------------------------------------------

    @property
    def config(self) -> TenantConfig:
        """The configuration, with this view's issuer."""
        return self._config

    @property
    def issuer(self) -> str:
        """The issuer URL (``iss``), ending in ``/``."""
        return self._config.issuer

    @property
    def clock(self) -> Clock:
        """The clock every expiry, rate limit and TOTP window reads."""
        return self._shared.clock

    @property
    def store(self) -> StateStore:
        """The durable records: users, authenticators, refresh tokens."""
        return self._shared.store

    @property
    def transient(self) -> TransientState:
        """The in-memory records: MFA transactions, challenges, codes, sessions."""
        return self._shared.transient

    @property
    def outbox(self) -> Outbox:
        """The codes sent by SMS, voice and email."""
        return Outbox(self._shared)

    @property
    def signing_key(self) -> SigningKey:
        """The key that signs the tenant's JWTs."""
        return self._shared.key

    @property
    def lock(self) -> threading.RLock:
        """The lock guarding the tenant's state (re-entrant)."""
        return self._shared.lock

    @property
    def control_enabled(self) -> bool:
        """Whether the ``/__control`` endpoints are served."""
        return self._shared.control

    @property
    def mfa_audience(self) -> str:
        """The MFA API's audience, ``https://{issuer host}/mfa/``."""
        return f"https://{urlsplit(self.issuer).netloc}/mfa/"

    @property
    def mfa_audiences(self) -> frozenset[str]:
        """Every spelling of the MFA audience the tenant accepts."""
        spellings = {self.mfa_audience, self.issuer + "mfa/"}
        return frozenset(spellings | {s.rstrip("/") for s in spellings})

    @property
    def userinfo_audience(self) -> str:
        """The audience of tokens good for ``/userinfo``."""
        return self.issuer + "userinfo"

    def discovery(self) -> dict[str, Any]:
        """Return the OpenID Provider metadata (``openid-configuration``)."""
        issuer = self.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": issuer + "authorize",
            "token_endpoint": issuer + "oauth/token",
            "revocation_endpoint": issuer + "oauth/revoke",
            "userinfo_endpoint": issuer + "userinfo",
            "jwks_uri": issuer + ".well-known/jwks.json",
            "mfa_challenge_endpoint": issuer + "mfa/challenge",
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": list(_PKCE_METHODS),
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "name",
                "nickname",
                "email",
                "email_verified",
            ],
        }

    def jwks(self) -> dict[str, Any]:
        """Return the JSON Web Key Set that verifies the tenant's tokens."""
        return self._shared.key.jwks()

    # --- WSGI -------------------------------------------------------------------------

    def wsgi_app(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one HTTP request (the tenant is a WSGI application)."""
        from ._app import handle

        return handle(self, environ, start_response)

    __call__ = wsgi_app

    def close(self) -> None:
        """Release the store, if the tenant opened it."""
        with self._shared.lock:
            self._shared.closed = True
            if self._shared.owns_store:
                self._shared.store.close()

    def __enter__(self) -> Tenant:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Tenant {self._config.name!r} at {self.issuer!r}>"

    # --- Users and clients ------------------------------------------------------------

    @_locked
    def add_user(
        self,
        email: str,
        password: str,
        *,
        mfa: str = "never",
        name: str = "",
        user_id: str | None = None,
        email_verified: bool = True,
        blocked: bool = False,
        password_leaked: bool = False,
    ) -> User:
        """Add a user to the database connection; the password is stored hashed.

        ``blocked`` and ``password_leaked`` are as in :class:`UserConfig`.

        Raises:
            OAuthError: ``invalid_request`` for a malformed email, id or MFA
                policy; 409 when the email or id is taken.
        """
        if mfa not in ("never", "always"):
            msg = f"mfa must be 'never' or 'always'; got {mfa!r}."
            raise OAuthError("invalid_request", msg)
        password_hash = hash_password(
            password, work_factor=self._config.password_work_factor
        )
        fields: dict[str, Any] = {
            "name": name,
            "email_verified": email_verified,
            "blocked": blocked,
            "password_leaked": password_leaked,
        }
        if user_id is not None:
            fields["id"] = user_id
        policy: Literal["never", "always"] = "always" if mfa == "always" else "never"
        try:
            config = UserConfig(email, password_hash, mfa=policy, **fields)
        except ValueError as exc:
            raise OAuthError("invalid_request", str(exc)) from exc
        if self.store.find_user(email) or self.store.get_user(config.id):
            raise OAuthError("invalid_request", f"User {email!r} already exists.", 409)
        user = _user_record(config)
        self.store.put_user(user)
        logger.debug("Added user %s", user.id)
        return user

    @_locked
    def find_user(self, user: str) -> User | None:
        """Return the user with this id or email, or ``None``."""
        return self.store.get_user(user) or self.store.find_user(user)

    @_locked
    def check_password(self, email: str, password: str) -> User | None:
        """Return the user if ``password`` is theirs, else ``None``."""
        user = self.store.find_user(email)
        if user is None:
            # Spend the same time as for a real user, so timing tells nothing.
            verify_password(password, _decoy_hash(self._config.password_work_factor))
            return None
        return user if verify_password(password, user.password_hash) else None

    @_locked
    def sign_in(self, username: str, password: str) -> User:
        """Check a password login as the password grants do; return the user.

        Unlike :meth:`check_password` it applies the attack protection of
        :mod:`._protection`: brute-force blocks, blocked users, leaked
        passwords and the login rate limit.

        Raises:
            OAuthError: the answer the password grant would give.
        """
        return _protection.sign_in(self, username, password)

    @_locked
    def block_user(self, user: str) -> User:
        """Block every login of ``user`` (id or email), as an administrator would."""
        blocked = attrs.evolve(self._user(user), blocked=True)
        self.store.put_user(blocked)
        return blocked

    @_locked
    def unblock_user(self, user: str) -> User:
        """Lift an administrator's block and a brute-force block of ``user``."""
        return _protection.unblock(self, self._user(user))

    def client(self, client_id: str) -> ClientConfig | None:
        """Return the client with ``client_id``, or ``None``."""
        return self._config.client(client_id)

    def redirect_uri_allowed(self, client_id: str, redirect_uri: str) -> bool:
        """Whether ``redirect_uri`` is a callback URL of the client.

        Exact matches are allowed, and (RFC 8252) an ``http`` loopback URL
        (127.0.0.1, ::1, localhost) matching a loopback callback in all but
        the port.
        """
        client = self._config.client(client_id)
        if client is None:
            return False
        if redirect_uri in client.callbacks:
            return True
        given = urlsplit(redirect_uri)
        if given.scheme != "http" or given.hostname not in _LOOPBACK_HOSTS:
            return False
        return any(
            (wanted.scheme, wanted.hostname, wanted.path, wanted.query)
            == ("http", given.hostname, given.path, given.query)
            for wanted in map(urlsplit, client.callbacks)
        )

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser page at ``origin`` may call the tenant's APIs (CORS).

        Allowed are the ``web_origins`` of every client, exactly, and for a
        loopback one written without a port (``http://127.0.0.1``) the same
        scheme and host on any port.
        """
        given = urlsplit(origin.rstrip("/"))
        for client in self._config.clients:
            for allowed in client.web_origins:
                if origin.rstrip("/") == allowed:
                    return True
                wanted = urlsplit(allowed)
                if (
                    wanted.hostname in _LOOPBACK_HOSTS
                    and wanted.port is None
                    and (wanted.scheme, wanted.hostname)
                    == (given.scheme, given.hostname)
                ):
                    return True
        return False

    @_locked
    def needs_mfa(self, user: str, audience: str | None = None) -> bool:
        """Whether a login of ``user`` (id or email) for ``audience`` must pass MFA."""
        return _factors.needs_mfa(
            self, self._user(user), _issuing.audience_of(self, audience)
        )

    # --- Authenticators ---------------------------------------------------------------

    @_locked
    def authenticators(
        self, user: str, *, active_only: bool = False
    ) -> list[Authenticator]:
        """Return a user's authenticators (including recovery codes), oldest first."""
        found = self.store.authenticators(self._user(user).id)
        return [a for a in found if a.active] if active_only else found

    @_locked
    def mfa_requirements(self, user: str) -> dict[str, list[dict[str, str]]]:
        """Return what ``mfa_required`` lists: ``challenge`` or ``enroll`` types."""
        return _factors.requirements(self, self._user(user).id)

    @_locked
    def enrol(
        self,
        user: str,
        factor: str,
        *,
        phone_number: str | None = None,
        email: str | None = None,
    ) -> _factors.Enrolment:
        """Enrol a new, inactive authenticator; see :func:`_factors.enrol`.

        ``factor`` is ``otp``, ``sms``, ``voice``, ``email`` or ``push``.
        Confirm it with :meth:`verify_otp` (``authenticator_id`` set to the
        new authenticator) or :meth:`verify_oob` (its ``oob_code``).
        """
        return _factors.enrol(
            self, self._user(user), factor, phone_number=phone_number, email=email
        )

    @_locked
    def delete_authenticator(self, user: str, authenticator_id: str) -> None:
        """Delete a user's authenticator and its twin (404 ``not_found`` if missing)."""
        _factors.delete(self, self._user(user).id, authenticator_id)

    @_locked
    def challenge(self, user: str, authenticator_id: str) -> _factors.Challenge:
        """Challenge one of the user's active authenticators.

        Sends a code by SMS, voice or email (to the outbox), starts a push,
        or, for OTP, nothing. Verify with :meth:`verify_oob` (``oob_code``)
        or :meth:`verify_otp`.
        """
        found = self._authenticator(user, authenticator_id)
        if not found.active:
            msg = f"Authenticator {authenticator_id!r} is not active yet."
            raise OAuthError("invalid_request", msg)
        return _factors.start_challenge(self, found)

    @_locked
    def verify_otp(
        self, user: str, code: str, *, authenticator_id: str | None = None
    ) -> Authenticator:
        """Check a TOTP code; return the authenticator it belongs to.

        Without ``authenticator_id`` any active OTP authenticator of the
        user may match; with it, only that one, which is confirmed (made
        active) if it was a pending enrolment.

        Raises:
            OAuthError: ``invalid_grant`` ``Invalid otp_code.`` or 429
                ``too_many_attempts``.
        """
        user_id = self._user(user).id
        if authenticator_id is None:
            candidates = _factors.otp_candidates(self, user_id)
        else:
            candidates = [self._authenticator(user_id, authenticator_id)]
        return _factors.verify_otp(self, user_id, code, candidates)

    @_locked
    def verify_oob(
        self, oob_code: str, binding_code: str | None = None
    ) -> Authenticator:
        """Settle a challenge started by :meth:`challenge` or :meth:`enrol`.

        Give the ``binding_code`` the user received for SMS, voice and
        email; for push, call repeatedly until the push is approved.

        Raises:
            OAuthError: ``authorization_pending``, ``slow_down``,
                ``access_denied`` (rejected push), ``invalid_grant``,
                ``too_many_attempts``.
        """
        return _factors.verify_oob(self, oob_code, binding_code, transaction_hash=None)

    @_locked
    def verify_recovery_code(self, user: str, code: str) -> str:
        """Check a recovery code; return the replacement code the user must keep."""
        return _factors.verify_recovery_code(self, self._user(user).id, code)

    # --- Authorization codes and sessions ---------------------------------------------

    @_locked
    def issue_authorization_code(
        self,
        client_id: str,
        user_id: str,
        redirect_uri: str,
        *,
        scope: str | None = "openid",
        audience: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        nonce: str | None = None,
        amr: Sequence[str] = ("pwd",),
        auth_time: float | None = None,
    ) -> str:
        """Issue an authorization code for a logged-in user; return the code.

        The code is redeemed once at ``/oauth/token`` (grant
        ``authorization_code``) with the same ``redirect_uri`` and, when
        ``code_challenge`` was given, the PKCE ``code_verifier``.
        ``code_challenge_method`` is ``S256`` or ``plain`` (the default,
        per RFC 7636). ``amr`` says how the user authenticated (add
        ``mfa`` after an MFA challenge).

        Raises:
            OAuthError: unknown client (``invalid_client``), grant not allowed
                (``unauthorized_client``), redirect URI not registered or bad
                PKCE method (``invalid_request``), unknown API
                (``access_denied``), unknown user (``not_found``).
        """
        client = self._client(client_id)
        if not client.allows(AUTHORIZATION_CODE):
            msg = f"Grant type `{AUTHORIZATION_CODE}` not allowed for the client."
            raise OAuthError("unauthorized_client", msg, 403)
        if not self.redirect_uri_allowed(client_id, redirect_uri):
            msg = (
                f"redirect_uri {redirect_uri!r} is not a callback URL of {client_id!r}."
            )
            raise OAuthError("invalid_request", msg)
        method = _pkce_method(code_challenge, code_challenge_method)
        user = self._user(user_id)
        target = _issuing.audience_of(self, audience)
        now = self.clock.now()
        code = new_token()
        self.transient.prune(now)
        self.transient.codes[digest(code)] = AuthorizationCode(
            code_hash=digest(code),
            client_id=client_id,
            user_id=user.id,
            redirect_uri=redirect_uri,
            scope=_issuing.granted_scope(self, client, target, scope),
            audience=target,
            code_challenge=code_challenge,
            code_challenge_method=method,
            nonce=nonce,
            amr=amr,
            auth_time=now if auth_time is None else auth_time,
            created_at=now,
            expires_at=now + self._config.lifetimes.authorization_code,
        )
        logger.debug("Issued an authorization code to client %s", client_id)
        return code

    @_locked
    def start_session(self, user: str, *, amr: Sequence[str] = ("pwd",)) -> str:
        """Start a login session; return its id (a secret cookie value)."""
        session_id = new_token()
        now = self.clock.now()
        self.transient.prune(now)
        self.transient.sessions[digest(session_id)] = LoginSession(
            session_hash=digest(session_id),
            user_id=self._user(user).id,
            created_at=now,
            expires_at=now + self._config.lifetimes.login_session,
            amr=amr,
        )
        return session_id

    @_locked
    def get_session(self, session_id: str) -> LoginSession | None:
        """Return the live session with this id, or ``None``."""
        session = self.transient.sessions.get(digest(session_id))
        if session is None or self.clock.now() >= session.expires_at:
            return None
        return session

    @_locked
    def add_session_amr(self, session_id: str, method: str) -> LoginSession:
        """Record another authentication method (such as ``mfa``) in a session."""
        session = self.get_session(session_id)
        if session is None:
            raise OAuthError("not_found", "The login session does not exist.", 404)
        updated = attrs.evolve(session, amr=(*session.amr, method))
        self.transient.sessions[session.session_hash] = updated
        return updated

    @_locked
    def end_session(self, session_id: str) -> None:
        """End a login session (log out); unknown ids are ignored."""
        self.transient.sessions.pop(digest(session_id), None)

    # --- Control surface --------------------------------------------------------------

    @_locked
    def last_code(self, user: str, channel: str | None = None) -> str:
        """Return the newest code sent to ``user`` (id or email), by ``channel``.

        Raises:
            OAuthError: 404 ``not_found`` when no code was sent.
        """
        message = self.outbox.last(user_id=self._user(user).id, channel=channel)
        if message is None:
            via = f" by {channel}" if channel else ""
            raise OAuthError("not_found", f"No code was sent to {user!r}{via}.", 404)
        return message.code

    @_locked
    def pending_pushes(self, user: str | None = None) -> list[PushRequest]:
        """Return the push requests waiting for a decision, oldest first."""
        user_id = None if user is None else self._user(user).id
        return _factors.pending_pushes(self, user_id)

    @_locked
    def approve_push(
        self, user: str | None = None, *, request_id: str | None = None
    ) -> PushRequest:
        """Approve the newest pending push of ``user``, or the push ``request_id``."""
        user_id = None if user is None else self._user(user).id
        return _factors.decide_push(
            self, approve=True, user_id=user_id, request_id=request_id
        )

    @_locked
    def reject_push(
        self, user: str | None = None, *, request_id: str | None = None
    ) -> PushRequest:
        """Reject the newest pending push of ``user``, or the push ``request_id``."""
        user_id = None if user is None else self._user(user).id
        return _factors.decide_push(
            self, approve=False, user_id=user_id, request_id=request_id
        )

    @_locked
    def current_totp(self, authenticator_id: str) -> str:
        """Return the code an authenticator app shows now for an OTP authenticator."""
        found = self.store.get_authenticator(authenticator_id)
        if found is None or found.authenticator_type != "otp" or not found.secret:
            msg = f"No OTP authenticator {authenticator_id!r}."
            raise OAuthError("not_found", msg, 404)
        return code_at(found.secret, self.clock.now())

    # --- Helpers ----------------------------------------------------------------------

    def _user(self, user: str) -> User:
        found = self.store.get_user(user) or self.store.find_user(user)
        if found is None:
            raise OAuthError("not_found", f"No user {user!r}.", 404)
        return found

    def _client(self, client_id: str) -> ClientConfig:
        client = self._config.client(client_id)
        if client is None:
            raise OAuthError("invalid_client", f"Unknown client {client_id!r}.", 401)
        return client

    def _authenticator(self, user: str, authenticator_id: str) -> Authenticator:
        found = self.store.get_authenticator(authenticator_id)
        if found is None or found.user_id != self._user(user).id:
            raise OAuthError(
                "not_found", f"Authenticator {authenticator_id!r} not found.", 404
            )
        return found

    def _keep_clock_offset(self) -> None:
        """Move the clock as far as it had been moved, and note each move.

        Stored records carry times of the moved clock (TOTP steps used,
        expiries); a clock back at real time would refuse codes until real
        time caught up.
        """
        noted = self.store.get_note(_CLOCK_OFFSET)
        if noted is not None:
            self._shared.clock = Clock(offset=float(noted))
        self.clock.on_advance(self._note_clock_offset)

    def _note_clock_offset(self) -> None:
        with self._shared.lock:
            if not self._shared.closed:
                self.store.put_note(_CLOCK_OFFSET, repr(self.clock.offset))

    def _seed_user(self, config: UserConfig) -> None:
        """Write a configured user and its authenticators, each only once.

        The store notes every configured record it has been given; from then
        on its copy wins, so a block, a deleted authenticator or a replaced
        recovery code stays as it is across restarts.
        """
        other = self.store.find_user(config.email)
        if other is not None and other.id != config.id:
            msg = (
                f"The state store has user {config.email!r} with id {other.id!r}, "
                f"but the configuration gives id {config.id!r}."
            )
            raise TenantSetupError(msg)
        if not self._seeded(f"user:{config.id}"):
            self.store.put_user(_user_record(config))
            self._note_seeded(f"user:{config.id}")
        user = self.store.get_user(config.id)
        if user is None:
            return  # seeded once and gone since: the store's word stands
        for index, authenticator in enumerate(config.authenticators):
            self._seed_authenticator(user, index, authenticator)
        if config.recovery_code is not None:
            self._seed_recovery_code(user, config.recovery_code)

    def _seed_authenticator(
        self, user: User, index: int, config: AuthenticatorConfig
    ) -> None:
        channel = "auth0" if config.type == "push" else config.type
        primary_id = config.id or _seed_id(user.id, str(index), channel)
        if self._seeded(f"authenticator:{primary_id}"):
            return
        # A store from before seeding was noted may hold the records already.
        if self.store.get_authenticator(primary_id) is None:
            twin = _factors.twin_channel(self, channel)
            twin_id = None if twin is None else _seed_id(user.id, f"{index}-twin", twin)
            recipient = config.phone_number
            if config.type == "email":
                recipient = config.email or user.email
            _factors.create_authenticators(
                self,
                user,
                config.type,
                recipient,
                active=True,
                ids=(primary_id, twin_id),
                secret=config.secret,
            )
        self._note_seeded(f"authenticator:{primary_id}")

    def _seed_recovery_code(self, user: User, code: str) -> None:
        code_id = _seed_id(user.id, "recovery-code", "recovery-code")
        if self._seeded(f"authenticator:{code_id}"):
            return
        if self.store.get_authenticator(code_id) is None:
            _factors.store_recovery_code(
                self, user, code, active=True, authenticator_id=code_id
            )
        self._note_seeded(f"authenticator:{code_id}")

    def _seeded(self, item: str) -> bool:
        return self.store.get_note(f"seeded:{item}") is not None

    def _note_seeded(self, item: str) -> None:
        self.store.put_note(f"seeded:{item}", "yes")


def _user_record(config: UserConfig) -> User:
    return User(
        id=config.id,
        email=config.email,
        password_hash=config.password_hash,
        name=config.name,
        mfa=config.mfa,
        email_verified=config.email_verified,
        blocked=config.blocked,
        password_leaked=config.password_leaked,
    )


def _seed_id(user_id: str, slot: str, channel: str) -> str:
    # Stable across restarts, so a durable store is not seeded twice.
    suffix = hashlib.sha256(f"{user_id}/{slot}".encode()).hexdigest()[:16]
    return f"{ID_PREFIXES[channel]}|dev_{suffix}"


def _pkce_method(challenge: str | None, method: str | None) -> str | None:
    if challenge is None:
        if method is not None:
            msg = "code_challenge_method was given without a code_challenge."
            raise OAuthError("invalid_request", msg)
        return None
    method = method or "plain"
    if method not in _PKCE_METHODS:
        msg = f"code_challenge_method must be 'S256' or 'plain'; got {method!r}."
        raise OAuthError("invalid_request", msg)
    return method


@functools.cache
def _decoy_hash(work_factor: int) -> str:
    return hash_password(new_token(), work_factor=work_factor)
