"""A question in a conversation: whether it follows up, what is searched for it, its retrieval with one relevance
check, and the vector it is routed on."""

from __future__ import annotations

import re
import time
from typing import Any, Sequence

from assistant.retrieval import Passage, Retrieval, Retriever
from assistant.sentences import STOP_WORDS, WORD

# words a question is made of whatever it asks about: they say nothing about its topic
_ASKING = STOP_WORDS | set(
    "do does did can could should would will shall may might must i you we my your our me us there here when where why "
    "whom whose many much long often get got have has had not no yes also about if then so but any some all one ones "
    "same than too very just please tell know need want mean means say said".split()
)
# a question that leans on the conversation: starts like a continuation, points back, or names almost nothing
_CONTINUES = re.compile(r"^\s*(and|but|also|so|then|or|what about|how about|what if|why not|why|how come|same)\b", re.I)
_POINTS_BACK = set(
    "it its they them their theirs this that these those he him his she her one ones such same above "
    "former latter".split()
)


def is_follow_up(question: str) -> bool:
    """A question that leans on the conversation: "And for contractors?", "Can they be carried over?", "Why?"."""
    words = WORD.findall(question.lower())
    topic = [w for w in words if w not in _ASKING]
    return bool(_CONTINUES.match(question)) or bool(set(words) & _POINTS_BACK) or len(topic) <= 1


def search_query(question: str, history: Sequence[tuple[str, str]] = ()) -> tuple[str, bool]:
    """(what is searched, whether it is a follow-up): the question as rewritten with its history. A question
    that stands on its own is searched alone, whatever came before; a follow-up is joined with the question it
    follows (itself rewritten the same way, so a chain of follow-ups keeps its subject)."""
    question = question.strip()
    if not history or not is_follow_up(question):
        return question, False
    before, _ = search_query(history[-1][0], history[:-1])
    return f"{before} {question}", True


def _stem(word: str) -> str:
    return word[:5]


def brings_new_topic(question: str, before: str, passages: Sequence[Passage]) -> bool:
    """A follow-up naming at least two things of its own, none of which the earlier question or the retrieved
    passages mention ("and what is the capital of France?" after a question about leave)."""
    own = {_stem(w) for w in WORD.findall(question.lower()) if w not in _ASKING and len(w) > 1}
    if len(own) < 2:
        return False
    seen = {_stem(w) for w in WORD.findall(" ".join([before, *(p.text for p in passages)]).lower())}
    return not (own & seen)


def retrieve_for(
    retriever: Retriever,
    question: str,
    domain: str | None = None,
    history: Sequence[tuple[str, str]] = (),
    *,
    top_k: int | None = None,
) -> Retrieval:
    """Retrieve for a question in a conversation, with one relevance check for first questions and follow-ups
    alike: the question as rewritten with its history (`search_query`) must reach `retrieval.min_relevance`,
    and a follow-up must not bring a topic of its own that nothing retrieved mentions."""
    t0 = time.perf_counter()
    query, follow_up = search_query(question, history)
    r = retriever.retrieve(query, domain, top_k=top_k)
    if follow_up and r.relevant and brings_new_topic(question, query[: -len(question.strip())], r.passages):
        r.relevant = False
    r.query = query
    r.timings_ms["retrieve_ms"] = (time.perf_counter() - t0) * 1000
    return r


def routing_vector(retriever: Retriever, question: str, r: Retrieval) -> Any:
    """The question's dense vector for routing: the one its retrieval searched with when that search was for the
    question itself (one embedding per question); a follow-up, searched joined with what it follows, is routed
    on its own words, so it is embedded alone."""
    if r.query_vec is not None and r.query.strip() == question.strip():
        return r.query_vec
    return retriever.dense.embed_query(question)
