"""The answer stream as OpenAI's chat completion: one response body, or server-sent chunks that give the generation
slot back however the stream ends; both carry lorag's `citations` and `lorag` fields."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Iterator

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from assistant.answer import Answer
from assistant.errors import LoragError
from ui.api_errors import lorag_error_body


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


def _usage(ans: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": ans.tokens,
        "total_tokens": ans.prompt_tokens + ans.tokens,
    }


def completion(final: Answer, cid: str, created: int, model: str) -> dict[str, Any]:
    """The response of a request that did not ask for a stream."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final.answer},
                "finish_reason": final.finish_reason,
            }
        ],
        "usage": _usage(final),
        **_extras(final),
    }


def drain(stream: Iterator[Any]) -> Answer:
    final = None
    for item in stream:
        if isinstance(item, Answer):
            final = item
    assert final is not None
    return final


def prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
    yield from rest  # closing this generator closes `rest` too


def sse(stream: Iterator[Any], cid: str, created: int, model: str) -> Iterator[str]:
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
                yield chunk({}, item.finish_reason, usage=_usage(item), **_extras(item))
            elif item:
                yield chunk({"content": item})
    except LoragError as e:  # the status line went out with the first chunk: the error is an event
        yield f"data: {json.dumps(lorag_error_body(e), ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


async def released(chunks: Iterator[str], gate: Any) -> AsyncIterator[str]:
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
