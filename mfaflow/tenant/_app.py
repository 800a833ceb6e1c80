"""Routing and error handling of the tenant's WSGI application.

Endpoints live in their own modules and register with :data:`ROUTES`::

    @ROUTES.route("/mfa/challenge", methods=("POST",))
    def challenge(
        tenant: Tenant, request: Request, args: Mapping[str, str]
    ) -> Response:
        ...

:data:`ROUTE_MODULES` names the modules imported before the URL map is
built; a module adding endpoints (such as the login pages) adds its name
there. Routes marked ``control=True`` exist only on tenants built with
``control=True``: elsewhere they answer 404.

Every answer that is not a handler's own is JSON in the OAuth error shape:
an :class:`OAuthError` becomes its body and status; unknown paths 404
``not_found``; wrong methods 405 ``method_not_allowed``; bodies over 64 KiB
413 ``invalid_request``; any other exception 500 ``server_error``, with no
traceback in the body. The log gets one DEBUG line per request (method,
path without the query string, status; control characters of the path
percent-encoded, so that a path cannot start a line of its own) and, for
a 500, the exception's
type and stack frames without its message, which might hold a value from
the request.

Browsers may call the APIs (:data:`CORS_PATHS`) from the web origins the
tenant's clients allow (``ClientConfig.web_origins``, Auth0's "Allowed Web
Origins"). Any client's list counts: a preflight names no client. A
preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) from an allowed origin answers 204
with the methods and headers allowed; from another origin 403
``access_denied``. Every answer to an allowed origin carries
``Access-Control-Allow-Origin`` naming it, and exposes the rate-limit and
``WWW-Authenticate`` headers; answers to other origins carry no CORS
header, so the browser keeps them from the page.
"""

from __future__ import annotations

import functools
import importlib
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from attrs import frozen
from werkzeug.exceptions import (
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from ._errors import OAuthError
from ._http import TenantRequest, error_response, json_response, loggable_path

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ._tenant import Tenant

__all__ = [
    "CORS_PATHS",
    "ROUTES",
    "ROUTE_MODULES",
    "Handler",
    "Route",
    "RouteTable",
    "handle",
]

logger = logging.getLogger(__name__)

Handler = Callable[["Tenant", Request, Mapping[str, str]], Response]

#: The modules whose routes make up the application, in this package.
ROUTE_MODULES: tuple[str, ...] = ("_discovery", "_oauth", "_mfa", "_control", "_pages")

#: The paths (by prefix) that browsers may call from another origin.
CORS_PATHS = ("/oauth/token", "/oauth/revoke", "/mfa/", "/userinfo", "/.well-known/")
_ALLOWED_HEADERS = "Authorization, Content-Type, Auth0-Client, DPoP"
_EXPOSED_HEADERS = (
    "WWW-Authenticate, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Reset, DPoP-Nonce"
)
#: How long a browser may keep a preflight's answer, in seconds.
_PREFLIGHT_MAX_AGE = "600"


@frozen
class Route:
    """One endpoint: a werkzeug rule string, its methods and its handler."""

    rule: str
    methods: tuple[str, ...]
    handler: Handler
    control: bool = False


class RouteTable:
    """The endpoints of the tenant, registered by the modules that define them."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(
        self, rule: str, *, methods: tuple[str, ...] = ("GET",), control: bool = False
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of ``rule``."""

        def register(handler: Handler) -> Handler:
            self._routes.append(Route(rule, methods, handler, control))
            return handler

        return register

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


ROUTES = RouteTable()


@functools.cache
def _url_map(control: bool) -> tuple[Map, dict[str, Handler]]:
    for name in ROUTE_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    rules: list[Rule] = []
    handlers: dict[str, Handler] = {}
    for index, route in enumerate(ROUTES):
        if route.control and not control:
            continue
        endpoint = f"{index}:{route.rule}"
        rules.append(Rule(route.rule, methods=route.methods, endpoint=endpoint))
        handlers[endpoint] = route.handler
    return Map(rules), handlers


def handle(
    tenant: Tenant, environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """Answer one WSGI request on behalf of ``tenant``."""
    request = TenantRequest(environ)
    cross_origin = request.path.startswith(CORS_PATHS)
    if cross_origin and _is_preflight(request):
        response = _preflight(tenant, request)
    else:
        response = _dispatch(tenant, request)
    if cross_origin:
        _add_cors_headers(tenant, request, response)
    logger.debug(
        "%s %s -> %d",
        loggable_path(request.method),
        loggable_path(request.path),
        response.status_code,
    )
    return response(environ, start_response)


def _is_preflight(request: Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _preflight(tenant: Tenant, request: Request) -> Response:
    """Answer a CORS preflight: 204 for an allowed origin, 403 otherwise."""
    origin = request.headers["Origin"]
    if not tenant.origin_allowed(origin):
        msg = (
            f"Origin {origin!r} is not an allowed web origin of this tenant's "
            "clients; add it to a client's web_origins."
        )
        return error_response(OAuthError("access_denied", msg, 403))
    url_map, _ = _url_map(tenant.control_enabled)
    adapter = url_map.bind_to_environ(request.environ)
    methods = sorted(set(adapter.allowed_methods()) - {"HEAD", "OPTIONS"})
    if not methods:
        return error_response(
            OAuthError("not_found", f"No endpoint at {request.path!r}.", 404)
        )
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = _PREFLIGHT_MAX_AGE
    return response


def _add_cors_headers(tenant: Tenant, request: Request, response: Response) -> None:
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin is None or not tenant.origin_allowed(origin):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS


def _dispatch(tenant: Tenant, request: Request) -> Response:
    url_map, handlers = _url_map(tenant.control_enabled)
    try:
        endpoint, args = url_map.bind_to_environ(request.environ).match()
        # Read the body before taking the lock: a slow client must not hold it.
        request.get_data(parse_form_data=True)
        with tenant.lock:
            return handlers[str(endpoint)](tenant, request, args)
    except OAuthError as exc:
        logger.debug("Answering %s (%d)", exc.error, exc.status)
        return error_response(exc)
    except RequestRedirect as exc:
        return exc.get_response(request.environ)
    except NotFound:
        return error_response(
            OAuthError("not_found", f"No endpoint at {request.path!r}.", 404)
        )
    except MethodNotAllowed as exc:
        allowed = sorted(exc.valid_methods or ())
        msg = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}."
        return error_response(
            OAuthError(
                "method_not_allowed", msg, 405, headers={"Allow": ", ".join(allowed)}
            )
        )
    except RequestEntityTooLarge:
        msg = "The request body is larger than 64 KiB."
        return error_response(OAuthError("invalid_request", msg, 413))
    except HTTPException as exc:
        code = exc.code or 400
        return error_response(OAuthError("invalid_request", f"{exc.name}.", code))
    except Exception as exc:
        frames = "".join(traceback.format_tb(exc.__traceback__))
        logger.error(
            "Unexpected %s while answering %s %s:\n%s",
            type(exc).__name__,
            loggable_path(request.method),
            loggable_path(request.path),
            frames,
        )
        return json_response(
            {
                "error": "server_error",
                "error_description": "The tenant met an unexpected error.",
            },
            500,
        )
