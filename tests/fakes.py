"""Fake backends for tests (and the model-free runs of the benchmarks): a hashing embedder, a scripted generator."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from assistant.generation import GenerationStats, Messages

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """A fake dense embedder for tests: hashed bag of words (and word bigrams), L2-normalised.

    Texts sharing words get a high cosine, so retrieval behaves sensibly without any model.
    """

    backend = "hashing"  # what the index records (ingest/index_record.py)

    def __init__(self, dim: int = 64, name: str = "hashing-fake"):
        self.dim = dim
        self.name = name

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower())]
        for token in words + [f"{a}_{b}" for a, b in zip(words, words[1:])]:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def token_length(self, text: str) -> int:
        return len(text.split())


class FakeGenerator:
    """Scripted answers for tests: returns `reply(messages)` word by word."""

    def __init__(self, reply: Any = None, name: str = "fake-generator", adapters: Sequence[str] = ()):
        self.reply = reply or (lambda messages: "The answer is in the first passage [1].")
        self.name = name
        self._adapters = list(adapters)
        self.last_stats = GenerationStats()
        self.calls: list[tuple[list[dict[str, str]], str | None]] = []

    def stream(
        self, messages: Messages, *, adapter: str | None = None, max_new_tokens: int | None = None
    ) -> Iterator[str]:
        self.calls.append((list(messages), adapter))
        t0 = time.perf_counter()
        words = str(self.reply(messages)).split(" ")  # a word is a token here
        cut = max_new_tokens is not None and len(words) > max_new_tokens
        words = words[:max_new_tokens] if cut else words
        for i, w in enumerate(words):
            yield w if i == 0 else " " + w
        prompt = sum(len(m.get("content", "").split()) for m in messages)
        self.last_stats = GenerationStats(
            prompt, len(words), 0.0, time.perf_counter() - t0, "length" if cut else "stop"
        )

    def adapters(self) -> list[str]:
        return list(self._adapters)

    def attach(self, names: Sequence[str]) -> None:
        self._adapters += [n for n in names if n not in self._adapters]

    def generate_batch(
        self,
        batch: Sequence[Messages],
        *,
        adapters: Sequence[str | None] | None = None,
        max_new_tokens: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[str]:
        names = list(adapters) if adapters is not None else [None] * len(batch)
        out = []
        for i, (m, a) in enumerate(zip(batch, names)):  # one row after the other: each done as it ends
            out.append("".join(self.stream(m, adapter=a)))
            if on_done is not None:
                on_done(i)
        return out
