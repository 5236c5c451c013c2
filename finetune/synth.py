"""Synthetic Q&A from a domain's indexed chunks: writers, filters, and a report of what was kept,
what was dropped and why.

Writers (finetune/writers/ offline, finetune/teacher.py with a model), joined with '+' in order of
preference: for each chunk every writer offers candidates, and up to `pairs_per_chunk` that pass the
filters are kept, earlier writers first.
  section      questions from section titles and definition-list terms, answered by their opening prose
  sentence     definition and procedure sentences ("X is ...", "To do X, ...")
  teacher      a teacher model writes several pairs per chunk (JSON); alias: model
  answer_first a model writes the question a passage sentence answers
  cloze        a fact of a sentence blanked (a test of recall, not a user's question: not a default)
'auto' is teacher+section+sentence when a teacher is configured, else section+sentence.

Filters here: the question's form and length, an answer of whole words of the chunk (support), no
question that contains its answer or leans on its context ("this section"), dedupe. The round trip
(the question must retrieve its chunk) needs the retriever: finetune/raft_items.py applies it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from assistant.errors import LoragError
from assistant.store import Hit
from finetune.config import SynthConfig
from finetune.teacher import (
    TeacherFailed,
    answer_first_messages,
    generate_rows,
    parse_pairs,
    parse_question,
    teacher_messages,
)
from finetune.text import META, blocks, is_sentence, split_sentences
from finetune.writers.candidate import Candidate, qtype
from finetune.writers.cloze import cloze_candidates
from finetune.writers.section import section_candidates
from finetune.writers.sentence import sentence_candidates

_WORD = re.compile(r"[a-z0-9]+")
_STOP = set(
    "the a an of to in on for and or is are was were be been by with as at it its this that these those from "
    "what how which who whom when where why does do did can could should would will may must not no your you "
    "their there here than then into per about after before if any all each".split()
)
_CONTEXTUAL = re.compile(
    r"\b(?:this|these|those|above|below|following|previous|former|latter|aforementioned)\b|"
    r"\bthe (?:passage|text|document|section|chapter|example|table|figure)\b|\b(?:it|them|they)\?$",
    re.I,
)
_MARKUP = re.compile(
    r"`|:\w+:`|\]\(|</\w+>|<\w+\s+\w+=|&[a-z]+;|\|\s|\*\*|\.\. \w+::"
)  # <commit> placeholders are words
ALIASES = {"model": "teacher", "heading": "section"}
MODEL_WRITERS = ("teacher", "answer_first")


@dataclass
class SynthPair:
    question: str
    answer: str
    chunk_id: str
    source: str
    writer: str
    qtype: str = "other"


@dataclass
class SynthReport:
    chunks: int = 0
    kept: int = 0
    candidates: int = 0
    by_writer: Counter = field(default_factory=Counter)
    by_qtype: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    teacher: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunks": self.chunks,
            "candidates": self.candidates,
            "kept": self.kept,
            "by_writer": dict(self.by_writer),
            "by_qtype": dict(self.by_qtype),
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
            "teacher": self.teacher,
        }


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def support(answer: str, passage: str) -> float:
    """Share of the answer's content words found in the passage."""
    words = content_words(answer)
    if not words:
        return 0.0
    have = set(_WORD.findall(passage.lower()))
    return sum(w in have for w in words) / len(words)


def writer_names(spec: str, *, teacher_configured: bool = False) -> list[str]:
    if spec.strip() == "auto":
        return ["teacher", "section", "sentence"] if teacher_configured else ["section", "sentence"]
    return [ALIASES.get(w.strip(), w.strip()) for w in spec.split("+") if w.strip()]


def uses_model(spec: str, *, teacher_configured: bool = False) -> bool:
    return any(w in MODEL_WRITERS for w in writer_names(spec, teacher_configured=teacher_configured))


