"""Ask: retrieve passages, build the prompt, stream the answer, attach citations (AskService), and the Answer it
gives."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from assistant.abstention import no_context_message
from assistant.answer_label import stream_without_label
from assistant.citations import Citation, cite_words, extract_citations
from assistant.conversation import retrieve_for, routing_vector
from assistant.generation import Generator
from assistant.prompt import build_messages
from assistant.retrieval import Passage, Retrieval, Retriever
from assistant.routing import AUTO, Route, Router
from assistant.sentences import ABBREVIATIONS, sentence_spans


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
    search_query: str = ""  # what was searched: the question, or a follow-up joined with what it follows
    similarity: float | None = None  # the best passage's dense cosine: what `relevant` compares to min_relevance

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "domains": self.domains,
            "relevant": self.relevant,
            "adapter": self.answered_by,
            "route": self.route,
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "finish_reason": self.finish_reason,
            "search_query": self.search_query,
            "similarity": self.shown_similarity,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    @property
    def shown_similarity(self) -> float | None:
        """`similarity` as --json and the API give it (4 places)."""
        return None if self.similarity is None else round(self.similarity, 4)

    @property
    def answered_by(self) -> str | None:
        """What answered: the adapter, "base", or None when nothing relevant was found and no model ran."""
        return (self.adapter or "base") if self.relevant else None

    @property
    def cut(self) -> bool:
        """The answer stopped at the token limit, not where the model ended it."""
        return self.finish_reason == "length"

    def marked_answer(self) -> str:
        """The answer with a [n] marker after the sentence each citation supports: the model's own markers
        as written; an inferred citation's marker added after the sentence that overlaps its passage most."""
        text = self.answer
        by_n = {p.n: p for p in self.passages}
        for c in self.citations:
            if c.how != "overlap" or c.n not in by_n:
                continue
            spans = sentence_spans(text)
            if not spans:
                continue
            have = cite_words(by_n[c.n].text)  # the sentence that matched it, as _overlapped compares them
            # (the answer's source words that no passage holds are in no `have`: leaving them out changes no count)
            start, end = max(spans, key=lambda s: len(cite_words(text[s[0] : s[1]]) & have))
            sentence = text[start:end]
            if sentence.lower().rsplit(None, 1)[-1] not in ABBREVIATIONS:  # "etc." keeps its point
                end = start + len(sentence.rstrip(".!?"))  # the marker before the sentence's closing point
            text = f"{text[:end]} [{c.n}]{text[end:]}"
        return text


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
        query_vec = None
        if choice in (None, AUTO) and domain is None:  # the classifier needs the question's vector
            query_vec = routing_vector(self.retriever, question, r)
        return self.router.route(
            choice=choice, domain=domain, query_vec=query_vec, hit_domains=[p.domain for p in r.passages]
        )

    def stream(
        self,
        question: str,
        domain: str | None = None,
        *,
        history: Sequence[tuple[str, str]] = (),
        adapter: str | None = AUTO,
        retrieval: Retrieval | None = None,
        max_new_tokens: int | None = None,
        top_k: int | None = None,
        on_route: Callable[[Route | None], None] | None = None,
    ) -> Iterator[str | Answer]:
        """`adapter`: 'auto' (route), 'base', or an adapter name. `max_new_tokens`: the answer's limit (None:
        the generator's setting). `top_k`: passages (None: retrieval.top_k). `on_route(route)` is called once
        the adapter is chosen, before the first piece, with None when nothing relevant was found and no model runs
        (the API names what answers in its first chunk)."""
        t0 = time.perf_counter()
        # A follow-up ("and for contractors?") is searched together with the question it follows; every question
        # passes the same relevance check (retrieve_for).
        r = retrieval or retrieve_for(self.retriever, question, domain, history, top_k=top_k)
        t1 = time.perf_counter()
        route = self.choose(question, domain, adapter, r)
        if on_route is not None:
            on_route(route if r.relevant else None)
        timings = dict(r.timings_ms, route_ms=(time.perf_counter() - t1) * 1000)
        timings.setdefault("retrieve_ms", (t1 - t0) * 1000)
        query = r.query or question
        if not r.relevant:
            text = no_context_message(r.domains)
            yield text
            yield Answer(
                question,
                text,
                [],
                r.passages,
                r.domains,
                False,
                route.adapter,
                route.to_dict(),
                timings_ms=timings,
                search_query=query,
                similarity=r.best_dense,
            )
            return
        pieces: list[str] = []
        messages = build_messages(question, r.passages, history)
        reply = self.generator.stream(messages, adapter=route.adapter, max_new_tokens=max_new_tokens)
        for piece in stream_without_label(reply):  # a leading "A:" (the prompt's "Question:" echoed) left out
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
            question,
            text,
            extract_citations(text, r.passages, question),
            r.passages,
            r.domains,
            True,
            route.adapter,
            route.to_dict(),
            timings_ms=timings,
            tokens=stats.new_tokens,
            prompt_tokens=stats.prompt_tokens,
            finish_reason=stats.finish_reason,
            search_query=query,
            similarity=r.best_dense,
        )

    def ask(self, question: str, domain: str | None = None, **kwargs: Any) -> Answer:
        final = None
        for item in self.stream(question, domain, **kwargs):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final
