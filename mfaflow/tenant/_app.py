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
path without the query string, status) and, for a 500, the exception's
type and stack frames without its message, which might hold a value from
the request.
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
from ._http import TenantRequest, error_response, json_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ._tenant import Tenant

__all__ = ["ROUTES", "ROUTE_MODULES", "Handler", "Route", "RouteTable", "handle"]

logger = logging.getLogger(__name__)

Handler = Callable[["Tenant", Request, Mapping[str, str]], Response]

#: The modules whose routes make up the application, in this package.
ROUTE_MODULES: tuple[str, ...] = ("_discovery", "_oauth", "_mfa", "_control", "_pages")


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
    response = _dispatch(tenant, request)
    logger.debug("%s %s -> %d", request.method, request.path, response.status_code)
    return response(environ, start_response)


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
            request.method,
            request.path,
            frames,
        )
        return json_response(
            {
                "error": "server_error",
                "error_description": "The tenant met an unexpected error.",
            },
            500,
        )
