"""Inline markup to plain words, shared by the loaders (ingest/), the training-text cleaner (finetune/) and the
citations' quotes (assistant/answer.py)."""

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


_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|__(.+?)__|`([^`]+)`|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def markdown_emphasis_text(text: str) -> str:
    """Markdown's emphasis and code marks taken off a sentence: **bold**, __bold__, *em*, `code` -> their words
    (snake_case and a lone * stay)."""
    return _EMPHASIS.sub(lambda m: next(g for g in m.groups() if g is not None), text)
