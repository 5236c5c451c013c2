"""Inline markup to plain words, shared by the loaders (ingest/) and the training-text cleaner (finetune/)."""

from __future__ import annotations

import re


def rst_inline_text(text: str) -> str:
    """Inline reStructuredText markup to its words: :func:`len` -> len, ``x`` -> x, `a <url>`_ -> a;
    whitespace collapsed."""
    text = re.sub(
        r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^`>]*>)?`|``([^`]*)``|`([^`<]*?)\s*(?:<[^`>]*>)?`_*",
        lambda m: m.group(1) or m.group(2) or m.group(3) or "",
        text,
    )
    return re.sub(r"\s+", " ", text).strip()
