"""OpenAI-compatible API on the app's server and port.

    POST /v1/chat/completions   {"model": "auto" | "base" | "<adapter>", "messages": [...], "stream": bool,
                                 "domain": "<domain>" (optional, lorag extension; capitals are lowercased),
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
Every error under /v1/ (a bad body field, an unknown model or domain, a wrong method, a refused login) is OpenAI's
error object, with `param` naming the field at fault.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from typing import Any, AsyncIterator, Iterator

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.answer import Answer
from assistant.errors import EngineError, LoragError, UnknownDomainError
from assistant.names import domain_name
from ui.api_request import ChatMessage, ChatRequest, error_object, invalid_json, validation_error
from ui.gate import Busy


class APIError(Exception):
    def __init__(
        self, status: int, message: str, code: str, type_: str = "invalid_request_error", param: str | None = None
    ):
        self.status, self.message, self.code, self.type, self.param = status, message, code, type_, param


def unknown_model(model: str, known: list[str]) -> str:
    """The 404 message for a model the API does not serve; known is models(): auto, base, then the adapters."""
    adapters = f" or one of: {', '.join(known[2:])}" if known[2:] else " (no adapter is registered yet)"
    return f"model '{model}' does not exist; use auto, base{adapters}"


def _error(
    status: int,
    message: str,
    code: str,
    type_: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> JSONResponse:
    return JSONResponse(error_object(message, param, code, type_), status_code=status, headers=headers)


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


def parse_messages(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history pairs) from OpenAI messages: the last user message is the question; system, developer
    and tool messages are left out (the server's own prompt applies)."""
    turns = [(i, m.role, m.text()) for i, m in enumerate(messages) if m.role in ("user", "assistant")]
    if not turns or turns[-1][1] != "user" or not turns[-1][2].strip():
        # the message at fault: the last user/assistant turn (the others are left out), else the last message
        at = turns[-1][0] if turns else len(messages) - 1
        got = f"has role '{messages[at].role}'" if messages[at].role != "user" else "is empty"
        raise APIError(
            400,
            f"the last user or assistant message must be a non-empty user message (messages[{at}] {got}); "
            "system, developer and tool messages are left out",
            "invalid_messages",
            param=f"messages[{at}]",
        )
    history, pending = [], None
    for _, role, content in turns[:-1]:
        if role == "user":
            pending = content
        elif pending is not None:
            history.append((pending, content))
            pending = None
    return turns[-1][2].strip(), history


def _extras(ans: Answer) -> dict[str, Any]:
    return {
        "citations": [c.to_dict() for c in ans.citations],
        "lorag": {
            "adapter": ans.answered_by,  # as the CLI says it: None when no model ran
            "route": ans.route,
            "relevant": ans.relevant,
            "similarity": ans.shown_similarity,  # the best passage's cosine, against retrieval.min_relevance
            "domains": ans.domains,
            "passages": [p.to_dict() for p in ans.passages],
            "question": ans.question,
            "search_query": ans.search_query,
            "timings_ms": {k: round(v, 2) for k, v in ans.timings_ms.items()},
        },
    }


def answered_by(route: Any) -> str:
    """The response's `model`: what answered — the adapter, `base`, or `none` when nothing relevant was found
    and no model ran."""
    if route is None:
        return "none"
    return route.adapter or "base"


async def _json_object(request: Request, empty: dict[str, Any] | None = None) -> dict[str, Any] | JSONResponse:
    """The request's body as a JSON object, or the 400 the chat endpoint answers for a body that is none (code
    `invalid_json`). `empty`: what an empty body means, where one is allowed."""
    raw = await request.body()
    if not raw.strip() and empty is not None:
        return empty
    content_type = request.headers.get("content-type", "")
    try:
        body = json.loads(raw)
    except ValueError as e:  # not JSON, or not UTF-8
        return JSONResponse(invalid_json(getattr(e, "msg", None) or str(e), content_type), status_code=400)
    if not isinstance(body, dict):
        return JSONResponse(invalid_json(None, content_type), status_code=400)
    return body


