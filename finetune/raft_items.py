"""The per-question pieces of a RAFT training set, over the store and the retriever: each question's retrieval and
round trip, its oracle chunk and real hard negatives, and its training row fitted to max_seq_length."""

from __future__ import annotations

import fnmatch
import hashlib
import random
from collections import Counter
from pathlib import Path
from typing import Any

from assistant.qa import QARecord
from assistant.retrieval import Passage, Retrieval, Retriever
from assistant.store import Hit, Store
from finetune.config import TrainConfig
from finetune.raft_examples import TokenCounter, as_passage, has_body, make_example
from finetune.synth import SynthPair, support


class RaftItems:
    """What TrainingSetBuilder assembles its rows from: retrievals, oracles, negatives and fitted rows."""

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
        return [p for p in passages if p.doc_id != exclude_doc and not self._excluded(p.source) and has_body(p.text)]

    def _oracle_for(self, rec: QARecord, chunks_by_source: dict[str, list[Hit]]) -> Passage | None:
        """The chunk of a source document that best supports the reference answer."""
        candidates = [h for s in rec.sources for h in chunks_by_source.get(s, [])]
        if not candidates:
            candidates = [h for hs in chunks_by_source.values() for h in hs]
        best = max(candidates, key=lambda h: support(rec.answer, h.text), default=None)
        if best is None or support(rec.answer, best.text) < 0.5:
            return None
        return as_passage(best, self.cfg.domain)

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
                oracle = as_passage(chunk_by_id[p.chunk_id], cfg.domain)
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
            oracle = as_passage(chunk_by_id[p.chunk_id], cfg.domain)
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
