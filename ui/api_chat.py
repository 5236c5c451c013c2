"""GET /v1/models, GET /v1/models/{id} and POST /v1/chat/completions: the OpenAI endpoints, answered from the indexed
documents."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assistant.errors import LoragError, NoPromotedAdapterError
from assistant.names import domain_name
from ui.api_chat_response import completion, drain, prepend, released, sse
from ui.api_errors import APIError, error_response, lorag_error_response, lorag_message
from ui.api_request import ChatMessage, ChatRequest
from ui.gate import Busy

EVERY_DOMAIN_HINT = "leave the domain out to search every domain"


def served_models(core: Any) -> list[str]:
    """auto, base, then every served adapter."""
    return list(dict.fromkeys([*core.chat_adapters(), *core.compare_adapters()]))


def unknown_model(model: str, known: list[str]) -> str:
    """The 404 message for a model the API does not serve; known is served_models(): auto, base, then the adapters."""
    adapters = f" or one of: {', '.join(known[2:])}" if known[2:] else " (no adapter is registered yet)"
    return f"model '{model}' does not exist; use auto, base{adapters}"


def resolve_model(core: Any, model: str) -> str | JSONResponse:
    """The served name `model` means (a domain's name: its promoted version; AppCore.resolve_model), or the 404
    `model_not_found` for it: the registry's message for a domain without a promoted version (it names the
    versions), else the choices."""
    try:
        return core.resolve_model(model)
    except NoPromotedAdapterError as e:
        return error_response(404, lorag_message(e), "model_not_found", param="model", hint=e.hint)
    except LoragError:
        return error_response(404, unknown_model(model, served_models(core)), "model_not_found", param="model")


def model_object(model: str, created: int) -> dict[str, Any]:
    """A model as OpenAI's API describes one: in GET /v1/models's list, and alone from GET /v1/models/{id}."""
    return {"id": model, "object": "model", "created": created, "owned_by": "lorag"}


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


def answered_by(route: Any) -> str:
    """The response's `model`: what answered — the adapter, `base`, or `none` when nothing relevant was found
    and no model ran."""
    if route is None:
        return "none"
    return route.adapter or "base"


def add_chat_routes(router: APIRouter, core: Any) -> None:
    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        now = int(time.time())
        return {"object": "list", "data": [model_object(m, now) for m in served_models(core)]}

    @router.get("/v1/models/{model_id}")
    async def retrieve_model(model_id: str) -> Any:
        """One model, as the list shows it (OpenAI's `models.retrieve`); a domain's name too, which `model` takes
        for the domain's promoted version (the list names the versions only). A model not served is a 404
        `model_not_found`."""
        served = await run_in_threadpool(resolve_model, core, model_id)
        if isinstance(served, JSONResponse):
            return served
        return model_object(model_id, int(time.time()))

    @router.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> Any:
        """An answer from the indexed documents, with citations (streamed as server-sent events with
        `"stream": true`)."""
        model = await run_in_threadpool(resolve_model, core, body.model or "auto")  # a domain: its promoted version
        if isinstance(model, JSONResponse):
            return model
        try:
            question, history = parse_messages(body.messages)
            domain = domain_name(body.domain, "domain", EVERY_DOMAIN_HINT) if body.domain else None
        except APIError as e:
            return error_response(e.status, e.message, e.code, param=e.param)
        except LoragError as e:
            return error_response(400, lorag_message(e), "invalid_domain", param="domain", hint=e.hint)
        limit = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        top_k = body.top_k
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        routed: list[Any] = []
        try:
            service = await run_in_threadpool(core.service_for, model)  # may attach an adapter first
            await core.gate.acquire_async()  # waits on the event loop, holding no worker thread
        except Busy as e:
            headers = {"Retry-After": str(e.retry_after)}
            return error_response(
                e.status, lorag_message(e), "server_busy", "server_error", headers=headers, hint=e.hint
            )
        except LoragError as e:
            return lorag_error_response(e)
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
                    return lorag_error_response(e)
                raise
            chunks = sse(prepend(first, stream), cid, created, answered_by(routed[0]) if routed else model)
            return StreamingResponse(released(chunks, core.gate), media_type="text/event-stream")
        try:
            final = await run_in_threadpool(drain, stream)
        except LoragError as e:
            return lorag_error_response(e)
        finally:
            core.gate.release()
        return completion(final, cid, created, answered_by(routed[0]) if routed else model)
