"""A Flask application that signs people in with mfaflow's ``authorize`` flow.

The browser goes through the tenant's login pages (Universal Login), which
ask for the password and for MFA; the application never sees either. It
keeps each sign-in as an mfaflow run in an SQLite store whose secrets
(tokens, the PKCE verifier) are encrypted with a key the application
holds; the session cookie carries only run ids.

- ``/login`` starts an ``authorize`` run and sends the browser to the
  ``/authorize`` URL the run gives.
- ``/callback`` resumes the run with the URL the browser came back to; the
  run checks ``state`` and exchanges the code (with the PKCE verifier).
- ``/profile`` shows who signed in, from the ID token's claims (its
  signature, issuer, audience and nonce are checked).
- ``/settings`` needs more: an access token for the tenant's MFA API. Its
  first visit steps up with a second ``authorize`` run for that audience,
  for which the tenant asks for MFA again; the page then lists the user's
  authenticators with that token.

Run it against the embedded tenant (see README.md)::

    MFAFLOW_ISSUER=http://127.0.0.1:PORT/ flask --app examples/web_app/app.py run
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from flask import Flask, redirect, render_template_string, request, session, url_for
from werkzeug.wrappers import Response

import mfaflow

#: The demo application of the embedded tenant.
DEFAULT_CLIENT_ID = "mfaflow-demo"

_QUERY = re.compile(r"\?\S*")


class _WithoutQueries(logging.Filter):
    """Keeps query strings, such as a callback's code, out of access logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY.sub("?...", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_ACCESS_LOG_FILTER = _WithoutQueries()

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }} - mfaflow web example</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/profile">Profile</a> |
<a href="/settings">Settings</a></nav>
<h1 id="title">{{ title }}</h1>
{% if email %}<p>Signed in as <strong id="email">{{ email }}</strong>.</p>{% endif %}
{% if message %}<p id="message">{{ message }}</p>{% endif %}
{% if claims %}
<dl id="claims">
{% for name, value in claims %}<dt>{{ name }}</dt><dd>{{ value }}</dd>{% endfor %}
</dl>
{% endif %}
{% if authenticators is not none %}
<ul id="authenticators">
{% for item in authenticators %}
<li>{{ item.get("type") }}{% if item.get("name") %} ({{ item.get("name") }}){% endif %}
{% if not item.get("active") %} - not confirmed{% endif %}</li>
{% endfor %}
</ul>
{% endif %}
{% if email %}
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
{% else %}
<p><a id="login" href="/login">Sign in</a></p>
{% endif %}
</body>
</html>
"""


def create_app(
    issuer: str | None = None,
    client_id: str | None = None,
    *,
    client_secret: str | None = None,
    store_path: str | os.PathLike[str] | None = None,
    store_key: bytes | str | None = None,
    secret_key: bytes | str | None = None,
) -> Flask:
    """Build the application for one tenant and one client.

    Args:
        issuer: the tenant's base URL; ``MFAFLOW_ISSUER`` when not given.
        client_id: the application's client id; ``MFAFLOW_CLIENT_ID``, else
            the embedded tenant's demo application.
        client_secret: for a confidential client; ``MFAFLOW_CLIENT_SECRET``.
        store_path: the SQLite file runs are kept in; ``runs.sqlite`` in the
            application's instance folder by default.
        store_key: the Fernet key that encrypts the runs' secrets;
            ``MFAFLOW_STORE_KEY``, else a new one from
            :func:`mfaflow.generate_key` (runs in progress are then lost on
            a restart: keep a fixed key in production).
        secret_key: signs the session cookie; random by default.

    Raises:
        RuntimeError: no issuer was given.
    """
    issuer = issuer or os.environ.get("MFAFLOW_ISSUER")
    if not issuer:
        raise RuntimeError(
            "No tenant URL: pass create_app(issuer=...) or set MFAFLOW_ISSUER."
        )
    issuer = issuer if issuer.endswith("/") else issuer + "/"
    client = mfaflow.Client(
        issuer,
        client_id or os.environ.get("MFAFLOW_CLIENT_ID") or DEFAULT_CLIENT_ID,
        client_secret or os.environ.get("MFAFLOW_CLIENT_SECRET"),
    )

    app = Flask(__name__)
    # The development server logs each request line, callback codes included.
    logging.getLogger("werkzeug").addFilter(_ACCESS_LOG_FILTER)
    app.secret_key = secret_key or secrets.token_bytes(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    path = Path(store_path or Path(app.instance_path) / "runs.sqlite")
    key = store_key or os.environ.get("MFAFLOW_STORE_KEY") or mfaflow.generate_key()
    store = mfaflow.SQLiteStore(path, key=key)
    app.extensions["mfaflow"] = _SignIns(mfaflow.Engine(client, store=store))
    _add_routes(app)
    return app


class _SignIns:
    """The application's runs of the authorize flow, and what it reads from them."""

    def __init__(self, engine: mfaflow.Engine) -> None:
        self.engine = engine
        self.issuer = engine.client.issuer
        self.mfa_audience = f"https://{urlsplit(self.issuer).netloc}/mfa/"
        self.keys = jwt.PyJWKClient(self.issuer + ".well-known/jwks.json")

    def start(self, inputs: dict[str, str]) -> tuple[str, str]:
        """Start a run; return its id and the URL the browser must open."""
        self.engine.store.expire(time.time())  # drop abandoned sign-ins
        result = self.engine.start("authorize", inputs)
        # The run waits for the callback; its link is the URL to open.
        link = result.waiting_for[0].link if result.waiting_for else None
        if result.state != "wait_for_callback" or link is None:
            raise RuntimeError(f"The authorize run stopped in {result.state!r}.")
        return result.run_id, link

    def finished(self, run_id: str | None) -> mfaflow.RunResult | None:
        """The run ``run_id`` if it ended with success, else ``None``."""
        if not run_id:
            return None
        try:
            result = self.engine.get(run_id)
        except mfaflow.RunNotFound:
            return None
        return result if result.succeeded else None

    def forget(self, run_id: str | None) -> None:
        if run_id:
            self.engine.store.delete(run_id)

    def claims(self, result: mfaflow.RunResult) -> dict[str, Any]:
        """The verified claims of the run's ID token."""
        token = result.outputs["id_token"]
        key = self.keys.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=self.engine.client.client_id,
            issuer=self.issuer,
        )
        if claims.get("nonce") != result.outputs["nonce"]:
            raise jwt.InvalidTokenError("The ID token's nonce is not the one sent.")
        return claims

    def authenticators(self, result: mfaflow.RunResult) -> list[Any] | None:
        """The user's authenticators, or ``None`` when the token is refused."""
        answer = requests.get(
            self.issuer + "mfa/authenticators",
            headers={"Authorization": f"Bearer {result.outputs['access_token']}"},
            timeout=10,
        )
        if answer.status_code in (401, 403):
            return None  # such as a token past its 10 minutes
        answer.raise_for_status()
        listed: list[Any] = answer.json()
        return listed


