"""Text generation behind a small interface: a real transformers model, or a fake for tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

from assistant.errors import LoragError
from assistant.settings_pipeline import ModelSettings

Messages = Sequence[dict[str, str]]


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    first_token_s: float = 0.0
    total_s: float = 0.0
    finish_reason: str = "stop"  # "length": cut at max_new_tokens (OpenAI's names)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.total_s if self.total_s > 0 else 0.0


class Generator(Protocol):
    name: str
    last_stats: GenerationStats

    def stream(
        self, messages: Messages, *, adapter: str | None = None, max_new_tokens: int | None = None
    ) -> Iterator[str]: ...

    def generate_batch(
        self,
        batch: Sequence[Messages],
        *,
        adapters: Sequence[str | None] | None = None,
        max_new_tokens: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Answers for the batch; `on_done(i)`, once per row, as soon as row i's answer is finished (every row by
        the time it returns): what a caller counts its progress by. A generator may leave it out (the caller then
        counts a batch when it returns)."""
        ...

    def adapters(self) -> list[str]: ...


class HFGenerator:
    """A transformers causal LM (optionally a peft model with adapters) streaming token text."""

    def __init__(self, model: Any, tokenizer: Any, settings: ModelSettings, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.name = name or getattr(model.config, "_name_or_path", "model")
        self._local = threading.local()  # stats per calling thread: concurrent requests don't mix

    @property
    def last_stats(self) -> GenerationStats:
        return getattr(self._local, "stats", None) or GenerationStats()

    @last_stats.setter
    def last_stats(self, stats: GenerationStats) -> None:
        self._local.stats = stats

    def adapters(self) -> list[str]:
        from assistant.adapters import adapter_names

        return adapter_names(self.model)

    def _adapter_kwargs(self, names: Sequence[str | None]) -> dict[str, Any]:
        """peft picks the adapter per row; a plain model takes no adapter argument."""
        loaded = self.adapters()
        if not loaded:
            unknown = [n for n in names if n]
            if unknown:
                raise LoragError(f"adapter '{unknown[0]}' is not loaded (no adapters are attached)")
            return {}
        from assistant.adapters import BASE

        for n in names:
            if n and n not in loaded:
                raise LoragError(f"adapter '{n}' is not loaded", hint=f"loaded: {', '.join(loaded)}")
        return {"adapter_names": [n or BASE for n in names]}

    def encode(self, messages: Messages) -> dict[str, Any]:
        enc = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.model.device) for k, v in enc.items()}

    def generation_kwargs(self, max_new_tokens: int | None = None) -> dict[str, Any]:
        s = self.settings
        kw: dict[str, Any] = {
            "max_new_tokens": max_new_tokens or s.max_new_tokens,
            "repetition_penalty": s.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if s.temperature > 0:
            kw.update(do_sample=True, temperature=s.temperature)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def stream(
        self, messages: Messages, *, adapter: str | None = None, max_new_tokens: int | None = None
    ) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self.encode(messages)
        extra = self._adapter_kwargs([adapter])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stats = GenerationStats(prompt_tokens=int(inputs["input_ids"].shape[1]))
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["out"] = self.model.generate(
                        **inputs, streamer=streamer, **extra, **self.generation_kwargs(max_new_tokens)
                    )
            except BaseException as e:  # surface errors from the worker thread to the caller
                result["error"] = e
                streamer.end()

        t0 = time.perf_counter()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        for text in streamer:
            if not stats.first_token_s:
                stats.first_token_s = time.perf_counter() - t0
            if text:
                yield text
        worker.join()
        if "error" in result:
            raise result["error"]
        stats.total_s = time.perf_counter() - t0
        stats.new_tokens = int(result["out"].shape[1] - inputs["input_ids"].shape[1])
        last = int(result["out"][0, -1]) if stats.new_tokens else None
        eos = self.model.generation_config.eos_token_id
        ended = last in (eos if isinstance(eos, list) else [eos])
        if stats.new_tokens >= self.generation_kwargs(max_new_tokens)["max_new_tokens"] and not ended:
            stats.finish_reason = "length"
        self.last_stats = stats

    def generate_batch(
        self,
        batch: Sequence[Messages],
        *,
        adapters: Sequence[str | None] | None = None,
        max_new_tokens: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Several prompts in one left-padded batch; each row may use a different adapter. `on_done(i)`: row i has
        ended (its end-of-sequence token came; a row cut at the token limit ends with the batch)."""
        import torch

        if not batch:
            return []
        names = list(adapters) if adapters is not None else [None] * len(batch)
        if len(names) != len(batch):
            raise ValueError("adapters must match the batch length")
        texts = [self.tokenizer.apply_chat_template(list(m), add_generation_prompt=True, tokenize=False) for m in batch]
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            self.tokenizer.padding_side = side
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        extra: dict[str, Any] = {}
        watch = None
        if on_done is not None:
            watch = _rows_ended(enc["input_ids"].shape[1], self.model.generation_config.eos_token_id, on_done)
            if watch is not None:
                from transformers import StoppingCriteriaList

                extra["stopping_criteria"] = StoppingCriteriaList([watch])
        t0 = time.perf_counter()
        with torch.inference_mode():
            kw = {**self._adapter_kwargs(names), **self.generation_kwargs(max_new_tokens), **extra}
            out = self.model.generate(**enc, **kw)
        new = out[:, enc["input_ids"].shape[1] :]
        n_new = int((new != self.tokenizer.pad_token_id).sum())
        self.last_stats = GenerationStats(int(enc["input_ids"].numel()), n_new, 0.0, time.perf_counter() - t0)
        texts = [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        if on_done is not None:
            told = watch.told if watch is not None else set()
            for i in range(len(texts)):  # the rows cut at the token limit (or all, with no end token known)
                if i not in told:
                    on_done(i)
        return texts


def _rows_ended(prompt_len: int, eos: int | list[int] | None, on_done: Callable[[int], None]) -> Any:
    """A stopping criterion that stops nothing: it calls `on_done(i)` once a row of the batch has produced an end
    token (looked at every token on a CPU, every 8th on an accelerator, where a look waits for the device); None
    when no end token is known."""
    import torch
    from transformers import StoppingCriteria

    ids = [eos] if isinstance(eos, int) else [int(e) for e in eos or []]
    if not ids:
        return None

    class RowsEnded(StoppingCriteria):
        def __init__(self) -> None:
            self.told: set[int] = set()
            self.ends: Any = None

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            rows, length = input_ids.shape
            keep = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
            if len(self.told) == rows or (input_ids.device.type != "cpu" and (length - prompt_len) % 8):
                return keep
            if self.ends is None:
                self.ends = torch.tensor(ids, device=input_ids.device)
            ended = torch.isin(input_ids[:, prompt_len:], self.ends).any(dim=1).tolist()
            for i, e in enumerate(ended):
                if e and i not in self.told:
                    self.told.add(i)
                    on_done(i)
            return keep

    return RowsEnded()
