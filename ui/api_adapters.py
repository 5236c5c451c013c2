"""/v1/adapters: the registry's adapters, one adapter's card, and promotion through the A/B gate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from assistant.errors import LoragError, UnknownAdapterError
from ui.api_body import json_object
from ui.api_errors import lorag_error_body


def _not_found_or_400(e: LoragError) -> JSONResponse:
    """404 for an adapter the registry does not resolve (no such version, a domain without a promoted one) or a job
    not found; 400 for anything else."""
    return JSONResponse(
        lorag_error_body(e), status_code=404 if isinstance(e, UnknownAdapterError) or "no job" in str(e) else 400
    )


def add_adapter_routes(router: APIRouter, core: Any) -> None:
    @router.get("/v1/adapters")
    def adapters() -> Any:
        from services.adapters import adapter_rows

        return {"data": adapter_rows(core.comps)}

    @router.get("/v1/adapters/{name}")
    def adapter(name: str) -> Any:
        try:
            return core.comps.registry.get(name).model_dump()
        except LoragError as e:
            return _not_found_or_400(e)

    @router.post("/v1/adapters/{name}/promote")
    async def promote(name: str, request: Request) -> Any:
        """{"force": bool}: through the A/B gate, as `lorag adapters promote`."""
        from ui.web_jobs import promote as promote_in_app

        body = await json_object(request, empty={})
        if isinstance(body, JSONResponse):
            return body
        try:
            message = await run_in_threadpool(promote_in_app, core, name, bool(body.get("force")), "cli")
        except LoragError as e:
            return _not_found_or_400(e)
        return {"message": message, "card": core.comps.registry.get(name).model_dump()}