def _require_domain(value: Any, field: str, what: str) -> None:
    """A LoragError naming the API's field when no domain was sent (the web app's message names its own control)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LoragError(f"{field} is required: {what} (e.g. 'contracts'; capitals are lowercased)")
    if not isinstance(value, str):
        raise LoragError(f"{field} must be a string: {what} (got {value!r})")


def _job_error(e: LoragError) -> JSONResponse:
    return JSONResponse(_error_body(e), status_code=404 if "no adapter named" in str(e) or "no job" in str(e) else 400)


def api_router(core: Any, auth: tuple[str, str] | None) -> APIRouter:  # noqa: C901 - the sum of its small route handlers
    def authorized(request: Request) -> None:
        check_auth(request, auth)

    router = APIRouter(dependencies=[Depends(authorized)])

    def models() -> list[str]:
        return list(dict.fromkeys([*core.chat_adapters(), *core.compare_adapters()]))

    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": now, "owned_by": "lorag"} for m in models()],
        }

    @router.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> Any:
        """An answer from the indexed documents, with citations (streamed as server-sent events with
        `"stream": true`)."""
        model = body.model or "auto"
        if model not in (known := models()):
            return _error(404, unknown_model(model, known), "model_not_found", param="model")
        try:
            question, history = parse_messages(body.messages)
            domain = domain_name(body.domain, "domain") if body.domain else None
        except APIError as e:
            return _error(e.status, e.message, e.code, param=e.param)
        except LoragError as e:
            return _error(400, _msg(e), "invalid_domain", param="domain")
        limit = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        top_k = body.top_k
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        routed: list[Any] = []
        try:
            service = await run_in_threadpool(core.service_for, model)  # may attach an adapter first
            await core.gate.acquire_async()  # waits on the event loop, holding no worker thread
        except Busy as e:
            return _error(e.status, _msg(e), "server_busy", "server_error", headers={"Retry-After": str(e.retry_after)})
        except LoragError as e:
            return _lorag_error(e)
        stream = core.answer_stream(
            service,
            question,
            domain,
            adapter=model,
            history=history,
            max_new_tokens=limit,
            top_k=top_k,
            on_route=routed.append,
        )
        if body.stream:
            try:  # retrieval and the first piece of the answer: an engine that is down fails here, with its status
                first = await run_in_threadpool(next, stream, None)
            except BaseException as e:
                core.gate.release()
                if isinstance(e, LoragError):
                    return _lorag_error(e)
                raise
            chunks = _sse(_prepend(first, stream), cid, created, answered_by(routed[0]) if routed else model)
            return StreamingResponse(_released(chunks, core.gate), media_type="text/event-stream")
        try:
            final = await run_in_threadpool(_drain, stream)
        except LoragError as e:
            return _lorag_error(e)
        finally:
            core.gate.release()
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": answered_by(routed[0]) if routed else model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": final.answer},
                    "finish_reason": final.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": final.prompt_tokens,
                "completion_tokens": final.tokens,
                "total_tokens": final.prompt_tokens + final.tokens,
            },
            **_extras(final),
        }

    # -- what the `lorag` CLI asks of a running app (the embedded store admits one process) -----------
    @router.get("/v1/documents")
    def documents(domain: str | None = None) -> Any:
        from services.documents import list_documents

        try:
            return {"data": list_documents(core.comps.store, domain_name(domain, "domain") if domain else None)}
        except LoragError as e:
            return _lorag_error(e)

    @router.post("/v1/documents")
    async def upload_documents(request: Request) -> Any:
        """multipart/form-data: `domain`, and `files` (each file's name may hold sub-folders: kept under the
        domain's upload folder, never outside it). Starts an ingest job: {"job": id}; poll /v1/jobs/{id}."""
        import shutil
        import tempfile
        from pathlib import Path

        from ui.tab_docs import start_ingest

        form = await request.form()
        domain = str(form.get("domain") or "")
        uploads = [f for f in form.getlist("files") if hasattr(f, "filename")]
        tmp = Path(tempfile.mkdtemp(prefix="lorag-upload-"))
        try:
            _require_domain(domain, "the form field 'domain'", "the domain the files go into")
            files = []
            for i, f in enumerate(uploads):
                target = tmp / str(i)
                with target.open("wb") as out:
                    shutil.copyfileobj(f.file, out)
                files.append((str(f.filename or f"file-{i}"), target))
            job = await run_in_threadpool(start_ingest, core, domain, files)  # copies the files before it returns
        except LoragError as e:
            return _lorag_error(e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            await form.close()
        return {"job": job}

    @router.post("/v1/documents/local")
    async def ingest_local(request: Request) -> Any:
        """{"domain": D, "paths": [...], "sync": bool}: ingest files and folders of this machine where they are, for
        the `lorag` CLI of the app's own user only: the request must carry the token of the app's note
        (<data_dir>/app.json, readable by that user alone), since it makes the app read any path that user can.
        Starts an ingest job: {"job": id}."""
        import hmac
        from pathlib import Path

        from ui.remote import TOKEN_HEADER
        from ui.tab_docs import start_ingest

        want = getattr(core, "local_token", None)
        got = request.headers.get(TOKEN_HEADER, "")
        if not want or not hmac.compare_digest(got.encode(), str(want).encode()):
            err = LoragError(
                "reading files by path is only for the lorag CLI of the app's own user",
                hint="upload the files with POST /v1/documents instead",
            )
            return JSONResponse(_error_body(err), status_code=403)
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body.get("paths"), list):
            return _lorag_error(LoragError('expected {"domain": ..., "paths": [...]}'))
        try:
            _require_domain(body.get("domain"), "the field 'domain'", "the domain the files go into")
            paths = [Path(str(p)) for p in body["paths"]]
            job = await run_in_threadpool(
                start_ingest, core, str(body.get("domain") or ""), [], local=paths, sync=bool(body.get("sync"))
            )
        except LoragError as e:
            return _lorag_error(e)
        return {"job": job}

    @router.post("/v1/documents/delete")
    async def delete_documents(request: Request) -> Any:
        """{"domain": D, "documents": [names]} or {"domain": D, "all": true}."""
        from ui.tab_docs import delete_docs

        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            if not isinstance(body.get("domain"), str):
                raise LoragError('the body must be {"domain": ..., "documents": [...]} or {"domain": ..., "all": true}')
            removed = await run_in_threadpool(
                delete_docs, core, body["domain"], list(body.get("documents") or []), bool(body.get("all"))
            )
        except LoragError as e:
            return _lorag_error(e)
        return {"removed": removed}

    @router.post("/v1/jobs")
    async def start_job(request: Request) -> Any:
        """{"kind": "synth", "domain", "writer"?, "max_chunks"?, "qa_jsonl"?, "qa_name"?}
        | {"kind": "train", "domain", "max_steps"?, "resume"?}
        | {"kind": "eval", "domain", "arms", "limit"?, "testset_jsonl"?, "testset_name"?}:
        the Adapters and Evaluation tabs' jobs (a *_jsonl field is the file's text, saved in the data folder; its
        *_name, the file's name where the sender has it, names it in messages). Returns {"job": id}; poll
        /v1/jobs/{id}."""
        from ui.web_jobs import display_name, start_eval, start_synth, start_train

        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            if body.get("kind") not in ("synth", "train", "eval"):
                raise LoragError('the body must be {"kind": "synth" | "train" | "eval", "domain": ..., ...}')
            _require_domain(body.get("domain"), "the field 'domain'", "the domain the job works on")
            domain = domain_name(body["domain"])

            def saved(key: str) -> Any:
                text = body.get(key)
                if not isinstance(text, str) or not text.strip():
                    return None
                from pathlib import Path

                folder = Path(core.settings.paths.data_dir) / "uploads" / ".jobs"
                folder.mkdir(parents=True, exist_ok=True)
                f = folder / f"{uuid.uuid4().hex}.jsonl"
                f.write_text(text, encoding="utf-8")
                return f

            def name(key: str) -> str | None:
                return display_name(body.get(key))  # shown in messages and the report, never opened

            kind = body["kind"]
            if kind == "synth":
                job = await run_in_threadpool(
                    start_synth,
                    core,
                    domain,
                    saved("qa_jsonl"),
                    body.get("writer"),
                    body.get("max_chunks"),
                    name("qa_name"),
                )
            elif kind == "train":
                job = await run_in_threadpool(
                    start_train, core, domain, body.get("max_steps"), bool(body.get("resume"))
                )
            else:
                job = await run_in_threadpool(
                    start_eval,
                    core,
                    domain,
                    str(body.get("arms") or ""),
                    saved("testset_jsonl"),
                    body.get("limit"),
                    name("testset_name"),
                )
        except LoragError as e:
            return _lorag_error(e)
        return {"job": job}

    @router.get("/v1/jobs/{job_id}")
    def job(job_id: str) -> Any:
        state = core.jobs.get(job_id)
        if state is None:
            return _error(404, f"no job {job_id!r}", "not_found")
        return state

    @router.get("/v1/adapters")
    def adapters() -> Any:
        from services.adapters import adapter_rows

        return {"data": adapter_rows(core.comps)}

    @router.get("/v1/adapters/{name}")
    def adapter(name: str) -> Any:
        try:
            return core.comps.registry.get(name).model_dump()
        except LoragError as e:
            return _job_error(e)

    @router.post("/v1/adapters/{name}/promote")
    async def promote(name: str, request: Request) -> Any:
        """{"force": bool}: through the A/B gate, as `lorag adapters promote`."""
        from ui.web_jobs import promote as promote_in_app

        body = await _json_object(request, empty={})
        if isinstance(body, JSONResponse):
            return body
        try:
            message = await run_in_threadpool(promote_in_app, core, name, bool(body.get("force")), "cli")
        except LoragError as e:
            return _job_error(e)
        return {"message": message, "card": core.comps.registry.get(name).model_dump()}

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

    _refuse_other_methods(router)
    return router


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _refuse_other_methods(router: APIRouter) -> None:
    """A 405 with `Allow` for a /v1 path asked with another method: without these routes the request would fall
    through to the web app mounted at / and come back 404."""
    _answer_head(router)
    allowed: dict[str, set[str]] = {}
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v1/"):
            allowed.setdefault(route.path, set()).update(route.methods)
    for path, methods in allowed.items():
        allow = ", ".join(sorted(methods))

        async def refuse(request: Request, allow: str = allow) -> Any:
            raise HTTPException(405, f"{request.method} is not allowed here: use {allow}", headers={"Allow": allow})

        router.add_api_route(path, refuse, methods=sorted(_METHODS - methods), include_in_schema=False)


def _answer_head(router: APIRouter) -> None:
    """HEAD wherever GET is allowed (as HTTP asks): the GET route's handler answers, the server sends no body. Routes
    of their own, so the schema lists GET only."""
    for route in list(router.routes):
        if isinstance(route, APIRoute) and "GET" in route.methods and "HEAD" not in route.methods:
            router.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)


