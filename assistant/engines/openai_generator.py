"""`OpenAIGenerator`: the Generator protocol over an OpenAI-compatible engine.

The messages are the ones assistant/prompt.py built (the engine applies its chat template). An adapter
is chosen per request by the request's `model`: the adapter's served name (vLLM `--lora-modules NAME=PATH`,
an Ollama model made with ADAPTER), or `models.endpoint.model` for the base model. With
`models.endpoint.adapter_api: llamacpp` (llama.cpp's server) the `model` is always the base, and the request's
`lora` field turns on the one adapter asked for (scale 1, every other 0): the adapters are the files the
server lists at GET /lora-adapters, each named by its file name without `.gguf`. An adapter the engine does
not serve is refused before the request goes out, with how to load it (`explain_missing`). Decoding
settings come from `models`: temperature (0 is greedy), max_new_tokens as `max_tokens`, repetition_penalty
as the engine's own extra field (`models.endpoint.repetition_penalty_field`), never replaced by a different penalty.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Callable, Iterator, Sequence

from assistant.engines.client import EngineClient
from assistant.errors import EngineError, LoragError
from assistant.generation import GenerationStats, Messages
from assistant.settings_pipeline import ModelSettings

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
        self._loras: tuple[float, list[dict[str, Any]] | EngineError] | None = None
        self._listed_lock = threading.Lock()
        self.explain_missing: Callable[[str], str] | None = (
            None  # how to load an adapter it lacks (set by ui/components.py)
        )

    @property
    def last_stats(self) -> GenerationStats:
        return getattr(self._local, "stats", None) or GenerationStats()

    @last_stats.setter
    def last_stats(self, stats: GenerationStats) -> None:
        self._local.stats = stats

    # -- requests -------------------------------------------------------------------------------
    def request_body(
        self, messages: Messages, adapter: str | None = None, max_new_tokens: int | None = None
    ) -> dict[str, Any]:
        s = self.settings
        if adapter:
            self.require(adapter)
        body: dict[str, Any] = {
            "model": adapter or self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens or s.max_new_tokens,
            "temperature": s.temperature,
        }
        if self.endpoint.adapter_api == "llamacpp":
            body["model"] = self.model
            ids = self.lora_ids()
            if (
                ids
            ):  # every adapter named with its scale: one on (or none, for the base), whatever the server's defaults
                on = ids.get(adapter) if adapter else None
                body["lora"] = [{"id": i, "scale": 1.0 if i == on else 0.0} for i in sorted(ids.values())]
        if self.endpoint.repetition_penalty_field != "none":
            body[self.endpoint.repetition_penalty_field] = s.repetition_penalty
        return body

    def stream(
        self, messages: Messages, *, adapter: str | None = None, max_new_tokens: int | None = None
    ) -> Iterator[str]:
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
        self,
        batch: Sequence[Messages],
        *,
        adapters: Sequence[str | None] | None = None,
        max_new_tokens: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Each prompt as its own request, at most `models.endpoint.max_concurrency` at once; each row may
        name a different adapter. The first failure (after retries) cancels the rest and is raised. `on_done(i)`:
        row i's reply came (called on this thread, as the replies come)."""
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
            row = {f: i for i, f in enumerate(futures)}
            pending = set(futures)
            while pending:
                came, pending = wait(pending, return_when=FIRST_COMPLETED)
                failed = [f for f in futures if f in came and f.exception() is not None]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]
                for f in sorted(came, key=row.__getitem__):
                    if on_done is not None:
                        on_done(row[f])
            replies = [f.result() for f in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        texts, prompt, new = [], 0, 0
        for r in replies:
            texts.append((r["choices"][0]["message"].get("content") or "").strip())
            p, n = _usage(r.get("usage"), 0)
            prompt, new = prompt + p, new + n
        finish = [str(r["choices"][0].get("finish_reason") or "stop") for r in replies]
        self.last_stats = GenerationStats(
            prompt, new, 0.0, time.perf_counter() - t0, "length" if "length" in finish else "stop"
        )
        return texts

    # -- what the engine serves -----------------------------------------------------------------
    def listed(self, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The engine's GET /models entries, reused for ADAPTERS_TTL_S seconds; so is a failure, so that an
        engine that is down costs one round of retries, not one per adapter picker or /v1/models call."""
        return self._cached("_listed", self.client.models, refresh)

    def _cached(self, slot: str, fetch: Callable[[], list[dict[str, Any]]], refresh: bool) -> list[dict[str, Any]]:
        with self._listed_lock:
            held = getattr(self, slot)
            if not refresh and held and time.monotonic() - held[0] < ADAPTERS_TTL_S:
                if isinstance(held[1], EngineError):
                    raise held[1]
                return held[1]
        try:
            entries: list[dict[str, Any]] | EngineError = fetch()
        except EngineError as e:
            entries = e
        with self._listed_lock:
            setattr(self, slot, (time.monotonic(), entries))
        if isinstance(entries, EngineError):
            raise entries
        return entries

    def lora_ids(self, *, refresh: bool = False) -> dict[str, int]:
        """llama.cpp's adapters by name (the --lora file's name without .gguf) -> the id a request's `lora` uses."""
        entries = self._cached("_loras", self.client.lora_adapters, refresh)
        return {PurePath(e["path"]).name.removesuffix(".gguf"): int(e["id"]) for e in entries}

    def require(self, adapter: str) -> None:
        """Refuse an adapter the engine does not serve (its list looked at again once), saying how to load it."""
        if adapter in self.adapters() or adapter in self.adapters(refresh=True):
            return
        hint = self.explain_missing(adapter) if self.explain_missing else None
        listed = ", ".join(self.adapters()) or "none"
        raise LoragError(
            f"adapter '{adapter}' is not served by the engine at {self.client.base_url} (it serves: {listed})",
            hint=hint or "load it into the engine under that name",
        )

    def adapters(self, *, refresh: bool = False) -> list[str]:
        """Names the engine serves besides the base model. vLLM says which base a LoRA module belongs to
        (`parent`): then only this base's adapters count. llama.cpp's server: its --lora files' names."""
        if self.endpoint.adapter_api == "llamacpp":
            return sorted(self.lora_ids(refresh=refresh))
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
