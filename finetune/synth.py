"""Synthetic Q&A from a domain's indexed chunks, with filters and a report of what was dropped and why.

Writers: the configured generator writes a question and answer for a chunk ('model'); a heading
writer asks about the section a chunk opens and answers with its opening sentences ('heading',
extractive, explanatory answers); a cloze writer blanks a fact-bearing span of one sentence
('cloze'). Small models write poor questions, so writers combine with '+' in order of preference:
'model+cloze' falls back to a cloze pair for a chunk whose model pair was dropped.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from assistant.generation import Generator
from assistant.store import Hit
from finetune.config import SynthConfig
from ingest.loaders import rst_inline_text

QA_SYSTEM = (
    "You write one exam question about a passage and its short answer taken from the passage. "
    "Reply in exactly this format:\nQuestion: <a question ending with ?>\nAnswer: <a short answer copied from the passage>"
)

_WORD = re.compile(r"[a-z0-9]+")
_STOP = set(
    "the a an of to in on for and or is are was were be been by with as at it its this that these those from "
    "what how which who whom when where why does do did can could should would will may must not no your you "
    "their there here than then into per about after before if any all each".split()
)
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_FACT = re.compile(  # a code (HR-12) or a number with an optional unit; the space belongs to the unit
    r"\b(?:[A-Z]{1,4}-?\d[\w-]*|\d+(?:[.,]\d+)?(?:\s?(?:%|percent|days?|hours?|minutes?|seconds?|weeks?|months?|years?|"
    r"euros?|EUR|USD|dollars?|nm|mm|cm|kg|g|°C|V|W|GB|MB|characters?|times?)\b)?)(?!\w)"
)


@dataclass
class SynthPair:
    question: str
    answer: str
    chunk_id: str
    source: str
    writer: str


@dataclass
class SynthReport:
    chunks: int = 0
    kept: int = 0
    by_writer: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"chunks": self.chunks, "kept": self.kept, "by_writer": dict(self.by_writer), "dropped": dict(self.dropped),
                "notes": list(self.notes)}  # fmt: skip


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def support(answer: str, passage: str) -> float:
    """Share of the answer's content words found in the passage."""
    words = content_words(answer)
    if not words:
        return 0.0
    have = set(_WORD.findall(passage.lower()))
    return sum(w in have for w in words) / len(words)


def parse_qa(text: str) -> tuple[str, str] | None:
    q = re.search(r"question\s*:\s*(.+?)(?:\n|answer\s*:|$)", text, re.I | re.S)
    a = re.search(r"answer\s*:\s*(.+)", text, re.I | re.S)
    if not q or not a:
        return None
    answer = a.group(1).strip().split("\n")[0].strip()
    return q.group(1).strip(), answer


def check_pair(question: str, answer: str, passage: str, cfg: SynthConfig) -> str | None:
    """None when the pair is kept, else the reason it is dropped."""
    qw, aw = len(question.split()), len(answer.split())
    if not question.endswith("?"):
        return "question does not end with '?'"
    if not 4 <= qw <= 40:
        return "question length out of bounds (4-40 words)"
    if not 1 <= aw <= 40:
        return "answer length out of bounds (1-40 words)"
    if support(answer, passage) < cfg.min_answer_support:
        return "answer not supported by the passage"
    if re.search(r"(?<!\w)" + re.escape(answer.lower().strip(" .")) + r"(?!\w)", question.lower().replace("____", " ")):
        return "question contains its answer"
    if not set(content_words(question)) & set(content_words(passage)):
        return "question unrelated to the passage"
    return None


def _standalone(sentence: str, m: re.Match) -> bool:
    """Not a piece of a longer token: a phone number (+1 555 0177), a time (07:30), a date (1/2), a path."""
    before, after = sentence[: m.start()], sentence[m.end() :]
    return not (before[-1:] in ("+", ":", "/", ".", "-") or re.search(r"\d\s?$", before) or re.match(r"\s?\d|[:/.,-]\d", after))


def _prose_lines(text: str) -> list[str]:
    """The passage's lines without markdown marks or table rows, single-spaced."""
    out = []
    for ln in text.split("\n"):
        if ln.count("|") >= 2:  # a table row reads as a list of cells, not a sentence
            continue
        ln = re.sub(r"[*#`>|]+|(?<!\w)_+|_+(?!\w)", " ", ln)  # markdown marks would leak into questions
        ln = re.sub(r"\s+([,.;:!?)])", r"\1", re.sub(r"[ \t]+", " ", ln))  # no double spaces, no space before punctuation
        out.append(ln.strip(" -"))
    return out