def _add_routes(app: Flask) -> None:
    sign_ins: _SignIns = app.extensions["mfaflow"]

    def page(title: str, status: int = 200, **values: Any) -> tuple[str, int]:
        values.setdefault("email", session.get("email"))
        values.setdefault("authenticators", None)
        return render_template_string(_PAGE, title=title, **values), status

    def begin(purpose: str, **inputs: str) -> Response:
        """Start a sign-in for ``purpose`` and send the browser to the tenant."""
        sign_ins.forget(session.pop("pending", None))
        callback = url_for("callback", _external=True)
        run_id, url = sign_ins.start({"redirect_uri": callback, **inputs})
        session["pending"], session["pending_for"] = run_id, purpose
        return redirect(url)

    @app.get("/")
    def index() -> tuple[str, int]:
        return page("Home", message="An example of mfaflow's authorize flow.")

    @app.get("/login")
    def login() -> Response:
        return begin("login", scope="openid profile email", offline_access="false")

    @app.get("/callback")
    def callback() -> Response | tuple[str, int]:
        run_id, purpose = session.get("pending"), session.get("pending_for")
        if not run_id or purpose not in ("login", "settings"):
            return page("Sign-in failed", 400, message="No sign-in is in progress.")
        try:
            result = sign_ins.engine.resume(run_id, {"callback_url": request.url})
        except mfaflow.MfaflowError as exc:
            return page("Sign-in failed", 400, message=str(exc))
        if not result.ended:
            # The URL carried neither a code nor an error: not from the tenant.
            return page("Sign-in failed", 400, message="That is not a callback.")
        del session["pending"], session["pending_for"]
        if not result.succeeded:
            sign_ins.forget(run_id)
            return page("Sign-in failed", 403, message=result.message)

        sign_ins.forget(session.get(purpose))
        session[purpose] = run_id
        if purpose == "login":
            session["email"] = sign_ins.claims(result).get("email")
            return redirect(url_for("profile"))
        return redirect(url_for("settings"))

    @app.get("/profile")
    def profile() -> Response | tuple[str, int]:
        result = sign_ins.finished(session.get("login"))
        if result is None:
            return redirect(url_for("login"))
        claims = sign_ins.claims(result)
        shown = [(name, claims.get(name)) for name in ("sub", "name", "amr")]
        return page("Profile", email=claims.get("email"), claims=shown)

    @app.get("/settings")
    def settings() -> Response | tuple[str, int]:
        if sign_ins.finished(session.get("login")) is None:
            return redirect(url_for("login"))
        step_up = sign_ins.finished(session.get("settings"))
        listed = None if step_up is None else sign_ins.authenticators(step_up)
        if listed is None:
            return begin(
                "settings",
                audience=sign_ins.mfa_audience,
                scope="read:authenticators",
                offline_access="false",
            )
        return page("Settings", authenticators=listed)

    @app.post("/logout")
    def logout() -> Response:
        for name in ("login", "settings", "pending"):
            sign_ins.forget(session.get(name))
        session.clear()
        return redirect(url_for("index"))


if __name__ == "__main__":
    create_app().run(port=5000)
