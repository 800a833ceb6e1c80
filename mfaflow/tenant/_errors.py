"""The errors the embedded tenant raises.

:class:`OAuthError` is both the tenant's answer on the wire (its
:meth:`~OAuthError.body`, status and headers become the HTTP response) and
what the tenant's Python methods raise, so pages built on the tenant show
the same ``error`` codes and descriptions as the API. It extends
:class:`mfaflow.AuthorizationServerError`: it *is* an authorization server's
error, seen from the server's side.

:class:`TenantConfigError` locates a broken configuration file by file, line
and column, like :class:`mfaflow.DefinitionError` does for flow files.

:class:`TenantSetupError` says why a tenant cannot start although its
configuration reads well: the signing key file or the state file it names
cannot be used. The tree, under mfaflow's root::

    MfaflowError
    ├── AuthorizationServerError
    │   └── OAuthError          an OAuth error answer (error, description, status)
    ├── DefinitionError
    │   └── TenantConfigError   a broken configuration (file, line, column)
    └── TenantSetupError        an unusable signing key or state file (a ValueError)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import AuthorizationServerError, DefinitionError, MfaflowError

__all__ = ["OAuthError", "TenantConfigError", "TenantSetupError"]


class OAuthError(AuthorizationServerError):
    """An OAuth error answer: ``error``, ``description``, ``status``.

    ``extra`` holds further body fields (``mfa_token`` and
    ``mfa_requirements`` of ``mfa_required``); they may be secret, so they
    never appear in the message or the repr. ``headers`` are added to the
    HTTP response.
    """

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error, description, status)
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the answer."""
        return {
            "error": self.error,
            "error_description": self.description,
            **self.extra,
        }

    def __repr__(self) -> str:
        return f"OAuthError(error={self.error!r}, status={self.status!r})"


class TenantConfigError(DefinitionError):
    """A tenant configuration is broken; ``file``, ``line`` and ``column`` say where."""


class TenantSetupError(MfaflowError, ValueError):
    """A tenant cannot start: its signing key or state file cannot be used."""
