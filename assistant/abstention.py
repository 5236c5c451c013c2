"""The replies that say the documents do not hold the answer: the prompt's fixed one, and the one given without
running a model when nothing relevant was found."""

from __future__ import annotations

from typing import Sequence

from assistant.prompt import NO_ANSWER

# the reply when no passage reaches retrieval.min_relevance (no model runs); `where` names the domain(s) searched
NO_CONTEXT = "I found nothing relevant to this question in the {where}, so I cannot answer it from the documents."
_NO_CONTEXT_PARTS = tuple(part.lower().rstrip(".") for part in NO_CONTEXT.split("{where}"))


def is_abstention(answer: str) -> bool:
    """The answer says the documents do not contain it: the prompt's fixed reply, or the one given without running a
    model when nothing relevant was found (no_context_message)."""
    text = answer.lower()
    if NO_ANSWER.lower().rstrip(".") in text:
        return True
    head, tail = _NO_CONTEXT_PARTS
    at = text.find(head)
    return at >= 0 and tail in text[at + len(head) :]


def no_context_message(domains: Sequence[str]) -> str:
    where = f"domain '{domains[0]}'" if len(domains) == 1 else f"domains {', '.join(domains)}"
    return NO_CONTEXT.format(where=where)
