"""Ask: retrieve passages, build the prompt, stream the answer, attach citations."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from assistant.generation import Generator
from assistant.prompt import NO_ANSWER, build_messages
from assistant.retrieval import Passage, Retrieval, Retriever
from assistant.routing import AUTO, Route, Router

_CITE = re.compile(r"\[(\d{1,2})\]")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = set("the a an of to in on for and or is are was were be by with as at it this that from what how which who".split())


@dataclass
class Citation:
    n: int
    ref: str
    source: str
    section: str
    page: int | None
    doc_id: str
    how: str  # "marker": the answer cites [n]; "overlap": inferred from shared words

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    passages: list[Passage]
    domains: list[str]
    relevant: bool
    adapter: str | None = None
    route: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    prompt_tokens: int = 0
    finish_reason: str = "stop"  # "length": the answer was cut at the token limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "domains": self.domains,
            "relevant": self.relevant,
            "adapter": (self.adapter or "base") if self.relevant else None,  # what answered; None: no model ran
            "route": self.route,
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "finish_reason": self.finish_reason,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def is_abstention(answer: str) -> bool:
    """The answer says the documents do not contain it (the prompt's fixed reply)."""
    return NO_ANSWER.lower().rstrip(".") in answer.lower()


def support(answer: str, texts: Sequence[str]) -> float:
    """Share of the answer's content words (citation markers aside) found in the given texts."""
    words = _content_words(_CITE.sub("", answer))
    if not words:
        return 0.0
    have = set().union(*(_content_words(t) for t in texts)) if texts else set()
    return len(words & have) / len(words)


def extract_citations(answer: str, passages: Sequence[Passage]) -> list[Citation]:
    """Citations the answer makes with [n] markers (only numbers that exist); else the passage the
    answer overlaps most, if it shares enough words. An abstention cites nothing."""
    by_n = {p.n: p for p in passages}
    cited = [by_n[n] for n in dict.fromkeys(int(m) for m in _CITE.findall(answer)) if n in by_n]
    how = "marker"
    if not cited and passages and NO_ANSWER.lower().rstrip(".") not in answer.lower():
        words = _content_words(_CITE.sub("", answer))
        best = max(passages, key=lambda p: len(words & _content_words(p.text)))
        shared = len(words & _content_words(best.text))
        if words and shared >= max(2, len(words) // 3):
            cited, how = [best], "overlap"
    return [Citation(p.n, p.ref, p.source, p.section, p.page, p.doc_id, how) for p in cited]


def no_context_message(domains: Sequence[str]) -> str:
    where = f"domain '{domains[0]}'" if len(domains) == 1 else f"domains {', '.join(domains)}"
    return f"I found nothing relevant to this question in the {where}, so I cannot answer it from the documents."


class AskService:
    """Retriever + generator; both handed in. `stream` yields text pieces, then the final Answer."""

    def __init__(self, retriever: Retriever, generator: Generator, router: Router | None = None):
        self.retriever = retriever
        self.generator = generator
        self.router = router

    def choose(self, question: str, domain: str | None, choice: str | None, r: Retrieval) -> Route:
        if self.router is None:
            if choice not in (None, AUTO, "base"):
                return Route(choice, domain, f"explicit choice: {choice}")
            return Route(None, domain, "no router: base model")
        query_vec = self.retriever.dense.embed_query(question) if choice in (None, AUTO) and domain is None else None
        return self.router.route(choice=choice, domain=domain, query_vec=query_vec, hit_domains=[p.domain for p in r.passages])

    def stream(
        self,
        question: str,
        domain: str | None = None,
        *,
        history: Sequence[tuple[str, str]] = (),
        adapter: str | None = AUTO,
        retrieval: Retrieval | None = None,
        max_new_tokens: int | None = None,
    ) -> Iterator[str | Answer]:
        """`adapter`: 'auto' (route), 'base', or an adapter name. `max_new_tokens`: the answer's limit (None:
        the generator's setting)."""
        t0 = time.perf_counter()
        # A follow-up ("and for contractors?") is searched together with the previous question.
        query = f"{history[-1][0]} {question}" if history else question
        r = retrieval or self.retriever.retrieve(query, domain)
        t1 = time.perf_counter()
        route = self.choose(question, domain, adapter, r)
        timings = dict(r.timings_ms, retrieve_ms=(t1 - t0) * 1000, route_ms=(time.perf_counter() - t1) * 1000)
        if not r.relevant:
            text = no_context_message(r.domains)
            yield text
            yield Answer(question, text, [], r.passages, r.domains, False, route.adapter, route.to_dict(), timings_ms=timings)
            return
        pieces: list[str] = []
        messages = build_messages(question, r.passages, history)
        for piece in self.generator.stream(messages, adapter=route.adapter, max_new_tokens=max_new_tokens):
            pieces.append(piece)
            yield piece
        stats = self.generator.last_stats
        text = "".join(pieces).strip()
        timings.update(
            first_token_ms=stats.first_token_s * 1000,
            generate_ms=stats.total_s * 1000,
            tokens_per_s=stats.tokens_per_s,
            total_ms=(time.perf_counter() - t0) * 1000,
        )
        yield Answer(
            question, text, extract_citations(text, r.passages), r.passages, r.domains, True, route.adapter,
            route.to_dict(), timings_ms=timings, tokens=stats.new_tokens, prompt_tokens=stats.prompt_tokens,
            finish_reason=stats.finish_reason,
        )  # fmt: skip

    def ask(self, question: str, domain: str | None = None, **kwargs: Any) -> Answer:
        final = None
        for item in self.stream(question, domain, **kwargs):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final
