"""`OpenAIGenerator`: the Generator protocol over an OpenAI-compatible engine.

The messages are the ones assistant/prompt.py built (the engine applies its chat template). An adapter
is chosen per request by the request's `model`: the adapter's served name (vLLM `--lora-modules NAME=PATH`),
or `models.endpoint.model` for the base model. Decoding settings come from `models`: temperature (0 is
greedy), max_new_tokens as `max_tokens`, repetition_penalty as the engine's own extra field
(`models.endpoint.repetition_penalty_field`), never replaced by a different penalty.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from assistant.engines.client import EngineClient
from assistant.errors import EngineError
from assistant.generation import GenerationStats, Messages
from assistant.settings import ModelSettings

ADAPTERS_TTL_S = 5.0  # how long the engine's model list is reused


@dataclass
class EngineHealth:
    url: str
    model: str
    models: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)

    @property
    def model_listed(self) -> bool:
        return self.model in self.models


class OpenAIGenerator:
    """Answers from an engine; `last_stats` is per calling thread, like HFGenerator's."""

    def __init__(self, settings: ModelSettings, *, client: EngineClient | None = None):
        self.settings = settings
        self.endpoint = settings.endpoint
        if not self.endpoint.base_url or not self.endpoint.model:
            raise EngineError("no engine configured", hint="set models.endpoint.base_url and models.endpoint.model")
        self.client = client or EngineClient.from_settings(self.endpoint)
        self.model = self.endpoint.model
        self.name = f"{self.model}@{self.client.base_url}"
        self._local = threading.local()
        self._listed: tuple[float, list[dict[str, Any]] | EngineError] | None = None
        self._listed_lock = threading.Lock()

    @property
    def last_stats(self) -> GenerationStats:
        return getattr(self._local, "stats", None) or GenerationStats()

    @last_stats.setter
    def last_stats(self, stats: GenerationStats) -> None:
        self._local.stats = stats

    # -- requests -------------------------------------------------------------------------------
    def request_body(self, messages: Messages, adapter: str | None = None, max_new_tokens: int | None = None) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": adapter or self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens or s.max_new_tokens,
            "temperature": s.temperature,
        }
        if self.endpoint.repetition_penalty_field != "none":
            body[self.endpoint.repetition_penalty_field] = s.repetition_penalty
        return body

    def stream(self, messages: Messages, *, adapter: str | None = None, max_new_tokens: int | None = None) -> Iterator[str]:
        body = {**self.request_body(messages, adapter, max_new_tokens), "stream_options": {"include_usage": True}}
        url = self.client.url("chat/completions")
        stats = GenerationStats()
        t0 = time.perf_counter()
        pieces = 0
        usage = None
        for chunk in self.client.chat_stream(body):
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in (chunk.get("choices") or [])[:1]:
                if not isinstance(choice, dict):
                    raise self.client.malformed(url, "a choice is not an object", chunk)
                delta = choice.get("delta") or {}
                text = delta.get("content") if isinstance(delta, dict) else delta
                if text is not None and not isinstance(text, str):
                    raise self.client.malformed(url, "delta.content is not text", chunk)
                if text:
                    if not stats.first_token_s:
                        stats.first_token_s = time.perf_counter() - t0
                    pieces += 1
                    yield text
                if choice.get("finish_reason"):
                    stats.finish_reason = str(choice["finish_reason"])
        stats.total_s = time.perf_counter() - t0
        stats.prompt_tokens, stats.new_tokens = _usage(usage, pieces)  # without a usage chunk: one token a piece
        self.last_stats = stats

    def generate_batch(
        self, batch: Sequence[Messages], *, adapters: Sequence[str | None] | None = None, max_new_tokens: int | None = None
    ) -> list[str]:
        """Each prompt as its own request, at most `models.endpoint.max_concurrency` at once; each row may
        name a different adapter. The first failure (after retries) cancels the rest and is raised."""
        if not batch:
            return []
        names = list(adapters) if adapters is not None else [None] * len(batch)
        if len(names) != len(batch):
            raise ValueError("adapters must match the batch length")
        t0 = time.perf_counter()
        bodies = [self.request_body(m, a, max_new_tokens) for m, a in zip(batch, names)]
        pool = ThreadPoolExecutor(max_workers=min(len(batch), self.client.max_concurrency), thread_name_prefix="engine")
        try:
            futures = [pool.submit(self.client.chat, b) for b in bodies]
            wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:
                if f.done() and f.exception() is not None:
                    raise f.exception()  # type: ignore[misc]
            replies = [f.result() for f in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        texts, prompt, new = [], 0, 0
        for r in replies:
            texts.append((r["choices"][0]["message"].get("content") or "").strip())
            p, n = _usage(r.get("usage"), 0)
            prompt, new = prompt + p, new + n
        finish = [str(r["choices"][0].get("finish_reason") or "stop") for r in replies]
        self.last_stats = GenerationStats(prompt, new, 0.0, time.perf_counter() - t0,
                                          "length" if "length" in finish else "stop")  # fmt: skip
        return texts

    # -- what the engine serves -----------------------------------------------------------------
    def listed(self, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The engine's GET /models entries, reused for ADAPTERS_TTL_S seconds; so is a failure, so that an
        engine that is down costs one round of retries, not one per adapter picker or /v1/models call."""
        with self._listed_lock:
            if not refresh and self._listed and time.monotonic() - self._listed[0] < ADAPTERS_TTL_S:
                if isinstance(self._listed[1], EngineError):
                    raise self._listed[1]
                return self._listed[1]
        try:
            entries: list[dict[str, Any]] | EngineError = self.client.models()
        except EngineError as e:
            entries = e
        with self._listed_lock:
            self._listed = (time.monotonic(), entries)
        if isinstance(entries, EngineError):
            raise entries
        return entries

    def adapters(self, *, refresh: bool = False) -> list[str]:
        """Names the engine serves besides the base model. vLLM says which base a LoRA module belongs to
        (`parent`): then only this base's adapters count."""
        out = []
        for e in self.listed(refresh=refresh):
            if e["id"] == self.model:
                continue
            parent = e.get("parent")
            if parent is None or parent == self.model:
                out.append(e["id"])
        return out

    def health(self) -> EngineHealth:
        """One GET /models; raises EngineError naming the URL and the cause."""
        entries = self.listed(refresh=True)
        return EngineHealth(self.client.url("models"), self.model, [e["id"] for e in entries], self.adapters())


def _usage(usage: Any, pieces: int) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, pieces
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return 0, pieces