def check_pair(question: str, answer: str, passage: str, cfg: SynthConfig) -> str | None:
    """None when the pair is kept, else the reason it is dropped."""
    qw, aw = len(question.split()), len(answer.split())
    if not question.endswith("?"):
        return "question does not end with '?'"
    if not 4 <= qw <= 40:
        return "question length out of bounds (4-40 words)"
    if not cfg.min_answer_words <= aw <= cfg.max_answer_words:
        return f"answer length out of bounds ({cfg.min_answer_words}-{cfg.max_answer_words} words)"
    if any(question.count(a) != question.count(b) for a, b in ("()", "[]", "{}")) or question.count('"') % 2:
        return "question is cut off (unbalanced brackets or quotes)"
    if _MARKUP.search(question) or _MARKUP.search(answer):
        return "markup left in the text"
    if _CONTEXTUAL.search(question):
        return "question leans on its context (this, above, the passage...)"
    if support(answer, passage) < cfg.min_answer_support:
        return "answer not supported by the passage"
    if re.search(r"(?<!\w)" + re.escape(answer.lower().strip(" .")) + r"(?!\w)", question.lower().replace("____", " ")):
        return "question contains its answer"
    if not set(content_words(question)) & set(content_words(passage)):
        return "question unrelated to the passage"
    if not set(content_words(answer)) - set(content_words(question)):
        return "answer only restates the question"
    return None


def _norm(q: str) -> str:
    return " ".join(_WORD.findall(q.lower()))


def _answer_sentences(text: str, limit: int) -> list[str]:
    """Prose sentences worth asking about (for answer_first): whole, 8-40 words, not about the page."""
    out = [
        s
        for b in blocks(text)
        if b.kind == "prose"
        for s in split_sentences(b.text)
        if is_sentence(s, min_words=8, max_words=40) and not META.match(s)
    ]
    return out[:limit]


class _Writers:
    """Runs the configured writers over a batch of chunks (model writers in one batched call each)."""

    def __init__(self, cfg: SynthConfig, names: list[str], teacher: Any, rng: random.Random, report: SynthReport):
        self.cfg, self.names, self.teacher, self.rng, self.report = cfg, names, teacher, rng, report
        self.failures = 0
        self.calls = 0
        self.last_error: Exception | None = None

    def _model_replies(self, prompts: list[list[dict[str, str]]], max_new_tokens: int) -> list[str | Exception]:
        self.calls += len(prompts)
        replies = generate_rows(self.teacher, prompts, max_new_tokens)
        for r in replies:
            if isinstance(r, Exception):
                self.failures += 1
                self.last_error = r
        return replies

    def candidates(self, batch: Sequence[Hit]) -> list[list[Candidate]]:
        out: list[list[Candidate]] = [[] for _ in batch]
        for name in self.names:
            if name == "teacher":
                self._teacher(batch, out)
            elif name == "answer_first":
                self._answer_first(batch, out)
            else:
                for i, c in enumerate(batch):
                    found = self._offline(name, c)
                    if not found:
                        self.report.dropped[f"{name}: {NOTHING[name]}"] += 1
                    out[i] += found
        return out

    def _offline(self, name: str, c: Hit) -> list[Candidate]:
        if name == "section":
            return section_candidates(c.text, c.payload.get("section") or "", self.rng)
        if name == "sentence":
            return sentence_candidates(c.text, self.rng, limit=self.cfg.pairs_per_chunk)
        return cloze_candidates(c.text, self.rng)

    def _teacher(self, batch: Sequence[Hit], out: list[list[Candidate]]) -> None:
        n = self.cfg.pairs_per_chunk
        prompts = [
            teacher_messages(c.text, c.payload.get("display", ""), c.payload.get("section") or "", n) for c in batch
        ]
        for i, reply in enumerate(self._model_replies(prompts, self.cfg.max_new_tokens)):
            if isinstance(reply, Exception):
                self.report.dropped[f"teacher: request failed ({type(reply).__name__})"] += 1
                continue
            pairs = parse_pairs(reply)
            if not pairs:
                self.report.dropped["teacher: reply is neither JSON pairs nor Question:/Answer: lines"] += 1
            out[i] += [Candidate(q, a, "teacher", qtype(q)) for q, a in pairs[: 2 * n]]

    def _answer_first(self, batch: Sequence[Hit], out: list[list[Candidate]]) -> None:
        jobs = [(i, s) for i, c in enumerate(batch) for s in _answer_sentences(c.text, 1)]
        for i in range(len(batch)):
            if not any(j == i for j, _ in jobs):
                self.report.dropped["answer_first: no prose sentence of 8-40 words"] += 1
        prompts = [answer_first_messages(s, batch[i].payload.get("section") or "") for i, s in jobs]
        for (i, s), reply in zip(jobs, self._model_replies(prompts, 48)):
            if isinstance(reply, Exception):
                self.report.dropped[f"answer_first: request failed ({type(reply).__name__})"] += 1
                continue
            q = parse_question(reply)
            if q is None:
                self.report.dropped["answer_first: reply has no question"] += 1
                continue
            out[i].append(Candidate(q, s, "answer_first", qtype(q)))


