"""OpenAI-compatible API on the app's server and port.

    POST /v1/chat/completions   {"model": "auto" | "base" | "<adapter>", "messages": [...], "stream": bool,
                                 "domain": "<domain>" (optional, lorag extension),
                                 "max_tokens" | "max_completion_tokens": the answer's token limit}
    GET  /v1/models             auto, base and every served adapter
    GET  /reports/<run>/<file>  evaluation reports (HTML, JSON, plots)

The answer comes from the indexed documents (the server's own prompt; a client's system message is
ignored). Earlier user/assistant turns are the history. The response carries `citations` (and
`lorag`: route, passages, relevant) next to `choices`; when streaming, on the last chunk.
When the answers come from an engine (models.endpoint) that fails, the status is 502 (504: it was too
slow) with an OpenAI error body (`type` "server_error", `code` "engine_error" or "engine_timeout"); a
stream that fails after its first chunk ends with an error event, then [DONE].
Auth, when ui.username/password are set: HTTP Basic with them, or `Authorization: Bearer <password>`.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from typing import Any, AsyncIterator, Iterator

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from assistant.answer import Answer
from assistant.errors import EngineError, LoragError
from ui.gate import Busy


class APIError(Exception):
    def __init__(self, status: int, message: str, code: str, type_: str = "invalid_request_error"):
        self.status, self.message, self.code, self.type = status, message, code, type_


def _error(status: int, message: str, code: str, type_: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def check_auth(request: Request, auth: tuple[str, str] | None) -> None:
    if auth is None:
        return
    user, pw = auth
    h = request.headers.get("authorization", "")
    scheme, _, value = h.partition(" ")
    ok = False
    if scheme.lower() == "bearer":
        ok = hmac.compare_digest(value.strip().encode(), pw.encode())
    elif scheme.lower() == "basic":
        try:
            u, _, p = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            u, p = "", ""
        ok = hmac.compare_digest(u.encode(), user.encode()) & hmac.compare_digest(p.encode(), pw.encode())
    if not ok:
        raise HTTPException(401, "invalid or missing credentials", headers={"WWW-Authenticate": 'Basic realm="lorag"'})


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", None))
    return ""


def parse_messages(messages: Any) -> tuple[str, list[tuple[str, str]]]:
    """(question, history pairs) from OpenAI messages: the last user message is the question."""
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty list", "invalid_messages")
    turns = [(m.get("role"), _text(m.get("content"))) for m in messages if isinstance(m, dict)]
    turns = [(r, c) for r, c in turns if r in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise APIError(400, "the last message must be a non-empty user message", "invalid_messages")
    history, pending = [], None
    for role, content in turns[:-1]:
        if role == "user":
            pending = content
        elif pending is not None:
            history.append((pending, content))
            pending = None
    return turns[-1][1].strip(), history


def _extras(ans: Answer) -> dict[str, Any]:
    return {"citations": [c.to_dict() for c in ans.citations],
            "lorag": {"adapter": ans.route.get("adapter", "base"), "route": ans.route, "relevant": ans.relevant,
                      "domains": ans.domains, "passages": [p.to_dict() for p in ans.passages]}}  # fmt: skip


def api_router(core: Any, auth: tuple[str, str] | None) -> APIRouter:
    def authorized(request: Request) -> None:
        check_auth(request, auth)

    router = APIRouter(dependencies=[Depends(authorized)])

    def models() -> list[str]:
        return list(dict.fromkeys([*core.chat_adapters(), *core.compare_adapters()]))

    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        now = int(time.time())
        return {"object": "list", "data": [{"id": m, "object": "model", "created": now, "owned_by": "lorag"} for m in models()]}

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "the body must be JSON", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object", "invalid_json")
        model = str(body.get("model") or "auto")
        if model not in models():
            return _error(404, f"model '{model}' does not exist; use auto, base or one of: {', '.join(models()[2:]) or 'none'}",
                          "model_not_found")  # fmt: skip
        try:
            question, history = parse_messages(body.get("messages"))
        except APIError as e:
            return _error(e.status, e.message, e.code)
        domain = body.get("domain") or None
        if domain is not None and not isinstance(domain, str):
            return _error(400, f"domain must be a string (got {type(domain).__name__})", "invalid_domain")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            field_ = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
            return _error(400, f"{field_} must be a positive integer (got {limit!r})", "invalid_max_tokens")
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        try:
            service = await run_in_threadpool(core.service_for, model)  # may attach an adapter first
            await core.gate.acquire_async()  # waits on the event loop, holding no worker thread
        except Busy as e:
            return _error(e.status, _msg(e), "server_busy", "server_error", headers={"Retry-After": str(e.retry_after)})
        except LoragError as e:
            return _lorag_error(e)
        stream = core.answer_stream(service, question, domain, adapter=model, history=history, max_new_tokens=limit)
        if body.get("stream"):
            try:  # retrieval and the first piece of the answer: an engine that is down fails here, with its status
                first = await run_in_threadpool(next, stream, None)
            except BaseException as e:
                core.gate.release()
                if isinstance(e, LoragError):
                    return _lorag_error(e)
                raise
            chunks = _sse(_prepend(first, stream), cid, created, model)
            return StreamingResponse(_released(chunks, core.gate), media_type="text/event-stream")
        try:
            final = await run_in_threadpool(_drain, stream)
        except LoragError as e:
            return _lorag_error(e)
        finally:
            core.gate.release()
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": final.answer}, "finish_reason": final.finish_reason}],
            "usage": {"prompt_tokens": final.prompt_tokens, "completion_tokens": final.tokens,
                      "total_tokens": final.prompt_tokens + final.tokens},
            **_extras(final),
        }  # fmt: skip

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

    return router


def health_router(core: Any) -> APIRouter:
    """Outside the login and the generation queue: answers while every slot is busy."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "generating": core.gate.busy, "waiting": core.gate.waiting}

    return router


