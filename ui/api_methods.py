"""The HTTP methods a router's paths answer besides their own: HEAD wherever GET is, 405 for the rest under /v1/."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.routing import APIRoute

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def refuse_other_methods(router: APIRouter) -> None:
    """A 405 with `Allow` for a /v1 path asked with another method: without these routes the request would fall
    through to the web app mounted at / and come back 404."""
    answer_head(router)
    allowed: dict[str, set[str]] = {}
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v1/"):
            allowed.setdefault(route.path, set()).update(route.methods)
    for path, methods in allowed.items():
        allow = ", ".join(sorted(methods))

        async def refuse(request: Request, allow: str = allow) -> Any:
            raise refusal(request.method, allow)

        refuse.lorag_refuses = True  # type: ignore[attr-defined]
        router.add_api_route(path, refuse, methods=sorted(METHODS - methods), include_in_schema=False)


def refusal(method: str, allow: str) -> HTTPException:
    """The 405 for `method` on a path that answers the methods in `allow` (comma-separated)."""
    return HTTPException(405, f"{method} is not allowed here: use {allow}", headers={"Allow": allow})


def allowed_methods(routers: Any, path: str) -> set[str] | None:
    """The methods the /v1/ routes of `routers` answer at `path` (a request path, not a template), None if none of
    them serves it. The 405 routes of `refuse_other_methods` don't count."""
    found: set[str] | None = None
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or not route.path.startswith("/v1/"):
                continue
            if getattr(route.endpoint, "lorag_refuses", False) or not route.path_regex.match(path):
                continue
            found = (found or set()) | set(route.methods)
    return found


def answer_head(router: APIRouter) -> None:
    """HEAD wherever GET is allowed (as HTTP asks): the GET route's handler answers, the server sends no body. Routes
    of their own, so the schema lists GET only."""
    for route in list(router.routes):
        if isinstance(route, APIRoute) and "GET" in route.methods and "HEAD" not in route.methods:
            router.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)
