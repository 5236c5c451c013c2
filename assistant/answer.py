"""Ask: retrieve passages, build the prompt, stream the answer, attach citations."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

from assistant.answer_label import stream_without_label
from assistant.generation import Generator
from assistant.passage_label import passage_label
from assistant.prompt import NO_ANSWER, build_messages
from assistant.retrieval import Passage, Retrieval, Retriever
from assistant.routing import AUTO, Route, Router
from assistant.sentences import (
    ABBREVIATIONS,
    CITE,
    STOP_WORDS,
    WORD,
    content_words,
    sentence_spans,
    sentences,
    supporting_sentence,
)

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
QUOTE_MIN_WORDS = 4  # an answer sentence whose content words a passage nearly all holds cites it (a quote)
QUOTE_SHARE = 0.8
# words (as lemmas) by which an answer points to what it read rather than says what that holds: "The document
# recommends ...", "According to the passage, ...", "The text states ...". Citation matching leaves them out of
# the answer's words when no passage it may cite holds them (then they only frame the sentence); one that a passage
# holds is content ("Each state must file ...", "a source package", "by text") and is compared like any other word.
# ("according" is the verb "accord" to the lemmatizer.)
_SOURCE_WORDS = set("document passage text source context excerpt accord state say mention recommend suggest".split())
_LEMMA_POS = ("VERB", "NOUN", "ADJ", "ADV")  # a verb's lemma first: "leaves" meets "leave", not "leaf"


@dataclass
class Citation:
    n: int
    ref: str
    source: str
    section: str
    page: int | None
    doc_id: str
    how: str  # "marker": the answer cites [n]; "overlap": inferred from shared words
    quote: str = ""  # the passage's sentence that supports the answer best (shown highlighted)
    label: str = (
        ""  # short, readable: "leave-policy.md › Carrying leave over", "codes.csv › row 3", "travel.pdf › p. 2"
    )

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
            have = _cite_words(by_n[c.n].text)  # the sentence that matched it, as _overlapped compares them
            # (the answer's source words that no passage holds are in no `have`: leaving them out changes no count)
            start, end = max(spans, key=lambda s: len(_cite_words(text[s[0] : s[1]]) & have))
            sentence = text[start:end]
            if sentence.lower().rsplit(None, 1)[-1] not in ABBREVIATIONS:  # "etc." keeps its point
                end = start + len(sentence.rstrip(".!?"))  # the marker before the sentence's closing point
            text = f"{text[:end]} [{c.n}]{text[end:]}"
        return text


# the reply when no passage reaches retrieval.min_relevance (no model runs); `where` names the domain(s) searched
NO_CONTEXT = "I found nothing relevant to this question in the {where}, so I cannot answer it from the documents."
_NO_CONTEXT_PARTS = tuple(part.lower().rstrip(".") for part in NO_CONTEXT.split("{where}"))


@lru_cache(maxsize=1 << 16)
def _lemma(word: str) -> str:
    """One form for a word's inflections ('inspecting', 'inspects' -> 'inspect'; 'days' -> 'day'), by lemminflect's
    English dictionary; a word it does not know (a name, a number, another language's) stays as it is."""
    if not (word.isascii() and word.isalpha()):
        return word
    from lemminflect import getAllLemmas

    forms = getAllLemmas(word)
    for pos in _LEMMA_POS:
        if forms.get(pos):
            return forms[pos][0]
    return next((f[0] for f in forms.values() if f), word)


def _cite_words(text: str) -> set[str]:
    """The words citation matching compares: content words as lemmas."""
    return set(map(_lemma, content_words(text)))


def _answer_words(text: str, held: set[str]) -> set[str]:
    """An answer's cite words less those that point to the source (_SOURCE_WORDS) and that no passage holds
    (`held`: the passages' cite words): "The document recommends ..." frames a sentence; "Each state must ..."
    names what a passage says."""
    return _cite_words(text) - (_SOURCE_WORDS - held)


def warm_lemmas() -> None:
    """Load the lemmatizer's dictionary (a quarter of a second, else paid by the first answer that citation
    matching reads): where a long-running process (`lorag ui`, the keep-warm worker) loads its models."""
    _lemma("inspecting")


def is_abstention(answer: str) -> bool:
    """The answer says the documents do not contain it: the prompt's fixed reply, or the one given without running a
    model when nothing relevant was found (no_context_message)."""
    text = answer.lower()
    if NO_ANSWER.lower().rstrip(".") in text:
        return True
    head, tail = _NO_CONTEXT_PARTS
    at = text.find(head)
    return at >= 0 and tail in text[at + len(head) :]


def support(answer: str, texts: Sequence[str]) -> float:
    """Share of the answer's content words (citation markers aside) found in the given texts."""
    words = content_words(CITE.sub("", answer))
    if not words:
        return 0.0
    have = set().union(*(content_words(t) for t in texts)) if texts else set()
    return len(words & have) / len(words)


def extract_citations(answer: str, passages: Sequence[Passage], question: str = "") -> list[Citation]:
    """Citations the answer makes with [n] markers (only numbers that exist); else the passage the
    answer overlaps most, if it shares enough words. An abstention cites nothing."""
    by_n = {p.n: p for p in passages}
    cited = [by_n[n] for n in dict.fromkeys(int(m) for m in CITE.findall(answer)) if n in by_n]
    how = "marker"
    if not cited and passages and not is_abstention(answer):
        best = _overlapped(CITE.sub("", answer), passages, question)
        if best is not None:
            cited, how = [best], "overlap"
    return [
        Citation(
            p.n,
            p.ref,
            p.source,
            p.section,
            p.page,
            p.doc_id,
            how,
            quote=supporting_sentence(p.text, _cited_part(answer, p.n)) or supporting_sentence(p.text, question),
            label=passage_label(p),
        )
        for p in cited
    ]


def _overlapped(answer: str, passages: Sequence[Passage], question: str = "") -> Passage | None:
    """The passage an answer without markers draws on: the one sharing most of its content words, if it shares
    a third of them (at least 2); else one that holds nearly all the words of one of its sentences (a quote among
    sentences of the model's own, which dilute the answer's share). Either way the passage must also hold what
    the answer adds to the question (a third of its words not in the question, at least one): an answer that
    only rephrases the question shares the passage's words without drawing on it. Words are compared as lemmas,
    the answer's words that point to the source aside unless a passage holds them (_answer_words): "The document
    recommends inspecting ..." quotes "Inspect ..."; "Each state must file ..." cites the passage on states, not the
    same sentence on counties."""
    texts = {p.n: _cite_words(p.text) for p in passages}
    held = set().union(*texts.values())
    asked = _cite_words(question)

    def adds(words: set[str], p: Passage) -> bool:
        new = words - asked
        return len(new & texts[p.n]) >= max(1, len(new) // 3)

    words = _answer_words(answer, held)
    drawn_on = [p for p in passages if adds(words, p)]  # a passage that only echoes the question never wins
    if words and drawn_on:
        best = max(drawn_on, key=lambda p: len(words & texts[p.n]))
        if len(words & texts[best.n]) >= max(2, len(words) // 3):
            return best
    quoted: tuple[float, Passage] | None = None
    for sent in sentences(answer):
        sw = _answer_words(sent, held)
        if len(sw) < QUOTE_MIN_WORDS:
            continue
        fits = [p for p in passages if adds(sw, p)]
        if not fits:
            continue
        p = max(fits, key=lambda p: len(sw & texts[p.n]))
        share = len(sw & texts[p.n]) / len(sw)
        if share >= QUOTE_SHARE and (quoted is None or share > quoted[0]):
            quoted = (share, p)
    return quoted[1] if quoted else None


def _cited_part(answer: str, n: int) -> str:
    """The answer's sentences that carry the marker [n] (all of it when none does)."""
    parts = [s for s in sentences(answer) if f"[{n}]" in s]
    return " ".join(parts) or answer


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


def no_context_message(domains: Sequence[str]) -> str:
    where = f"domain '{domains[0]}'" if len(domains) == 1 else f"domains {', '.join(domains)}"
    return NO_CONTEXT.format(where=where)


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
