"""OpenAI-compatible API on the app's server and port: its FastAPI app and routers, put together here.

    POST /v1/chat/completions   {"model": "auto" | "base" | "<adapter>" | "<domain>" (its promoted adapter),
                                 "messages": [...], "stream": bool,
                                 "domain": "<domain>" (optional, lorag extension; capitals are lowercased),
                                 "max_tokens" | "max_completion_tokens": the answer's token limit}
    GET  /v1/models             auto, base and every served adapter
    GET  /v1/models/<id>        one of them, or a domain's name (404 model_not_found for a model not served)
    GET  /reports/<run>/<file>  evaluation reports (HTML, JSON, plots)

The answer comes from the indexed documents (the server's own prompt; a client's system message is
ignored). Earlier user/assistant turns are the history. The response carries `citations` (and
`lorag`: route, passages, relevant) next to `choices`; when streaming, on the last chunk.
When the answers come from an engine (models.endpoint) that fails, the status is 502 (504: it was too
slow) with an OpenAI error body (`type` "server_error", `code` "engine_error" or "engine_timeout"); a
stream that fails after its first chunk ends with an error event, then [DONE].
Auth, when ui.username/password are set: HTTP Basic with them, or `Authorization: Bearer <password>`.
Every error under /v1/ (a bad body field, an unknown model or domain, a wrong method, a path not served, a refused
login) is OpenAI's error object, with `param` naming the field at fault.
The routes: api_chat.py (the OpenAI endpoints), api_documents.py, api_jobs.py and api_adapters.py (the CLI's).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ui.api_adapters import add_adapter_routes
from ui.api_auth import check_auth
from ui.api_chat import add_chat_routes
from ui.api_documents import add_document_routes
from ui.api_errors import error_response
from ui.api_jobs import add_job_routes
from ui.api_methods import METHODS, allowed_methods, answer_head, refusal, refuse_other_methods
from ui.api_request import validation_error


def api_router(core: Any, auth: tuple[str, str] | None) -> APIRouter:
    """Every route behind the login: the OpenAI endpoints, what the `lorag` CLI asks of a running app, the
    evaluation reports and the API's docs."""

    def authorized(request: Request) -> None:
        check_auth(request, auth)

    router = APIRouter(dependencies=[Depends(authorized)])
    add_chat_routes(router, core)
    add_document_routes(router, core)
    add_job_routes(router, core)
    add_adapter_routes(router, core)

    @router.get("/reports/{run_id}/{name:path}")
    def report_file(run_id: str, name: str) -> Any:
        root = core.settings.reports_dir.resolve()
        f = (root / run_id / name).resolve()
        if not f.is_relative_to(root) or not f.is_file():
            raise HTTPException(404, "no such report file")
        return FileResponse(f)

    @router.get("/v1/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Any:
        return request.app.openapi()

    @router.get("/v1/docs", include_in_schema=False)
    async def docs() -> Any:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/v1/openapi.json", title="lorag API")

    refuse_other_methods(router)
    return router


def not_served_router(auth: tuple[str, str] | None, *served: APIRouter) -> APIRouter:
    """Any other /v1/ path, behind the login: a 404 in OpenAI's shape naming the path and the /v1/ paths of the
    `served` routers (without it a request would reach the web app mounted at / and get its {"detail": "Not Found"}).
    A served path asked with a trailing slash is redirected (307) to the path without it, and one asked with a method
    it does not answer is a 405 with `Allow`, as without this catch-all. Included after them."""

    def authorized(request: Request) -> None:
        check_auth(request, auth)

    paths = dict.fromkeys(
        r.path for router in served for r in router.routes if isinstance(r, APIRoute) and r.path.startswith("/v1/")
    )
    router = APIRouter(dependencies=[Depends(authorized)])

    @router.api_route("/v1/{path:path}", methods=sorted(METHODS), include_in_schema=False)
    async def not_served(request: Request) -> Any:
        path = request.url.path
        bare = path.rstrip("/")  # a trailing slash off
        methods = allowed_methods(served, bare)
        if methods is not None and bare != path:
            return RedirectResponse(str(request.url.replace(path=bare)), status_code=307)
        if methods is not None:
            raise refusal(request.method, ", ".join(sorted(methods)))
        message = f"{request.url.path} is not served; lorag serves {', '.join(paths)}"
        return error_response(404, message, "not_found")

    return router


def health_router(core: Any) -> APIRouter:
    """Outside the login and the generation queue: answers while every slot is busy."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "generating": core.gate.busy, "waiting": core.gate.waiting}

    answer_head(router)
    return router


_HTTP_CODES = {401: "invalid_api_key", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def new_api_app() -> FastAPI:
    """The FastAPI app the API routers go on; its docs are served behind the login by `api_router`. Its errors
    under /v1 (a refused login, a bad request body, a wrong method) are OpenAI error objects."""
    app = FastAPI(title="lorag", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error(list(exc.errors()), request.headers.get("content-type", "")), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if not request.url.path.startswith("/v1/"):
            return await http_exception_handler(request, exc)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), code, headers=getattr(exc, "headers", None))

    return app
