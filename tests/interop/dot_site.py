"""A minimal Django project serving django-oauth-toolkit as an OpenID provider.

:func:`configure` sets Django up in this process (it can happen once per
process), migrates a fresh SQLite file, and creates a user and two
confidential applications: one for the password grant, one for the
authorization code grant with PKCE. The project uses Django's stock
middleware, templates and sessions, as ``django-admin startproject`` writes
them; only what an OpenID provider needs is added.
"""

from __future__ import annotations

from pathlib import Path

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["PREFIX", "Site", "configure"]

#: Where the provider's URLs are mounted, as in django-oauth-toolkit's docs.
PREFIX = "o/"

USERNAME = "ann"
PASSWORD = "correct horse battery staple"
PASSWORD_CLIENT_ID = "password-app"
CODE_CLIENT_ID = "code-app"
#: Never visited: the tests read the code and state from the redirect itself.
REDIRECT_URI = "http://127.0.0.1:8765/callback"


@attrs.frozen(repr=False)
class Site:
    """The provider's users and applications, with their secrets in plaintext."""

    username: str
    password: str
    password_client_id: str
    password_client_secret: str
    code_client_id: str
    code_client_secret: str
    redirect_uri: str


def configure(directory: Path) -> Site:
    """Configure Django with django-oauth-toolkit, migrate and create the site.

    The database is an SQLite file in ``directory``; the ID token signing key
    is a fresh RSA key.
    """
    import django
    from django.conf import settings
    from django.core.management import call_command

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.configure(**_settings(directory, key))
    django.setup()
    call_command("migrate", verbosity=0)
    return _populate()


def _settings(directory: Path, key: rsa.RSAPrivateKey) -> dict[str, object]:
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "DEBUG": False,
        "SECRET_KEY": "interop-tests-only-" + "x" * 40,
        "ALLOWED_HOSTS": ["127.0.0.1"],
        "ROOT_URLCONF": "dot_urls",
        "USE_TZ": True,
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / "provider.sqlite3"),
            }
        },
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "oauth2_provider",
        ],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        # Django's own advice for tests: a fast hasher, since every token
        # request checks a client secret and many check a password.
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
        "OAUTH2_PROVIDER": {
            "OIDC_ENABLED": True,
            "OIDC_RSA_PRIVATE_KEY": private_pem,
            "PKCE_REQUIRED": True,
            "ROTATE_REFRESH_TOKEN": True,
            # RFC 9700 discourages the password grant; the provider allows it
            # (warning on each use) so that the password-grant flow can run.
            "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False,
            "SCOPES": {
                "openid": "Sign you in",
                "profile": "See your profile",
                "email": "See your email address",
                "offline_access": "Stay signed in",
            },
        },
    }


def _populate() -> Site:
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import Application

    user = get_user_model().objects.create_user(
        USERNAME, email="ann@example.test", password=PASSWORD
    )
    secrets: dict[str, str] = {}
    for client_id, grant in [
        (PASSWORD_CLIENT_ID, Application.GRANT_PASSWORD),
        (CODE_CLIENT_ID, Application.GRANT_AUTHORIZATION_CODE),
    ]:
        secret = f"{client_id}-secret-" + "s" * 32
        Application.objects.create(
            name=client_id,
            client_id=client_id,
            client_secret=secret,  # hashed on save
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=grant,
            redirect_uris=REDIRECT_URI,
            algorithm=Application.RS256_ALGORITHM,
            user=user,
        )
        secrets[client_id] = secret
    return Site(
        username=USERNAME,
        password=PASSWORD,
        password_client_id=PASSWORD_CLIENT_ID,
        password_client_secret=secrets[PASSWORD_CLIENT_ID],
        code_client_id=CODE_CLIENT_ID,
        code_client_secret=secrets[CODE_CLIENT_ID],
        redirect_uri=REDIRECT_URI,
    )