def health_router(core: Any) -> APIRouter:
    """Outside the login and the generation queue: answers while every slot is busy."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "generating": core.gate.busy, "waiting": core.gate.waiting}

    _answer_head(router)
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
        return _error(exc.status_code, str(exc.detail), code, headers=getattr(exc, "headers", None))

    return app


def _msg(e: LoragError) -> str:
    return str(e.args[0]) + (f" — {e.hint}" if e.hint else "")


def _error_body(e: LoragError) -> dict[str, Any]:
    """OpenAI's error object: an engine's failure is a server error (502/504), anything else the request's."""
    if isinstance(e, EngineError):
        return error_object(_msg(e), None, e.code, "server_error")
    if isinstance(e, UnknownDomainError):  # every API names the domain in a field called `domain`
        return error_object(_msg(e), "domain", e.code)
    return error_object(_msg(e), None, "lorag_error")


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
        c = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(c, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for item in stream:
            if isinstance(item, Answer):
                usage = {
                    "prompt_tokens": item.prompt_tokens,
                    "completion_tokens": item.tokens,
                    "total_tokens": item.prompt_tokens + item.tokens,
                }
                yield chunk({}, item.finish_reason, usage=usage, **_extras(item))
            elif item:
                yield chunk({"content": item})
    except LoragError as e:  # the status line went out with the first chunk: the error is an event
        yield f"data: {json.dumps(_error_body(e), ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
