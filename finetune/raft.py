"""RAFT-style training examples: the serving prompt with the oracle passage among real retriever hard
negatives, or (a share 1-P of the time) without it, where the target says the answer is not there.

Writes <data_dir>/datasets/<domain>/: curated.jsonl, heldout.jsonl (never trains), synthetic.jsonl,
heldout_examples.jsonl, train.jsonl (prompt/completion rows for trl), build.json (counts, the data
report, and why rows were dropped). Nothing is written until every row is built, so a failed build
leaves an earlier training set whole.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.errors import LoragError
from assistant.prompt import NO_ANSWER, build_messages
from assistant.qa import QARecord, write_jsonl
from assistant.retrieval import Passage, Retrieval, Retriever
from assistant.store import Hit, Store
from assistant.store.base import corpus_fingerprint
from finetune.config import TrainConfig
from finetune.data import load_qa, split_qa
from finetune.data_report import build_report
from finetune.general_data import load_general_rows
from finetune.synth import SynthPair, support, synthesize

TokenCounter = Callable[[list[dict[str, str]]], int]  # chat messages (prompt + completion) -> tokens
MIN_DISTRACTOR_WORDS = 8


def _as_passage(hit: Hit, domain: str) -> Passage:
    p = hit.payload
    return Passage(
        0,
        p.get("text", ""),
        p.get("display", ""),
        p.get("section") or "",
        p.get("page"),
        0.0,
        domain,
        p.get("doc_id", ""),
        hit.id,
    )


def _has_body(text: str) -> bool:
    """A heading-only chunk (a title, a lone table row) teaches nothing as a distractor."""
    return len(text.split()) >= MIN_DISTRACTOR_WORDS


def make_example(
    question: str,
    answer: str,
    oracle: Passage | None,
    negatives: Sequence[Passage],
    *,
    k: int,
    include_oracle: bool,
    rng: random.Random,
    count_tokens: TokenCounter | None = None,
    max_tokens: int = 0,
) -> dict[str, Any] | None:
    """One prompt/completion row in the exact serving format. With a token counter, distractors are
    dropped (longest first) until the row fits max_tokens; None when even the fewest passages do not."""
    has_oracle = include_oracle and oracle is not None
    if has_oracle:
        ctx = [oracle] + [n for n in negatives if n.chunk_id != oracle.chunk_id][: k - 1]
    else:
        ctx = [n for n in negatives if oracle is None or n.doc_id != oracle.doc_id][:k]
    rng.shuffle(ctx)
    trimmed = 0
    while True:
        numbered = [dataclasses.replace(p, n=i + 1) for i, p in enumerate(ctx)]
        if has_oracle:
            n = next(p.n for p in numbered if p.chunk_id == oracle.chunk_id)
            target = f"{answer.rstrip()} [{n}]"
        else:
            target = NO_ANSWER
        messages = build_messages(question, numbered)
        completion = [{"role": "assistant", "content": target}]
        if count_tokens is None or count_tokens(messages + completion) <= max_tokens:
            break
        others = [p for p in ctx if not (has_oracle and p.chunk_id == oracle.chunk_id)]
        if len(ctx) <= 1 or not others:
            return None
        ctx.remove(max(others, key=lambda p: len(p.text)))
        trimmed += 1
    return {
        "question": question,
        "answer": answer,
        "target": target,
        "oracle_in_context": has_oracle,
        "distractors_trimmed": trimmed,
        "prompt": messages,
        "completion": completion,
    }


def _heldout_documents(pairs: Sequence[SynthPair], fraction: float, cap: int) -> set[str]:
    """Whole documents whose pairs make the held-out split: a stable choice (by the document's name)
    of about `fraction` of the pairs, at most `cap`, never every document."""
    by_doc = Counter(p.source for p in pairs)
    if len(by_doc) < 2:
        return set()
    order = sorted(by_doc, key=lambda d: hashlib.sha256(f"lorag-heldout-v1|{d}".encode()).hexdigest())
    target = min(cap, max(1, round(fraction * len(pairs))))
    held: set[str] = set()
    n = 0
    for d in order:
        if n >= target or len(held) == len(by_doc) - 1:
            break
        if n + by_doc[d] > cap and held:
            continue
        held.add(d)
        n += by_doc[d]
    return held


def _no_examples_error(domain: str, n_pairs: int, synth_report: Any, n_curated: int, dropped: Counter) -> LoragError:
    why = (
        "; ".join(f"{n} {reason}" for reason, n in (synth_report.dropped + dropped).most_common(8))
        or "no chunk gave one"
    )
    return LoragError(
        f"no training examples could be built for '{domain}': {n_pairs} synthetic pair(s) from "
        f"{synth_report.chunks} chunk(s), {n_curated} curated; dropped: {why}",
        hint="add curated Q&A with --qa, or synthesize from more chunks (--max-chunks), with a teacher "
        "(synth.teacher) or with other writers (--writer); nothing was written",
    )


class TrainingSetBuilder:
    def __init__(
        self,
        store: Store,
        retriever: Retriever,
        teacher: Any,
        cfg: TrainConfig,
        out_dir: Path,
        *,
        count_tokens: TokenCounter | None = None,
    ):
        self.store = store
        self.retriever = retriever
        self.teacher = teacher
        self.cfg = cfg
        self.out = Path(out_dir)
        self.count_tokens = count_tokens

    def _excluded(self, source: str) -> bool:
        return any(fnmatch.fnmatchcase(source, pat) for pat in self.cfg.synth.exclude_sources)

    def _retrievals(self, questions: list[str], k: int) -> list[Retrieval]:
        """Each question's retrieval of the top k + extra passages (one embedding batch), with the assistant's
        relevance verdict (`relevant`: retrieval.min_relevance reached)."""
        extra = 4 + (2 * k if self.cfg.synth.exclude_sources else 0)
        return list(self.retriever.retrieve_many(questions, self.cfg.domain, top_k=k + extra))

    def _retrieve(self, questions: list[str], k: int) -> list[list[Passage]]:
        """The top k + extra passages for each question."""
        return [list(r.passages) for r in self._retrievals(questions, k)]

    def _negatives(self, passages: list[Passage], exclude_doc: str | None) -> list[Passage]:
        """Real retriever hard negatives: minus the oracle's document, excluded sources and bodiless chunks."""
        return [p for p in passages if p.doc_id != exclude_doc and not self._excluded(p.source) and _has_body(p.text)]

    def _oracle_for(self, rec: QARecord, chunks_by_source: dict[str, list[Hit]]) -> Passage | None:
        """The chunk of a source document that best supports the reference answer."""
        candidates = [h for s in rec.sources for h in chunks_by_source.get(s, [])]
        if not candidates:
            candidates = [h for hs in chunks_by_source.values() for h in hs]
        best = max(candidates, key=lambda h: support(rec.answer, h.text), default=None)
        if best is None or support(rec.answer, best.text) < 0.5:
            return None
        return _as_passage(best, self.cfg.domain)

    def _round_trip(
        self, pairs: list[SynthPair], retrieved: list[Retrieval], k: int, dropped: Counter
    ) -> tuple[list[tuple[SynthPair, list[Passage], int]], int]:
        """The pairs kept (each with its retrieved passages and its chunk's rank) and how many passed: found their
        chunk in the top k and cleared the relevance bar the assistant answers by (else it replies "nothing
        relevant" and runs no model)."""
        s = self.cfg.synth
        kept: list[tuple[SynthPair, list[Passage], int]] = []
        per_chunk: Counter = Counter()
        passed = 0
        for p, r in zip(pairs, retrieved):
            passages = list(r.passages)
            rank = next((i for i, x in enumerate(passages) if x.chunk_id == p.chunk_id), None)
            if r.relevant and rank is not None and rank < k:
                passed += 1
            elif s.round_trip:
                why = (
                    f"its chunk is not in the question's top {k}"
                    if r.relevant
                    else "under retrieval.min_relevance (the assistant would find nothing relevant)"
                )
                dropped[f"{p.writer}: round trip: {why}"] += 1
                continue
            if per_chunk[p.chunk_id] >= s.pairs_per_chunk:
                continue  # a spare candidate of a chunk that already has its pairs
            per_chunk[p.chunk_id] += 1
            kept.append((p, passages, rank if rank is not None else k + 99))
        return kept, passed

    def _heldout_items(
        self,
        curated: list[QARecord],
        held_qa: list[QARecord],
        held_pairs: list[tuple[SynthPair, list[Passage]]],
        by_source: dict[str, list[Hit]],
        chunk_by_id: dict[str, Hit],
        k: int,
    ) -> tuple[list[tuple[str, str, Passage, str, list[Passage]]], list[QARecord]]:
        """The held-out questions (curated when there are some, else the held-out documents' synthetic pairs), each
        with its oracle and negatives, and their records."""
        cfg = self.cfg

        if curated:
            held = [(rec, self._oracle_for(rec, by_source)) for rec in held_qa]
            held = [(rec, o) for rec, o in held if o is not None]
            held_negs = [
                self._negatives(ps, o.doc_id)
                for (_, o), ps in zip(held, self._retrieve([r.question for r, _ in held], k))
            ]
            held_items = [
                (rec.question, rec.answer, o, f"heldout:{rec.key()}", negs) for (rec, o), negs in zip(held, held_negs)
            ]
            held_records = held_qa
        else:
            held_items = []
            for p, passages in held_pairs:
                oracle = _as_passage(chunk_by_id[p.chunk_id], cfg.domain)
                held_items.append(
                    (
                        p.question,
                        p.answer,
                        oracle,
                        f"heldout:synthetic:{p.chunk_id}",
                        self._negatives(passages, oracle.doc_id),
                    )
                )
            held_records = [
                QARecord(
                    id=f"synthetic-{hashlib.sha256(p.question.encode()).hexdigest()[:10]}",
                    question=p.question,
                    answer=p.answer,
                    sources=[p.source],
                    tags=["synthetic", p.writer, p.qtype],
                )
                for p, _ in held_pairs
            ]
        return held_items, held_records

    def _example_items(
        self,
        kept: list[tuple[SynthPair, list[Passage], int]],
        train_qa: list[QARecord],
        by_source: dict[str, list[Hit]],
        chunk_by_id: dict[str, Hit],
        k: int,
        dropped: Counter,
    ) -> list[tuple[str, str, Passage, str, str, list[Passage] | None, int]]:
        """The training questions (the kept synthetic pairs, then the curated ones a chunk supports), each with its
        oracle, kind, id, negatives and the oracle's retrieval rank."""
        cfg = self.cfg
        items: list[tuple[str, str, Passage, str, str, list[Passage] | None, int]] = []
        for p, passages, rank in kept:
            oracle = _as_passage(chunk_by_id[p.chunk_id], cfg.domain)
            items.append(
                (
                    p.question,
                    p.answer,
                    oracle,
                    "synthetic:" + p.writer,
                    p.chunk_id,
                    self._negatives(passages, oracle.doc_id),
                    rank,
                )
            )
        curated_items = []
        for rec in train_qa:
            oracle = self._oracle_for(rec, by_source)
            if oracle is None:
                dropped["curated: no chunk supports the answer"] += 1
                continue
            curated_items.append((rec, oracle))
        cur_passages = self._retrieve([r.question for r, _ in curated_items], k)
        for (rec, oracle), passages in zip(curated_items, cur_passages):
            rank = next((i for i, x in enumerate(passages) if x.chunk_id == oracle.chunk_id), k + 99)
            items.append(
                (rec.question, rec.answer, oracle, "curated", rec.key(), self._negatives(passages, oracle.doc_id), rank)
            )
        return items

    def _example(
        self,
        q: str,
        a: str,
        oracle: Passage | None,
        negatives: list[Passage],
        include: bool,
        *,
        k: int,
        rng: random.Random,
        fit: dict[str, int],
    ) -> dict[str, Any] | None:
        """One training row fitted to fit["max_seq_length"] tokens (0: no limit), counted in `fit` when trimmed or
        left out."""
        if not include and oracle is not None:  # no distractor that answers it: that teaches abstaining wrongly
            negatives = [n for n in negatives if support(a, n.text) < 0.5]
        row = make_example(
            q,
            a,
            oracle,
            negatives,
            k=k,
            include_oracle=include,
            rng=rng,
            count_tokens=self.count_tokens,
            max_tokens=fit["max_seq_length"],
        )
        if row is None:
            fit["left_out"] += 1
        elif row["distractors_trimmed"]:
            fit["trimmed"] += 1
        return row

    def build(
        self, curated_path: Path | None, progress: Callable[[str, int, int], None] | None = None
    ) -> dict[str, Any]:
        cfg, s = self.cfg, self.cfg.synth
        rng = random.Random(s.seed)
        k = self.retriever.settings.top_k
        fit_to = cfg.max_seq_length if self.count_tokens else 0
        # in the corpus's own order (document name, then position), not the store's (point ids hash the document's
        # path): the same corpus samples the same chunks wherever its folder lies
        chunks = sorted(
            self.store.scroll_chunks(cfg.domain),
            key=lambda h: (h.payload.get("display", ""), h.payload.get("chunk_index", 0), h.id),
        )
        if not chunks:
            raise LoragError(
                f"domain '{cfg.domain}' has no indexed chunks", hint=f"lorag ingest PATH --domain {cfg.domain}"
            )
        n_all = len(chunks)
        shown = {h.payload.get("display", "") for h in chunks}
        unmatched = [pat for pat in s.exclude_sources if not any(fnmatch.fnmatchcase(d, pat) for d in shown)]
        chunks = [h for h in chunks if not self._excluded(h.payload.get("display", ""))]
        if not chunks:
            raise LoragError(f"synth.exclude_sources {s.exclude_sources} leaves no chunk of '{cfg.domain}' to train on")
        by_source: dict[str, list[Hit]] = {}
        for h in chunks:
            by_source.setdefault(h.payload.get("display", ""), []).append(h)
        chunk_by_id = {h.id: h for h in chunks}
        general = load_general_rows(Path(s.general_data)) if s.general_share > 0 and s.general_data else []

        curated: list[QARecord] = load_qa(curated_path) if curated_path else []
        train_qa, held_qa = split_qa(curated, cfg.heldout_fraction)

        pairs, synth_report = synthesize(
            chunks,
            s,
            teacher=self.teacher,
            avoid_questions=[r.question for r in held_qa],
            progress=(lambda d, t: progress("synth", d, t)) if progress else None,
        )
        dropped: Counter = Counter()

        # the round trip: each question must find its own chunk and be one the assistant answers (retrieval's
        # `relevant`); the same retrieval gives the negatives
        if progress:
            progress("retrieve", 0, len(pairs))
        retrieved = self._retrievals([p.question for p in pairs], k)
        kept, passed = self._round_trip(pairs, retrieved, k, dropped)
        round_trip = {
            "checked": len(pairs),
            "passed": passed,
            "k": k,
            "min_relevance": self.retriever.settings.min_relevance,
            "applied": s.round_trip,
        }
        if progress:
            progress("retrieve", len(pairs), len(pairs))

        # the held-out split: curated when there is some, else whole documents of synthetic pairs
        held_docs: set[str] = set()
        if not curated:
            held_docs = _heldout_documents([p for p, _, _ in kept], cfg.heldout_fraction / 2, s.heldout_max)
        held_pairs = [(p, ps) for p, ps, _ in kept if p.source in held_docs]
        kept = [(p, ps, r) for p, ps, r in kept if p.source not in held_docs]

        fit = {"max_seq_length": fit_to, "trimmed": 0, "left_out": 0}

        rows: list[dict[str, Any]] = []
        items = self._example_items(kept, train_qa, by_source, chunk_by_id, k, dropped)
        for i, (q, a, oracle, kind, ident, negatives, rank) in enumerate(items):
            include = rng.random() < s.p_oracle
            if not include and not negatives:
                dropped[f"{kind}: no distractors for an oracle-free example"] += 1
                continue
            row = self._example(q, a, oracle, negatives, include, k=k, rng=rng, fit=fit)
            if row is None:
                dropped[f"{kind}: over max_seq_length ({fit_to} tokens) even with the fewest passages"] += 1
                continue
            rows.append({"id": f"{kind}:{ident}", "kind": kind, "oracle_rank": rank, **row})
            if progress:
                progress("examples", i + 1, len(items))

        held_rows = []
        held_items, held_records = self._heldout_items(curated, held_qa, held_pairs, by_source, chunk_by_id, k)
        for q, a, oracle, ident, negatives in held_items:  # held-out loss: same format, oracle always present
            ex = make_example(
                q,
                a,
                oracle,
                negatives,
                k=k,
                include_oracle=True,
                rng=rng,
                count_tokens=self.count_tokens,
                max_tokens=fit_to,
            )
            if ex is not None:
                held_rows.append({"id": ident, "kind": "heldout", **ex})

        if not rows:  # before anything is written: an earlier training set stays whole
            raise _no_examples_error(cfg.domain, len(pairs), synth_report, len(train_qa), dropped)

        n_general = 0
        if general:
            n_general = min(len(general), round(s.general_share / (1 - s.general_share) * len(rows)))
            rows += [
                {**r, "id": f"general:{i}", "kind": "general", "oracle_rank": 0}
                for i, r in enumerate(rng.sample(general, n_general))
            ]
        if s.curriculum:  # easy first: short answers whose oracle the retriever ranks high; general rows spread evenly
            rows.sort(key=lambda r: (len(r["answer"].split()) // 10, r["oracle_rank"], r["id"]))
        final = [p for p, _, _ in kept]
        synth_report.kept = len(final)
        synth_report.by_writer = Counter(p.writer for p in final)
        synth_report.by_qtype = Counter(p.qtype for p in final)
        report = build_report(final, references=[r.answer for r in curated], round_trip=round_trip, fit=fit)

        self.out.mkdir(parents=True, exist_ok=True)
        if curated:
            write_jsonl(self.out / "curated.jsonl", (r.model_dump() for r in curated))
        write_jsonl(self.out / "heldout.jsonl", (r.model_dump() for r in held_records))
        write_jsonl(self.out / "synthetic.jsonl", (dataclasses.asdict(p) for p in final))
        write_jsonl(self.out / "heldout_examples.jsonl", held_rows)
        data_hash = write_jsonl(self.out / "train.jsonl", rows)
        summary = {
            "domain": cfg.domain,
            "train_examples": len(rows),
            "with_oracle": sum(r["oracle_in_context"] for r in rows if r["kind"] != "general"),
            "without_oracle": sum(not r["oracle_in_context"] for r in rows if r["kind"] != "general"),
            "general_rows": n_general,
            "by_kind": dict(Counter(r["kind"] for r in rows)),
            "curated_total": len(curated),
            "curated_train": len(train_qa),
            "heldout": len(held_records),
            "heldout_from": "curated" if curated else ("synthetic documents" if held_records else "none"),
            "heldout_documents": sorted(held_docs),
            "synthetic": synth_report.to_dict(),
            "report": report,
            "dropped": dict(dropped),
            "data_hash": data_hash,
            "excluded_chunks": n_all - len(chunks),
            "exclude_patterns_matching_nothing": unmatched,
            "corpus_fingerprint": corpus_fingerprint(self.store, cfg.domain),
            "generator": getattr(self.teacher, "name", None),
            "curriculum": s.curriculum,
            "synth_config": cfg.synth.model_dump(exclude={"teacher_api_key"}),
        }
        (self.out / "build.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return summary
