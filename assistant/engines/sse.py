"""Server-sent events as OpenAI-compatible engines send them: one JSON object per `data:` line."""

from __future__ import annotations

from typing import Iterable, Iterator


def iter_data(lines: Iterable[str]) -> Iterator[str]:
    """The payload of every `data:` line, in order. Comment lines (`: keep-alive`), blank lines and the
    `event:`/`id:`/`retry:` fields are skipped. Each data line is its own payload: OpenAI, vLLM,
    llama.cpp and Ollama put a whole JSON chunk on one line."""
    for line in lines:
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name.strip() != "data":
            continue
        yield value[1:] if value.startswith(" ") else value