def new_api_app() -> FastAPI:
    """The FastAPI app the API routers go on; its docs are served behind the login by `api_router`."""
    return FastAPI(title="lorag", docs_url=None, redoc_url=None, openapi_url=None)


def _msg(e: LoragError) -> str:
    return str(e.args[0]) + (f" — {e.hint}" if e.hint else "")


def _error_body(e: LoragError) -> dict[str, Any]:
    """OpenAI's error object: an engine's failure is a server error (502/504), anything else the request's."""
    if isinstance(e, EngineError):
        return {"error": {"message": _msg(e), "type": "server_error", "code": e.code, "param": None}}
    return {"error": {"message": _msg(e), "type": "invalid_request_error", "code": "lorag_error", "param": None}}


def _lorag_error(e: LoragError) -> JSONResponse:
    return JSONResponse(_error_body(e), status_code=e.status if isinstance(e, EngineError) else 400)


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
    yield from rest  # closing this generator closes `rest` too


async def _released(chunks: Iterator[str], gate: Any) -> AsyncIterator[str]:
    """Stream the chunks (each produced in a worker thread); the slot is given back when the stream
    ends, fails, or the client goes away."""
    try:
        async for c in iterate_in_threadpool(chunks):
            yield c
    finally:
        gate.release()
        await run_in_threadpool(_close, chunks)


def _close(gen: Any) -> None:
    try:
        gen.close()
    except ValueError:  # still running in the worker thread that was producing the next chunk
        pass


def _drain(stream: Iterator[Any]) -> Answer:
    final = None
    for item in stream:
        if isinstance(item, Answer):
            final = item
    assert final is not None
    return final


def _sse(stream: Iterator[Any], cid: str, created: int, model: str) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; a sync generator (Starlette runs it in a thread)."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(c, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for item in stream:
            if isinstance(item, Answer):
                yield chunk({}, item.finish_reason, **_extras(item))
            elif item:
                yield chunk({"content": item})
    except LoragError as e:  # the status line went out with the first chunk: the error is an event
        yield f"data: {json.dumps(_error_body(e), ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
