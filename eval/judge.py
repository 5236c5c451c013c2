"""The judge behind Ragas' LLM metrics: a local transformers model or an OpenAI-compatible endpoint.

Both are one function `complete(prompt) -> text`. Ragas asks for structured output (a pydantic
model whose JSON schema is in the prompt); we pull the first JSON value out of the text and
validate it. Output that does not parse raises JudgeParseError, which the metric suite counts as
a failed score for that row, so a weak judge shows up in the report instead of vanishing.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any, Callable

from assistant.json_values import json_values


class JudgeParseError(ValueError):
    """The judge's output is not JSON matching the requested schema."""


def parse_structured(text: str, model: type) -> Any:
    """The first JSON value in `text` that validates as `model` (a pydantic model class)."""
    from pydantic import ValidationError

    fields = list(getattr(model, "model_fields", {}))
    last = "no JSON value found"
    for obj in json_values(text or ""):
        if isinstance(obj, list) and len(fields) == 1:
            obj = {fields[0]: obj}  # a bare list for a one-list-field schema
        try:
            return model.model_validate(obj)
        except ValidationError as e:
            last = f"JSON does not match the schema: {e.errors()[0]['loc']} {e.errors()[0]['msg']}"
    snippet = (text or "").strip().replace("\n", " ")[:80]
    raise JudgeParseError(f"{model.__name__}: {last} (output began {snippet!r})")


class Judge:
    """A completion function plus its identity. `ragas_llm()` wraps it for Ragas' collections metrics."""

    def __init__(
        self,
        complete: Callable[[str], str],
        *,
        name: str,
        kind: str = "custom",
        concurrency: int = 1,
        strictness: int = 3,
    ):
        self._complete = complete
        self.name = name
        self.kind = kind
        self.concurrency = concurrency
        self.strictness = strictness  # questions AnswerRelevancy asks the judge to write
        self._lock = threading.Lock() if concurrency <= 1 else None
        self.calls = 0
        self.parse_failures: Counter[str] = Counter()

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "strictness": self.strictness}

    def complete(self, prompt: str) -> str:
        self.calls += 1
        if self._lock is None:
            return self._complete(prompt)
        with self._lock:
            return self._complete(prompt)

    def structured(self, prompt: str, model: type) -> Any:
        text = self.complete(prompt)
        try:
            return parse_structured(text, model)
        except JudgeParseError:
            self.parse_failures[model.__name__] += 1
            raise

    def ragas_llm(self) -> Any:
        from eval.ragas_compat import ragas_modules

        base = ragas_modules().InstructorBaseRagasLLM
        judge = self

        class JudgeLLM(base):  # type: ignore[misc,valid-type]
            def generate(self, prompt: str, response_model: Any) -> Any:
                return judge.structured(prompt, response_model)

            async def agenerate(self, prompt: str, response_model: Any) -> Any:
                return await asyncio.to_thread(judge.structured, prompt, response_model)

        return JudgeLLM()


def local_judge(generator: Any, *, name: str, max_new_tokens: int = 512) -> Judge:
    """A Generator (assistant.generation) as the judge: the prompt as one user message, greedy."""

    def complete(prompt: str) -> str:
        return generator.generate_batch([[{"role": "user", "content": prompt}]], max_new_tokens=max_new_tokens)[0]

    return Judge(complete, name=name, kind="local", concurrency=1)


def openai_judge(
    base_url: str,
    model: str,
    api_key: Any = None,
    *,
    max_tokens: int = 1024,
    concurrency: int = 4,
    limits: Any = None,
    client: Any = None,
) -> Judge:
    """Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, OpenAI ...), through the engine
    client (assistant/engines/client.py): timeouts, retries with backoff and errors as for generation.
    `api_key`: None reads $OPENAI_API_KEY when used. `limits`: EndpointSettings whose timeouts and retries
    apply (default: its defaults). `client`: an httpx.Client to send through (tests: a mock transport)."""
    from assistant.engines.client import EngineClient
    from assistant.settings_pipeline import EndpointSettings

    lim = limits or EndpointSettings()
    engine = EngineClient(
        base_url,
        api_key=api_key,
        connect_timeout_s=lim.connect_timeout_s,
        read_timeout_s=lim.read_timeout_s,
        total_timeout_s=lim.total_timeout_s,
        max_retries=lim.max_retries,
        retry_backoff_s=lim.retry_backoff_s,
        max_concurrency=concurrency,
        label="judge endpoint",
        setting="judge",
        http=client,
    )

    def complete(prompt: str) -> str:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        return engine.chat(body)["choices"][0]["message"].get("content") or ""

    return Judge(complete, name=f"{model}@{base_url}", kind="openai", concurrency=concurrency)


def judge_endpoint(settings: Any, url: str | None = None) -> tuple[str, Any] | None:
    """(base_url, api_key) of the judge's endpoint: `url` (--judge-url), judge.base_url, or, with neither,
    the engine of models.endpoint (the judge is then `judge.model` on that engine). None: a local judge."""
    cfg, ep = settings.judge, settings.models.endpoint
    base = (url or cfg.base_url or ep.base_url or "").rstrip("/")
    if not base:
        return None
    key = cfg.api_key if cfg.api_key is not None else (ep.api_key if base == ep.base_url else None)
    return base, key


def check_judge(judge: Judge) -> None:
    """One tiny call before a long run, so a wrong URL or key fails at once with a clear message."""
    judge.complete('Reply with the JSON object {"ok": true} and nothing else.')
