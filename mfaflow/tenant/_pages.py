"""The login pages: ``GET /authorize`` and the forms a person goes through.

A browser sent to ``/authorize`` (``response_type=code``) signs in with
email and password, passes MFA when the user needs it (choosing among
their authenticators; a code from an authenticator app, a code sent by
SMS, voice or email, a push approval, or a recovery code), or sets up an
authenticator app when they have none (a QR code and the key as text, then
a recovery code shown once), and is sent back to the client's
``redirect_uri`` with ``code`` and ``state``.

Choices (also in ``docs/login-pages.md``):

- The client and ``redirect_uri`` are checked first. An unknown client or
  a ``redirect_uri`` that is not one of its callbacks gets an error page
  (400), never a redirect. Every later error goes back to the
  ``redirect_uri`` with ``error``, ``error_description`` and ``state``
  (RFC 6749 4.1.2.1): ``unsupported_response_type``, ``invalid_request``
  (bad PKCE method or challenge, repeated or unknown parameter values),
  ``unauthorized_client``, ``access_denied`` (unknown ``audience``),
  ``login_required`` (``prompt=none`` without a login session) and
  ``interaction_required`` (``prompt=none`` when MFA is still due).
- The sign-in in progress is a server-side transaction (see ``_logins``)
  named by an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure`` over
  https); every form carries the transaction's anti-forgery token, and a
  post without it is refused (403).
- A finished sign-in starts a login session (a cookie of the same kind), so
  a later ``/authorize`` from the same browser skips the password, and MFA
  too when the session passed it. ``prompt=login`` asks for the password
  again. For the MFA API's audience MFA is asked every time the user has a
  factor, as Auth0 does.
- ``prompt`` may also be ``consent`` or ``select_account``, which change
  nothing here (no consent screen, one account per browser);
  ``screen_hint`` is accepted and ignored (no sign-up page).
- Pages have a strict content security policy (no scripts, no external
  assets; forms may post to the tenant and lead to the ``redirect_uri``'s
  origin), cannot be framed, are never cached and send no referrer.
- Passwords, codes and the key of an authenticator app are never logged.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import attrs
import segno
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from . import _html
from ._app import ROUTES, Handler
from ._config import AUTHORIZATION_CODE, ClientConfig
from ._errors import OAuthError
from ._html import Choice, Html, Notice
from ._issuing import audience_of
from ._logins import AuthorizationRequest, Login, logins_of
from ._state import Authenticator, LoginSession

if TYPE_CHECKING:
    from ._tenant import Tenant

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE"]

logger = logging.getLogger(__name__)

#: The cookie naming the sign-in in progress.
LOGIN_COOKIE = "mfaflow_login"
#: The cookie naming the login session.
SESSION_COOKIE = "mfaflow_session"

_PROMPTS = ("none", "login", "consent", "select_account")
_PKCE_METHODS = ("S256", "plain")
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_UNSAFE_IN_URI = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\]")
_HOST = re.compile(r"[A-Za-z0-9.:-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
#: Where each step of a sign-in is shown.
_STEP_PATHS = {
    "login": "/u/login",
    "mfa": "/u/mfa",
    "enrol": "/u/enrol",
    "recovery-code": "/u/recovery-code",
}
_RECOVERY = "recovery-code"
_MFA = "mfa"
#: How an authenticator is named on the pages, by channel.
_LABELS = {
    "otp": "Authenticator app",
    "sms": "Text message",
    "voice": "Phone call",
    "email": "Email",
    "auth0": "Push notification",
}


# --- Control flow ---------------------------------------------------------------------


class _PageError(Exception):
    """Stop and show an error page: the browser cannot be sent back safely."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class _Denied(Exception):
    """Stop and send the browser back to the client with an OAuth error."""

    def __init__(self, request: AuthorizationRequest, error: str, description: str):
        super().__init__(description)
        self.request = request
        self.error = error
        self.description = description


class _Moved(Exception):
    """Stop and send the browser to the page of the sign-in's current step."""

    def __init__(self, login: Login) -> None:
        super().__init__(login.step)
        self.login = login