def cloze_pair(text: str, rng: random.Random) -> tuple[str, str] | None:
    """Blank one fact (a number with its unit, or a code) in a sentence of the passage."""
    sentences = [s.strip() for ln in _prose_lines(text) for s in _SENT.split(ln) if 6 <= len(s.split()) <= 30]
    candidates = [(s, m) for s in sentences for m in _FACT.finditer(s) if m.group(0).strip() and _standalone(s, m)]
    if not candidates:
        return None
    sentence, m = rng.choice(candidates)
    blanked = (sentence[: m.start()] + "____" + sentence[m.end() :]).rstrip(" .")
    return f"Fill in the blank: {blanked}. What goes in the blank?", m.group(0).strip()


def writer_names(spec: str) -> list[str]:
    return [w.strip() for w in spec.split("+") if w.strip()]


def uses_model(spec: str) -> bool:
    return "model" in writer_names(spec)


def heading_pair(text: str, heading: str) -> tuple[str, str] | None:
    """For a chunk that opens a section: 'What does the documentation say about <title>?' answered by
    the section's opening sentences (12-40 words, verbatim)."""
    title = (heading.split(" > ")[-1] if heading else "").strip()
    body = text.strip()
    if not title or not body.startswith(title):
        return None
    lines = [ln.strip() for ln in body[len(title) :].split("\n")]
    lines = [ln for ln in lines if ln and not re.fullmatch(r"[=\-~^\"'`#*+:.<>_]{3,}", ln)]
    para: list[str] = []
    for ln in lines:
        if ln.startswith(("..", ":", ">>>", "#", "|", "-", "*", "+")) or ln.endswith("::"):
            if para:
                break
            continue
        para.append(ln)
    plain = rst_inline_text(" ".join(para))
    answer = ""
    for sent in _SENT.split(plain.strip()):
        if len((answer + " " + sent).split()) > 40:
            break
        answer = f"{answer} {sent}".strip()
        if len(answer.split()) >= 12:
            break
    if len(answer.split()) < 12:
        return None
    t = rst_inline_text(title).rstrip(" .:")
    return (t if t.endswith("?") else f"What does the documentation say about {t}?"), answer


def _qa_messages(chunk: Hit) -> list[dict[str, str]]:
    section = chunk.payload.get("section") or ""
    return [
        {"role": "system", "content": QA_SYSTEM},
        {"role": "user", "content": f"Passage ({section}):\n{chunk.text}"},
    ]


def synthesize(
    chunks: Sequence[Hit],
    generator: Generator | None,
    cfg: SynthConfig,
    *,
    avoid_questions: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SynthPair], SynthReport]:
    """Write, filter and dedupe Q&A pairs; `avoid_questions` (held-out ones) are never produced."""
    rng = random.Random(cfg.seed)
    picked = list(chunks)
    rng.shuffle(picked)
    picked = picked[: cfg.max_chunks]
    report = SynthReport(chunks=len(picked))
    seen = {_norm(q) for q in avoid_questions}
    heldout = set(seen)
    pairs: list[SynthPair] = []

    def keep(q: str, a: str, c: Hit, writer: str) -> bool:
        reason = check_pair(q, a, c.text, cfg)
        key = _norm(q)
        if reason is None and key in heldout:
            reason = "same as a held-out question"
        elif reason is None and key in seen:
            reason = "duplicate question"
        if reason:
            report.dropped[f"{writer}: {reason}"] += 1
            return False
        seen.add(key)
        pairs.append(SynthPair(q, a, c.id, c.payload.get("display", ""), writer))
        report.by_writer[writer] += 1
        return True

    writers = writer_names(cfg.writer)
    use_model = "model" in writers and generator is not None
    for start in range(0, len(picked), cfg.batch_size):
        batch = picked[start : start + cfg.batch_size]
        outputs: list[str | None] = [None] * len(batch)
        if use_model:
            outputs = list(generator.generate_batch([_qa_messages(c) for c in batch], max_new_tokens=cfg.max_new_tokens))
        for chunk, out in zip(batch, outputs):
            for writer in writers:  # in order of preference, until one pair is kept
                if writer == "model":
                    if out is None:
                        continue
                    pair, why = parse_qa(out), "output not in 'Question:/Answer:' form"
                elif writer == "heading":
                    pair, why = heading_pair(chunk.text, chunk.payload.get("section") or ""), "chunk does not open a section with prose"
                else:
                    pair, why = cloze_pair(chunk.text, rng), "no fact-bearing sentence"
                if pair is None:
                    report.dropped[f"{writer}: {why}"] += 1
                elif keep(pair[0], pair[1], chunk, writer):
                    break
        tried = start + len(batch)
        if use_model and cfg.model_probe and tried >= cfg.model_probe and not report.by_writer["model"] and tried < len(picked):
            use_model = False  # generating costs seconds per chunk on a CPU: not for a model that never passes the filters
            report.notes.append(f"model writer stopped after {tried} chunks without one pair kept; "
                                f"the other writers did the remaining {len(picked) - tried}")  # fmt: skip
        if progress:
            progress(tried, len(picked))
    report.kept = len(pairs)
    return pairs, report


def _norm(q: str) -> str:
    return " ".join(_WORD.findall(q.lower()))
