"""A stub OpenAI-compatible engine on a free 127.0.0.1 port (FastAPI + uvicorn in a thread).

It records every request, streams word by word (with SSE keep-alive comments), reports usage, and
misbehaves on demand: an HTTP status for the next N requests, a hang, a stall after the first word, keep-alives
without end,
a malformed chunk, an error event, a stream cut off without finish_reason or [DONE].

    stub = EngineStub(); stub.start()
    stub.reply = "Full-time staff receive 27 days [1]."   # or a callable(body) -> str
    stub.fail = [503, 503]                                  # the next two chat requests fail
    stub.behaviour = "hang"                                 # ok | hang | stall | trickle | malformed | error_event
                                                            # | cut | not_json
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any, Callable

from fastapi import FastAPI, Request  # module level: the routes' annotations must resolve here
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineStub:
    BASE = "base-m"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.reset()
        self.closing = False
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.requests: list[dict[str, Any]] = []  # {"path", "body", "auth"}
        self.models: list[dict[str, Any]] = [
            {"id": self.BASE, "object": "model", "parent": None},
            {"id": "hr-v1", "object": "model", "parent": self.BASE},  # a vLLM LoRA module of this base
            {"id": "other-lora", "object": "model", "parent": "another-base"},
        ]
        self.loras: list[dict[str, Any]] | None = None  # llama.cpp's GET /lora-adapters; None: no such route (404)
        self.reply: str | Callable[[dict[str, Any]], str] = "Full-time staff receive 27 days of annual leave [1]."
        self.usage = True  # send usage (the chunk after the finish chunk when streaming)
        self.prompt_tokens, self.completion_tokens = 321, 17  # reported usage: deliberately not the word count
        self.fail: list[int] = []  # statuses for the next chat requests
        self.models_fail: list[int] = []  # statuses for the next GET /models
        self.retry_after: str | None = None
        self.behaviour = "ok"
        self.delay = 0.0  # before answering (non-streaming) or between chunks (streaming)
        self.active = 0
        self.peak = 0

    # -- server ---------------------------------------------------------------------------------
    def app(self) -> Any:
        app = FastAPI()
        stub = self

        @app.get("/v1/models")
        async def models(request: Request) -> Any:
            stub.requests.append({"path": "/v1/models", "body": None, "auth": request.headers.get("authorization")})
            if stub.models_fail:
                status = stub.models_fail.pop(0)
                return JSONResponse({"error": {"message": "models unavailable"}}, status_code=status)
            return {"object": "list", "data": stub.models}

        @app.get("/lora-adapters")
        async def lora_adapters(request: Request) -> Any:
            stub.requests.append({"path": "/lora-adapters", "body": None, "auth": request.headers.get("authorization")})
            if stub.loras is None:
                return JSONResponse({"error": {"message": "File Not Found"}}, status_code=404)
            return stub.loras

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            stub.requests.append(
                {"path": "/v1/chat/completions", "body": body, "auth": request.headers.get("authorization")}
            )
            if stub.fail:
                status = stub.fail.pop(0)
                headers = {"Retry-After": stub.retry_after} if stub.retry_after else None
                return JSONResponse(
                    {"error": {"message": f"engine says {status}", "type": "server_error"}},
                    status_code=status,
                    headers=headers,
                )
            if body.get("model") not in [m["id"] for m in stub.models]:
                return JSONResponse(
                    {"error": {"message": f"The model `{body.get('model')}` does not exist."}}, status_code=404
                )
            if stub.behaviour == "hang":
                await stub._hang()
            if stub.behaviour == "not_json":
                return PlainTextResponse("upstream proxy says hello")
            words = stub._words(body)
            finish = "length" if len(words) > body.get("max_tokens", 10**9) else "stop"
            words = words[: body.get("max_tokens", 10**9)]
            if not body.get("stream"):
                with stub._counting():
                    await asyncio.sleep(stub.delay)
                reply: dict[str, Any] = {
                    "id": "cmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": " ".join(words)},
                            "finish_reason": finish,
                        }
                    ],
                }
                if stub.behaviour == "malformed":
                    reply = {"id": "cmpl-1", "object": "chat.completion", "choices": []}
                if stub.usage:
                    reply["usage"] = {
                        "prompt_tokens": stub.prompt_tokens,
                        "completion_tokens": stub.completion_tokens,
                        "total_tokens": stub.prompt_tokens + stub.completion_tokens,
                    }
                return reply
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            return StreamingResponse(stub._sse(body, words, finish, include_usage), media_type="text/event-stream")

        return app

    def _words(self, body: dict[str, Any]) -> list[str]:
        text = self.reply(body) if callable(self.reply) else self.reply
        return text.split(" ")

    def _counting(self) -> Any:
        stub = self

        class _Count:
            def __enter__(self) -> None:
                with stub._lock:
                    stub.active += 1
                    stub.peak = max(stub.peak, stub.active)

            def __exit__(self, *exc: Any) -> None:
                with stub._lock:
                    stub.active -= 1

        return _Count()

    async def _hang(self) -> None:
        for _ in range(600):
            if self.closing:
                return
            await asyncio.sleep(0.05)

    async def _sse(self, body: dict[str, Any], words: list[str], finish: str, include_usage: bool) -> Any:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
            c = {
                "id": "chunk",
                "object": "chat.completion.chunk",
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            return f"data: {json.dumps(c)}\n\n"

        with self._counting():
            yield ": keep-alive\n\n"
            while self.behaviour == "trickle" and not self.closing:  # alive, but never an answer
                await asyncio.sleep(0.1)
                yield ": keep-alive\n\n"
            yield chunk({"role": "assistant", "content": ""})
            for i, w in enumerate(words):
                await asyncio.sleep(self.delay)
                yield chunk({"content": w if i == 0 else " " + w})
                yield ": keep-alive\n\n"
                if i == 0 and self.behaviour == "stall":
                    await self._hang()
                    return
                if i == 0 and self.behaviour == "malformed":
                    yield 'data: {"choices": [{"delta": {"content": "x"\n\n'
                    return
                if i == 0 and self.behaviour == "error_event":
                    error = {"error": {"message": "CUDA out of memory", "type": "server_error"}}
                    yield f"data: {json.dumps(error)}\n\n"
                    return
                if i == 1 and self.behaviour == "cut":
                    return
            yield chunk({}, finish)
            if include_usage and self.usage:
                usage = {
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                    "total_tokens": self.prompt_tokens + self.completion_tokens,
                }
                body = {"id": "chunk", "object": "chat.completion.chunk", "choices": [], "usage": usage}
                yield f"data: {json.dumps(body)}\n\n"
            yield "data: [DONE]\n\n"

    def start(self) -> "EngineStub":
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app(), host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the engine stub did not start")
            time.sleep(0.02)
        return self

    def close(self) -> None:
        self.closing = True
        self.server.should_exit = True
        self.thread.join(10)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]