def _page(handler: Handler) -> Handler:
    """Turn the page exceptions of ``handler`` into answers."""

    @functools.wraps(handler)
    def answer(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
        try:
            return handler(tenant, request, args)
        except _PageError as exc:
            body = _html.error_page(
                tenant=tenant.config.name, title=exc.title, message=exc.message
            )
            return _html_response(body, exc.status, None)
        except _Denied as exc:
            logger.debug("Sending the browser back with %s", exc.error)
            return _redirect_back(
                exc.request, error=exc.error, error_description=exc.description
            )
        except _Moved as exc:
            return _see_other(_STEP_PATHS[exc.login.step])

    return answer


# --- GET /authorize -------------------------------------------------------------------


@ROUTES.route("/authorize")
@_page
def authorize(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Check an authorization request and start (or skip) the sign-in."""
    client, redirect_uri = _checked_client(tenant, request.args)
    auth = _authorization_request(tenant, client, redirect_uri, request.args)
    found = None if "login" in auth.prompt else _session(tenant, request)
    if found is not None and tenant.find_user(found[1].user_id) is not None:
        return _resume_session(tenant, request, auth, found)
    if "none" in auth.prompt:
        msg = "The user is not signed in; sign in without prompt=none."
        raise _Denied(auth, "login_required", msg)
    login_id, login = logins_of(tenant).open(
        auth, tenant.clock.now(), email=auth.login_hint or ""
    )
    return _start(request, login_id, login)


def _resume_session(
    tenant: Tenant,
    request: Request,
    auth: AuthorizationRequest,
    found: tuple[str, LoginSession],
) -> Response:
    """Continue the browser's login session: issue a code, or ask for MFA only."""
    session = found[1]
    if not _mfa_due(tenant, session.user_id, auth.audience, session.amr):
        return _issue(
            tenant,
            request,
            auth,
            user_id=session.user_id,
            amr=session.amr,
            auth_time=session.created_at,
            session=found,
        )
    if "none" in auth.prompt:
        msg = "Multifactor authentication is required; sign in without prompt=none."
        raise _Denied(auth, "interaction_required", msg)
    login_id, login = logins_of(tenant).open(
        auth,
        tenant.clock.now(),
        step=_mfa_step(tenant, session.user_id),
        user_id=session.user_id,
        session_amr=session.amr,
        auth_time=session.created_at,
    )
    return _start(request, login_id, login)


def _start(request: Request, login_id: str, login: Login) -> Response:
    """Send the browser to the first page of a new sign-in, naming it in a cookie."""
    response = _found(_STEP_PATHS[login.step])
    response.set_cookie(
        LOGIN_COOKIE,
        login_id,
        path="/",
        secure=_https(request),
        httponly=True,
        samesite="Lax",
    )
    return response


def _checked_client(
    tenant: Tenant, query: MultiDict[str, str]
) -> tuple[ClientConfig, str]:
    """Return the client and its redirect URI, or refuse with an error page."""
    title = "The application's sign-in request is not valid"
    for name in ("client_id", "redirect_uri"):
        if len(query.getlist(name)) > 1:
            raise _PageError(400, title, f"The parameter {name} was given twice.")
    client_id = query.get("client_id") or None
    if client_id is None:
        raise _PageError(400, title, "The request names no client (client_id).")
    client = tenant.client(client_id)
    if client is None:
        raise _PageError(400, title, f"There is no application {client_id!r}.")
    redirect_uri = query.get("redirect_uri") or None
    if redirect_uri is None:
        msg = "The request has no redirect_uri to send the browser back to."
        raise _PageError(400, title, msg)
    if not tenant.redirect_uri_allowed(client_id, redirect_uri) or not _safe_uri(
        redirect_uri
    ):
        msg = (
            f"The redirect_uri {redirect_uri!r} is not a callback URL of "
            f"{_client_name(client)!r}."
        )
        raise _PageError(400, title, msg)
    return client, redirect_uri


def _safe_uri(uri: str) -> bool:
    """Whether ``uri`` can go into a Location header and a CSP as it is."""
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 (raises ValueError for a malformed port)
    except ValueError:
        return False
    return not _UNSAFE_IN_URI.search(uri) and not parts.fragment


def _authorization_request(
    tenant: Tenant,
    client: ClientConfig,
    redirect_uri: str,
    query: MultiDict[str, str],
) -> AuthorizationRequest:
    """Check the rest of the request; errors go back to ``redirect_uri``."""
    first = {name: query.get(name) or None for name in query}
    auth = AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=first.get("state"),
        scope=first.get("scope"),
        nonce=first.get("nonce"),
        code_challenge=first.get("code_challenge"),
        code_challenge_method=first.get("code_challenge_method"),
        login_hint=first.get("login_hint"),
        prompt=tuple((first.get("prompt") or "").split()),
    )
    for name in query:
        if len(query.getlist(name)) > 1:
            raise _Denied(
                auth, "invalid_request", f"Parameter {name!r} was given twice."
            )
    _check_response_type(auth, first.get("response_type"), first.get("response_mode"))
    if not client.allows(AUTHORIZATION_CODE):
        msg = f"Grant type `{AUTHORIZATION_CODE}` not allowed for the client."
        raise _Denied(auth, "unauthorized_client", msg)
    _check_pkce(auth)
    _check_prompt(auth)
    try:
        audience = audience_of(tenant, first.get("audience"))
    except OAuthError as exc:
        raise _Denied(auth, exc.error, exc.description) from exc
    return attrs.evolve(auth, audience=audience)


def _check_response_type(
    auth: AuthorizationRequest, response_type: str | None, response_mode: str | None
) -> None:
    if response_type is None:
        msg = "Missing required parameter: response_type."
        raise _Denied(auth, "invalid_request", msg)
    if response_type != "code":
        msg = (
            f"Unsupported response_type {response_type!r}; this tenant supports 'code'."
        )
        raise _Denied(auth, "unsupported_response_type", msg)
    if response_mode not in (None, "query"):
        msg = (
            f"Unsupported response_mode {response_mode!r}; "
            "this tenant supports 'query'."
        )
        raise _Denied(auth, "invalid_request", msg)


def _check_pkce(auth: AuthorizationRequest) -> None:
    method, challenge = auth.code_challenge_method, auth.code_challenge
    if challenge is None:
        if method is not None:
            msg = "code_challenge_method was given without a code_challenge."
            raise _Denied(auth, "invalid_request", msg)
        return
    if method is not None and method not in _PKCE_METHODS:
        msg = f"code_challenge_method must be 'S256' or 'plain'; got {method!r}."
        raise _Denied(auth, "invalid_request", msg)
    if not _PKCE_CHALLENGE.fullmatch(challenge):
        msg = (
            "code_challenge must be 43 to 128 letters, digits and -._~ "
            f"(RFC 7636); got {len(challenge)} characters."
        )
        raise _Denied(auth, "invalid_request", msg)


def _check_prompt(auth: AuthorizationRequest) -> None:
    unknown = [value for value in auth.prompt if value not in _PROMPTS]
    if unknown:
        allowed = ", ".join(repr(p) for p in _PROMPTS)
        msg = f"Unsupported prompt {unknown[0]!r}; allowed: {allowed}."
        raise _Denied(auth, "invalid_request", msg)
    if "none" in auth.prompt and len(auth.prompt) > 1:
        msg = "prompt=none cannot be combined with other prompt values."
        raise _Denied(auth, "invalid_request", msg)


# --- Email and password ---------------------------------------------------------------


@ROUTES.route("/u/login", methods=("GET", "POST"))
@_page
def login(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Show the email and password form; check what it sends."""
    if request.method == "GET":
        found = _current(tenant, request, "login")
        return _login_view(tenant, found, None, 200)
    found = _posted(tenant, request, "login")
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    logins = logins_of(tenant)
    found = logins.update(found, email=email)
    if not email or not password:
        notice = Notice("Enter your email address and password.")
        return _login_view(tenant, found, notice, 400)
    try:
        user = tenant.sign_in(email, password)
    except OAuthError as exc:
        logger.debug("The login pages refused a sign-in (%s)", exc.error)
        status = 429 if exc.status == 429 else 400
        return _login_view(tenant, found, Notice(_sign_in_problem(exc)), status)
    logger.debug("User %s signed in with a password on the login pages", user.id)
    found = logins.update(
        found, user_id=user.id, amr=("pwd",), session_amr=(), auth_time=None
    )
    if tenant.needs_mfa(user.id, found.request.audience):
        found = logins.update(found, step=_mfa_step(tenant, user.id))
        return _see_other(_STEP_PATHS[found.step])
    return _complete(tenant, request, found)


def _sign_in_problem(exc: OAuthError) -> str:
    """What the sign-in form says about a refused password login."""
    if exc.error == "unauthorized":
        return "Your account is blocked. Contact the application's administrator."
    if exc.error == "password_leaked":
        return (
            "This password was found in a data breach elsewhere, so it can no "
            "longer be used. Change your password, then sign in again."
        )
    return exc.description


def _login_view(
    tenant: Tenant, found: Login, notice: Notice | None, status: int
) -> Response:
    client = tenant.client(found.request.client_id)
    body = _html.login_page(
        tenant=tenant.config.name,
        client=found.request.client_id if client is None else _client_name(client),
        action=_STEP_PATHS["login"],
        csrf=found.csrf,
        email=found.email,
        notice=notice,
    )
    return _html_response(body, status, found.request)


# --- MFA challenge --------------------------------------------------------------------


@ROUTES.route("/u/mfa", methods=("GET", "POST"))
@_page
def mfa(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Show the challenge of the chosen authenticator; check the code sent."""
    if request.method == "GET":
        return _show_mfa(tenant, request)
    found = _posted(tenant, request, "mfa")
    code = "".join((request.form.get("code") or "").split())
    chosen = _chosen(tenant, found)
    if found.factor is None or (chosen is not None and chosen.channel == "auth0"):
        return _see_other(_STEP_PATHS["mfa"])
    if not code:
        return _mfa_view(tenant, found, Notice("Enter the code."), 400)
    try:
        found = _verify(tenant, found, chosen, code)
    except OAuthError as exc:
        notice, status = _code_problem(exc, recovery=found.factor == _RECOVERY)
        return _mfa_view(tenant, found, notice, status)
    if found.step == _RECOVERY:
        return _see_other(_STEP_PATHS[_RECOVERY])
    return _complete(tenant, request, found)


def _show_mfa(tenant: Tenant, request: Request) -> Response:
    found = _current(tenant, request, "mfa")
    if found.factor is None and not found.choosing:
        # One authenticator is used at once; the others (the recovery code)
        # are behind "Try another method".
        options = _authenticators(tenant, found)
        if len(options) == 1:
            try:
                found = _choose(tenant, found, options[0])
            except OAuthError as exc:
                title = "Verification failed"
                raise _PageError(exc.status, title, exc.description) from exc
    if request.args.get("poll") and found.oob_code is not None:
        return _check_push(tenant, request, found, quiet=True)
    return _mfa_view(tenant, found, None, 200)


def _verify(
    tenant: Tenant, found: Login, chosen: Authenticator | None, code: str
) -> Login:
    """Check ``code`` for the chosen factor; return the transaction moved on."""
    user_id = _user_of(found)
    logins = logins_of(tenant)
    if found.factor == _RECOVERY:
        replacement = tenant.verify_recovery_code(user_id, code)
        logger.debug("User %s passed MFA with a recovery code", user_id)
        return logins.update(
            found,
            amr=_with_mfa(found.amr),
            step=_RECOVERY,
            recovery_codes=(replacement,),
            first_enrolment=False,
            factor=None,
        )
    if chosen is None:
        msg = "That authenticator is no longer available; choose another one."
        raise OAuthError("invalid_request", msg)
    if chosen.channel == "otp":
        tenant.verify_otp(user_id, code, authenticator_id=chosen.id)
    else:
        tenant.verify_oob(found.oob_code or "", code)
    logger.debug("User %s passed MFA (%s) on the login pages", user_id, chosen.channel)
    return logins.update(found, amr=_with_mfa(found.amr), oob_code=None)


@ROUTES.route("/u/mfa/choose", methods=("POST",))
@_page
def choose(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Choose the authenticator to verify with (or none, to see the list again)."""
    found = _posted(tenant, request, "mfa")
    value = request.form.get("authenticator") or ""
    logins = logins_of(tenant)
    if not value:
        logins.update(found, factor=None, oob_code=None, choosing=True)
        return _see_other(_STEP_PATHS["mfa"])
    if value == _RECOVERY and _recovery_available(tenant, found):
        logins.update(found, factor=_RECOVERY, oob_code=None)
        return _see_other(_STEP_PATHS["mfa"])
    chosen = next((a for a in _authenticators(tenant, found) if a.id == value), None)
    if chosen is None:
        notice = Notice("Choose one of the methods listed.")
        return _mfa_view(tenant, logins.update(found, factor=None), notice, 400)
    try:
        _choose(tenant, found, chosen)
    except OAuthError as exc:
        return _mfa_view(tenant, found, Notice(exc.description), exc.status)
    return _see_other(_STEP_PATHS["mfa"])


@ROUTES.route("/u/mfa/push", methods=("POST",))
@_page
def push(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Check whether the push notification was approved."""
    return _check_push(tenant, request, _posted(tenant, request, "mfa"), quiet=False)


def _check_push(
    tenant: Tenant, request: Request, found: Login, *, quiet: bool
) -> Response:
    chosen = _chosen(tenant, found)
    if chosen is None or chosen.channel != "auth0" or found.oob_code is None:
        return _see_other(_STEP_PATHS["mfa"])
    logins = logins_of(tenant)
    try:
        tenant.verify_oob(found.oob_code)
    except OAuthError as exc:
        if exc.error in ("authorization_pending", "slow_down"):
            waiting = (
                "The notification has not been approved yet."
                if exc.error == "authorization_pending"
                else "Checked a moment ago; wait a few seconds and try again."
            )
            notice = None if quiet else Notice(waiting, "info")
            return _mfa_view(tenant, found, notice, 200)
        found = logins.update(found, factor=None, oob_code=None)
        if exc.error == "access_denied":
            return _mfa_view(
                tenant, found, Notice("The notification was rejected."), 400
            )
        if exc.error == "invalid_grant":
            notice = Notice("The notification expired; choose a method to try again.")
            return _mfa_view(tenant, found, notice, 400)
        return _mfa_view(tenant, found, Notice(exc.description), exc.status)
    logger.debug("User %s passed MFA (push) on the login pages", found.user_id)
    found = logins.update(found, amr=_with_mfa(found.amr), oob_code=None)
    return _complete(tenant, request, found)


def _choose(tenant: Tenant, found: Login, chosen: Authenticator) -> Login:
    """Make ``chosen`` the factor; send its code or notification."""
    oob_code = None
    if chosen.channel != "otp":
        oob_code = tenant.challenge(_user_of(found), chosen.id).oob_code
    return logins_of(tenant).update(found, factor=chosen.id, oob_code=oob_code)


def _mfa_view(
    tenant: Tenant, found: Login, notice: Notice | None, status: int
) -> Response:
    """The MFA page for the transaction's state: the choice, or one factor."""
    options = _authenticators(tenant, found)
    recovery = _recovery_available(tenant, found)
    chosen = _chosen(tenant, found)
    other = None
    if len(options) + recovery > 1:
        other = _html.secondary(
            "/u/mfa/choose", found.csrf, "Try another method", authenticator=""
        )
    if found.factor == _RECOVERY:
        body = _html.code_page(
            tenant=tenant.config.name,
            title="Use your recovery code",
            intro="Enter the recovery code you saved when you set up MFA.",
            label="Recovery code",
            action=_STEP_PATHS["mfa"],
            csrf=found.csrf,
            numeric=False,
            notice=notice,
            extra=other,
        )
    elif chosen is None:
        choices = [_choice(a) for a in options]
        if recovery:
            choices.append(Choice(_RECOVERY, "Recovery code"))
        body = _html.choose_page(
            tenant=tenant.config.name,
            action="/u/mfa/choose",
            csrf=found.csrf,
            choices=choices,
            notice=notice,
        )
    elif chosen.channel == "auth0":
        interval = tenant.config.limits.push_poll_limit.refill_seconds
        body = _html.push_page(
            tenant=tenant.config.name,
            device=chosen.name or "your device",
            action="/u/mfa/push",
            csrf=found.csrf,
            refresh=f"{interval + 1:g}; url={_STEP_PATHS['mfa']}?poll=1",
            notice=notice,
            extra=other,
        )
    else:
        body = _code_view(tenant, found, chosen, notice, other)
    return _html_response(body, status, found.request)


def _code_view(
    tenant: Tenant,
    found: Login,
    chosen: Authenticator,
    notice: Notice | None,
    other: Html | None,
) -> Html:
    if chosen.channel == "otp":
        intro = "Enter the 6-digit code your authenticator app shows."
        extra = other
    else:
        via = {"sms": "text message", "voice": "phone call", "email": "email"}
        intro = (
            f"We sent a 6-digit code by {via.get(chosen.channel, chosen.channel)} "
            f"to {chosen.name or 'you'}. Enter it here."
        )
        resend = _html.secondary(
            "/u/mfa/choose", found.csrf, "Send a new code", authenticator=chosen.id
        )
        extra = _html.join([resend, other or Html("")])
    return _html.code_page(
        tenant=tenant.config.name,
        title="Verify your identity",
        intro=intro,
        label="Code",
        action=_STEP_PATHS["mfa"],
        csrf=found.csrf,
        notice=notice,
        extra=extra,
    )


def _choice(authenticator: Authenticator) -> Choice:
    label = _LABELS.get(authenticator.channel, authenticator.channel)
    detail = ""
    if authenticator.channel in ("sms", "voice", "email") and authenticator.name:
        detail = authenticator.name
    return Choice(authenticator.id, label, detail)


def _code_problem(exc: OAuthError, *, recovery: bool) -> tuple[Notice, int]:
    """The message shown for a refused code, and the page's status."""
    if exc.error in ("too_many_attempts", "too_many_requests"):
        return Notice(exc.description), exc.status
    if exc.error == "invalid_grant" and "expired" in exc.description:
        return Notice("The code has expired; send a new one."), 400
    if exc.error == "invalid_grant":
        what = "recovery code" if recovery else "code"
        return Notice(f"That {what} is not valid; check it and try again."), 400
    return Notice(exc.description), exc.status


# --- Enrolment ------------------------------------------------------------------------


@ROUTES.route("/u/enrol", methods=("GET", "POST"))
@_page
def enrol(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Set up an authenticator app: show its QR code; check its first code."""
    if request.method == "GET":
        found = _enrolment(tenant, _current(tenant, request, "enrol"))
        return _enrol_view(tenant, found, None, 200)
    found = _posted(tenant, request, "enrol")
    code = "".join((request.form.get("code") or "").split())
    if found.enrolment_id is None:
        return _see_other(_STEP_PATHS["enrol"])
    if not code:
        return _enrol_view(tenant, found, Notice("Enter the code."), 400)
    user_id = _user_of(found)
    try:
        tenant.verify_otp(user_id, code, authenticator_id=found.enrolment_id)
    except OAuthError as exc:
        notice, status = _code_problem(exc, recovery=False)
        return _enrol_view(tenant, found, notice, status)
    logger.debug("User %s enrolled an authenticator app on the login pages", user_id)
    found = logins_of(tenant).update(
        found,
        amr=_with_mfa(found.amr),
        step=_RECOVERY if found.recovery_codes else "enrol",
        enrolment_id=None,
        enrolment_secret=None,
        enrolment_uri=None,
    )
    if found.step == _RECOVERY:
        return _see_other(_STEP_PATHS[_RECOVERY])
    return _complete(tenant, request, found)


def _enrolment(tenant: Tenant, found: Login) -> Login:
    """Return the transaction with an OTP enrolment waiting for its first code."""
    if found.enrolment_id is not None and tenant.store.get_authenticator(
        found.enrolment_id
    ):
        return found
    if "otp" not in tenant.config.factors:
        msg = (
            "The user must enrol an authenticator, but the login pages enrol "
            "only 'otp', which is not enabled on this tenant."
        )
        raise _Denied(found.request, "access_denied", msg)
    enrolment = tenant.enrol(_user_of(found), "otp")
    return logins_of(tenant).update(
        found,
        enrolment_id=enrolment.authenticator.id,
        enrolment_secret=enrolment.secret,
        enrolment_uri=enrolment.barcode_uri,
        recovery_codes=enrolment.recovery_codes,
        first_enrolment=True,
    )


def _enrol_view(
    tenant: Tenant, found: Login, notice: Notice | None, status: int
) -> Response:
    uri = found.enrolment_uri or ""
    svg = segno.make_qr(uri, error="m").svg_inline(
        scale=4, border=2, title="QR code for your authenticator app"
    )
    body = _html.enrol_page(
        tenant=tenant.config.name,
        action=_STEP_PATHS["enrol"],
        csrf=found.csrf,
        qr_svg=Html(svg),
        secret=found.enrolment_secret or "",
        uri=uri,
        notice=notice,
    )
    return _html_response(body, status, found.request)


# --- Recovery code --------------------------------------------------------------------


@ROUTES.route("/u/recovery-code", methods=("GET", "POST"))
@_page
def recovery_code(
    tenant: Tenant, request: Request, args: Mapping[str, str]
) -> Response:
    """Show a new recovery code once; go on when the person has saved it."""
    if request.method == "POST":
        return _complete(tenant, request, _posted(tenant, request, _RECOVERY))
    found = _current(tenant, request, _RECOVERY)
    body = _html.recovery_codes_page(
        tenant=tenant.config.name,
        action=_STEP_PATHS[_RECOVERY],
        csrf=found.csrf,
        codes=found.recovery_codes,
        first=found.first_enrolment,
    )
    return _html_response(body, 200, found.request)


# --- Transactions and sessions --------------------------------------------------------


def _current(tenant: Tenant, request: Request, step: str) -> Login:
    """Return the sign-in the browser's cookie names, at ``step``.

    Raises:
        _PageError: there is no such sign-in (expired or finished).
        _Moved: the sign-in is at another step.
    """
    login_id = request.cookies.get(LOGIN_COOKIE)
    found = None
    if login_id:
        found = logins_of(tenant).get(login_id, tenant.clock.now())
    if found is None:
        raise _PageError(
            400,
            "This sign-in has ended",
            "It expired or was already finished. Go back to the application "
            "and sign in again.",
        )
    if found.step != step:
        raise _Moved(found)
    return found


def _posted(tenant: Tenant, request: Request, step: str) -> Login:
    """Like :func:`_current`, for a form post: its anti-forgery token must match."""
    try:
        found = _current(tenant, request, step)
    except _Moved as exc:
        found = exc.login
        if found.csrf_matches(request.form.get("csrf")):
            raise
    if not found.csrf_matches(request.form.get("csrf")):
        raise _PageError(
            403,
            "The form could not be verified",
            "It did not carry this sign-in's security token, so nothing you "
            "entered was used; it may come from an older tab or another site. "
            "Go back to the application and sign in again.",
        )
    return found


def _complete(tenant: Tenant, request: Request, found: Login) -> Response:
    """Finish the sign-in: issue the code and send the browser back."""
    response = _issue(
        tenant,
        request,
        found.request,
        user_id=_user_of(found),
        amr=tuple(dict.fromkeys((*found.session_amr, *found.amr))),
        auth_time=found.auth_time,
        session=_session(tenant, request) if found.session_amr else None,
    )
    logins_of(tenant).close(found)
    response.delete_cookie(
        LOGIN_COOKIE, path="/", secure=_https(request), httponly=True, samesite="Lax"
    )
    return response


def _issue(
    tenant: Tenant,
    request: Request,
    auth: AuthorizationRequest,
    *,
    user_id: str,
    amr: tuple[str, ...],
    auth_time: float | None,
    session: tuple[str, LoginSession] | None,
) -> Response:
    """Issue a code, record the login session, and redirect to the client.

    ``session`` is the login session the sign-in continued, which gains
    ``mfa`` if it was passed now; otherwise the browser's old session (if
    any) ends and a new one starts.
    """
    try:
        code = tenant.issue_authorization_code(
            auth.client_id,
            user_id,
            auth.redirect_uri,
            scope=auth.scope,
            audience=auth.audience,
            code_challenge=auth.code_challenge,
            code_challenge_method=auth.code_challenge_method,
            nonce=auth.nonce,
            amr=amr,
            auth_time=auth_time,
        )
    except OAuthError as exc:
        raise _Denied(auth, exc.error, exc.description) from exc
    response = _redirect_back(auth, code=code)
    if session is not None and session[1].user_id == user_id:
        if _MFA in amr and _MFA not in session[1].amr:
            tenant.add_session_amr(session[0], _MFA)
        return response
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        tenant.end_session(old)
    session_id = tenant.start_session(user_id, amr=amr)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(tenant.config.lifetimes.login_session),
        path="/",
        secure=_https(request),
        httponly=True,
        samesite="Lax",
    )
    return response


def _session(tenant: Tenant, request: Request) -> tuple[str, LoginSession] | None:
    """Return the id and record of the browser's live login session, if any."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    session = tenant.get_session(session_id)
    return None if session is None else (session_id, session)


def _mfa_due(
    tenant: Tenant, user_id: str, audience: str | None, amr: tuple[str, ...]
) -> bool:
    """Whether a sign-in continuing a session with ``amr`` must pass MFA."""
    if audience == tenant.mfa_audience:
        return tenant.needs_mfa(user_id, audience)
    return _MFA not in amr and tenant.needs_mfa(user_id, audience)


def _mfa_step(tenant: Tenant, user_id: str) -> str:
    """``mfa`` when the user has an authenticator to challenge, else ``enrol``."""
    active = tenant.authenticators(user_id, active_only=True)
    return "mfa" if any(a.authenticator_type != _RECOVERY for a in active) else "enrol"


def _authenticators(tenant: Tenant, found: Login) -> list[Authenticator]:
    active = tenant.authenticators(_user_of(found), active_only=True)
    return [a for a in active if a.authenticator_type != _RECOVERY]


def _recovery_available(tenant: Tenant, found: Login) -> bool:
    if not tenant.config.recovery_codes:
        return False
    active = tenant.authenticators(_user_of(found), active_only=True)
    return any(a.authenticator_type == _RECOVERY for a in active)


def _chosen(tenant: Tenant, found: Login) -> Authenticator | None:
    if found.factor in (None, _RECOVERY):
        return None
    return next(
        (a for a in _authenticators(tenant, found) if a.id == found.factor), None
    )


def _user_of(found: Login) -> str:
    # Only the steps after the password (or a login session) get here.
    assert found.user_id is not None, "the sign-in has no user yet"
    return found.user_id


def _with_mfa(amr: tuple[str, ...]) -> tuple[str, ...]:
    return amr if _MFA in amr else (*amr, _MFA)


def _client_name(client: ClientConfig) -> str:
    return client.name or client.client_id


# --- Answers --------------------------------------------------------------------------


def _https(request: Request) -> bool:
    return request.scheme == "https"


def _origin(uri: str) -> str | None:
    """The CSP source that lets forms lead to ``uri`` (its origin, or its scheme)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname
        if not host or not _HOST.fullmatch(host):
            return None
        netloc = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port is not None else ""
        return f"{parts.scheme}://{netloc}{port}"
    return f"{parts.scheme}:" if _SCHEME.fullmatch(parts.scheme) else None


def _security_headers(auth: AuthorizationRequest | None) -> dict[str, str]:
    targets = ["'self'"]
    origin = None if auth is None else _origin(auth.redirect_uri)
    if origin is not None:
        targets.append(origin)
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"form-action {' '.join(targets)}; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
    }


def _html_response(
    body: Html, status: int, auth: AuthorizationRequest | None
) -> Response:
    return Response(
        body,
        status=status,
        mimetype="text/html",
        headers=_security_headers(auth),
    )


def _found(location: str) -> Response:
    return _redirect(location, 302, None)


def _see_other(location: str) -> Response:
    return _redirect(location, 303, None)


def _redirect(
    location: str, status: int, auth: AuthorizationRequest | None
) -> Response:
    headers = {**_security_headers(auth), "Location": location}
    return Response(
        "Redirecting.\n", status=status, mimetype="text/plain", headers=headers
    )


def _redirect_back(auth: AuthorizationRequest, **params: str) -> Response:
    """Send the browser to the client's ``redirect_uri`` with ``params`` and state."""
    query = dict(params)
    if auth.state is not None:
        query["state"] = auth.state
    separator = "&" if urlsplit(auth.redirect_uri).query else "?"
    return _redirect(auth.redirect_uri + separator + urlencode(query), 302, auth)
