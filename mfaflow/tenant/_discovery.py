"""Discovery endpoints: the OpenID Provider metadata and the JSON Web Key Set.

The metadata adds Auth0's ``mfa_challenge_endpoint`` to the standard fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from ._app import ROUTES
from ._http import json_response

if TYPE_CHECKING:
    from ._tenant import Tenant

_CACHEABLE = {"Cache-Control": "public, max-age=60"}


@ROUTES.route("/.well-known/openid-configuration")
def openid_configuration(
    tenant: Tenant, request: Request, args: Mapping[str, str]
) -> Response:
    """Describe the tenant: issuer, endpoints, grants, algorithms."""
    return json_response(tenant.discovery(), headers=_CACHEABLE)


@ROUTES.route("/.well-known/jwks.json")
def jwks(tenant: Tenant, request: Request, args: Mapping[str, str]) -> Response:
    """Serve the public key that verifies the tenant's tokens."""
    return json_response(tenant.jwks(), headers=_CACHEABLE)