NOTHING = {
    "section": "chunk opens no section or term with prose",
    "sentence": "no definition or procedure sentence",
    "cloze": "no fact-bearing sentence",
}


def synthesize(
    chunks: Sequence[Hit],
    cfg: SynthConfig,
    *,
    teacher: Any = None,
    avoid_questions: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SynthPair], SynthReport]:
    """Write and filter Q&A pairs, up to `cfg.pairs_per_chunk` per chunk (the round trip later may
    drop some, so up to twice that are kept here, in order of preference); `avoid_questions`
    (held-out ones) are never produced. `teacher`: the generator the model writers use."""
    rng = random.Random(cfg.seed)
    picked = list(chunks)
    rng.shuffle(picked)
    picked = picked[: cfg.max_chunks]
    report = SynthReport(chunks=len(picked), teacher=getattr(teacher, "name", None) if teacher is not None else None)
    names = writer_names(cfg.writer, teacher_configured=bool(cfg.teacher or cfg.teacher_url))
    unknown = [n for n in names if n not in ("section", "sentence", "cloze", *MODEL_WRITERS)]
    if unknown:
        raise LoragError(f"synth.writer: unknown writer(s) {', '.join(unknown)}")
    if any(n in MODEL_WRITERS for n in names) and teacher is None:
        raise LoragError(f"synth.writer '{cfg.writer}' needs a model (teacher or answer_first) but none was given")
    writers = _Writers(cfg, names, teacher, rng, report)
    heldout = {_norm(q) for q in avoid_questions}
    seen: set[str] = set()
    pairs: list[SynthPair] = []
    for start in range(0, len(picked), cfg.batch_size):
        batch = picked[start : start + cfg.batch_size]
        for chunk, cands in zip(batch, writers.candidates(batch)):
            report.candidates += len(cands)
            kept = 0
            for c in cands:
                if kept >= 2 * cfg.pairs_per_chunk:
                    break
                reason = check_pair(c.question, c.answer, chunk.text, cfg)
                key = _norm(c.question)
                if reason is None and key in heldout:
                    reason = "same as a held-out question"
                elif reason is None and key in seen:
                    reason = "duplicate question"
                if reason:
                    report.dropped[f"{c.writer}: {reason}"] += 1
                    continue
                seen.add(key)
                pairs.append(
                    SynthPair(c.question, c.answer, chunk.id, chunk.payload.get("display", ""), c.writer, c.qtype)
                )
                kept += 1
        tried = start + len(batch)
        model_kept = sum(p.writer in MODEL_WRITERS for p in pairs)
        if (
            cfg.model_probe
            and tried >= cfg.model_probe
            and not model_kept
            and tried < len(picked)
            and any(n in MODEL_WRITERS for n in writers.names)
            and writers.failures < writers.calls
        ):
            writers.names = [n for n in writers.names if n not in MODEL_WRITERS]
            report.notes.append(
                f"model writers stopped after {tried} chunks without one pair kept (a model too small to "
                f"follow the format); the other writers did the remaining {len(picked) - tried}"
            )
            if not writers.names:
                break
        if writers.calls and writers.failures == writers.calls and tried >= min(len(picked), cfg.batch_size):
            e = writers.last_error
            why = e.args[0] if isinstance(e, LoragError) and e.args else str(e)
            hint = getattr(e, "hint", None) or "check synth.teacher and synth.teacher_url"
            raise TeacherFailed(
                f"the teacher ({report.teacher}) failed on every request so far: {why}",
                hint=f"{hint}; nothing was written",
            )
        if progress:
            progress(tried, len(picked))
    report.kept = len(pairs)
    return pairs, report
