"""A reply's leading "A:" / "Answer:" label (small models echo the prompt's "Question:" with one) taken off,
from the whole text and from a stream of pieces alike, so what is streamed is what the answer keeps."""

from __future__ import annotations

import re
from typing import Iterable, Iterator

_LABEL = re.compile(r"\s*(?:A|Answer)\s*:[ \t]*", re.IGNORECASE)
_SPELLINGS = ("a:", "answer:")


def strip_label(text: str) -> str:
    """`text` without a leading "A:" or "Answer:" (any case, with the spaces after it)."""
    m = _LABEL.match(text)
    return text[m.end() :] if m else text


def _may_become_label(head: str) -> bool:
    s = head.lstrip().lower()
    return any(label.startswith(s) for label in _SPELLINGS) or bool(_LABEL.fullmatch(head))


def stream_without_label(pieces: Iterable[str]) -> Iterator[str]:
    """The pieces of a reply, its opening held back only while it may still turn out to be a label (at most
    "Answer:" and the spaces after it), then passed on without it."""
    head = ""
    it = iter(pieces)
    for piece in it:
        head += piece
        if not _may_become_label(head):
            break
    rest = strip_label(head)  # also when the reply ended while it could still be a label
    if rest:
        yield rest
    yield from it
