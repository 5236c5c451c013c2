"""RAFT-style training examples: the serving prompt with the oracle passage among real retriever hard
negatives, or (a share 1-P of the time) without it, where the target says the answer is not there.

Writes <data_dir>/datasets/<domain>/: curated.jsonl, heldout.jsonl (never trains), synthetic.jsonl,
train.jsonl (prompt/completion rows for trl), build.json (counts and why rows were dropped).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.errors import LoragError
from assistant.generation import Generator
from assistant.prompt import NO_ANSWER, build_messages
from assistant.retrieval import Passage, Retriever
from assistant.store import Hit, Store
from assistant.store.base import corpus_fingerprint
from finetune.config import TrainConfig
from finetune.data import QARecord, load_qa, split_qa, write_jsonl
from finetune.synth import support, synthesize


def _as_passage(hit: Hit, domain: str) -> Passage:
    p = hit.payload
    return Passage(0, p.get("text", ""), p.get("display", ""), p.get("section") or "", p.get("page"), 0.0,
                   domain, p.get("doc_id", ""), hit.id)  # fmt: skip


MIN_DISTRACTOR_WORDS = 8


def _has_body(text: str) -> bool:
    """A heading-only chunk (a title, a lone table row) teaches nothing as a distractor."""
    return len(text.split()) >= MIN_DISTRACTOR_WORDS


def make_example(
    question: str, answer: str, oracle: Passage | None, negatives: Sequence[Passage], *, k: int,
    include_oracle: bool, rng: random.Random,
) -> dict[str, Any]:  # fmt: skip
    """One prompt/completion row in the exact serving format."""
    if include_oracle and oracle is not None:
        ctx = [oracle] + [n for n in negatives if n.chunk_id != oracle.chunk_id][: k - 1]
    else:
        ctx = [n for n in negatives if oracle is None or n.doc_id != oracle.doc_id][:k]
    rng.shuffle(ctx)
    ctx = [dataclasses.replace(p, n=i + 1) for i, p in enumerate(ctx)]
    has_oracle = include_oracle and oracle is not None
    if has_oracle:
        n = next(p.n for p in ctx if p.chunk_id == oracle.chunk_id)
        target = f"{answer.rstrip()} [{n}]"
    else:
        target = NO_ANSWER
    messages = build_messages(question, ctx)
    return {
        "question": question,
        "answer": answer,
        "target": target,
        "oracle_in_context": has_oracle,
        "prompt": messages,
        "completion": [{"role": "assistant", "content": target}],
    }


class TrainingSetBuilder:
    def __init__(self, store: Store, retriever: Retriever, generator: Generator | None, cfg: TrainConfig, out_dir: Path):
        self.store = store
        self.retriever = retriever
        self.generator = generator
        self.cfg = cfg
        self.out = Path(out_dir)

    def _excluded(self, source: str) -> bool:
        return any(fnmatch.fnmatchcase(source, pat) for pat in self.cfg.synth.exclude_sources)

    def _negatives_many(self, questions: list[str], exclude_docs: list[str | None], k: int) -> list[list[Passage]]:
        """Real retriever hard negatives for each question (one embedding batch), minus the oracle's
        document and any excluded source."""
        extra = 4 + (2 * k if self.cfg.synth.exclude_sources else 0)
        results = self.retriever.retrieve_many(questions, self.cfg.domain, top_k=k + extra)
        return [[p for p in r.passages if p.doc_id != ex and not self._excluded(p.source) and _has_body(p.text)]
                for r, ex in zip(results, exclude_docs)]  # fmt: skip

    def _oracle_for(self, rec: QARecord, chunks_by_source: dict[str, list[Hit]]) -> Passage | None:
        """The chunk of a source document that best supports the reference answer."""
        candidates = [h for s in rec.sources for h in chunks_by_source.get(s, [])]
        if not candidates:
            candidates = [h for hs in chunks_by_source.values() for h in hs]
        best = max(candidates, key=lambda h: support(rec.answer, h.text), default=None)
        if best is None or support(rec.answer, best.text) < 0.5:
            return None
        return _as_passage(best, self.cfg.domain)

    def build(self, curated_path: Path | None, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
        cfg, s = self.cfg, self.cfg.synth
        rng = random.Random(s.seed)
        k = self.retriever.settings.top_k
        n_neg = max(s.distractors, k)
        chunks = self.store.scroll_chunks(cfg.domain)
        if not chunks:
            raise LoragError(f"domain '{cfg.domain}' has no indexed chunks", hint=f"lorag ingest PATH --domain {cfg.domain}")
        n_all = len(chunks)
        shown = {h.payload.get("display", "") for h in chunks}
        unmatched = [pat for pat in s.exclude_sources if not any(fnmatch.fnmatchcase(d, pat) for d in shown)]
        chunks = [h for h in chunks if not self._excluded(h.payload.get("display", ""))]
        if not chunks:
            raise LoragError(f"synth.exclude_sources {s.exclude_sources} leaves no chunk of '{cfg.domain}' to train on")
        by_source: dict[str, list[Hit]] = {}
        for h in chunks:
            by_source.setdefault(h.payload.get("display", ""), []).append(h)

        curated: list[QARecord] = load_qa(curated_path) if curated_path else []
        train_qa, held_qa = split_qa(curated, cfg.heldout_fraction)

        pairs, synth_report = synthesize(
            chunks, self.generator, s, avoid_questions=[r.question for r in held_qa],
            progress=(lambda d, t: progress("synth", d, t)) if progress else None,
        )  # fmt: skip
        chunk_by_id = {h.id: h for h in chunks}

        rows: list[dict[str, Any]] = []
        dropped: Counter = Counter()
        items: list[tuple[str, str, Passage | None, str, str]] = []
        for p in pairs:
            items.append((p.question, p.answer, _as_passage(chunk_by_id[p.chunk_id], cfg.domain), "synthetic:" + p.writer, p.chunk_id))
        for rec in train_qa:
            oracle = self._oracle_for(rec, by_source)
            if oracle is None:
                dropped["curated: no chunk supports the answer"] += 1
                continue
            items.append((rec.question, rec.answer, oracle, "curated", rec.key()))
        all_negatives = self._negatives_many([it[0] for it in items], [it[2].doc_id if it[2] else None for it in items], n_neg)
        for i, ((q, a, oracle, kind, ident), negatives) in enumerate(zip(items, all_negatives)):
            include = rng.random() < s.p_oracle
            if not include and not negatives:
                dropped[f"{kind}: no distractors for an oracle-free example"] += 1
                continue
            row = make_example(q, a, oracle, negatives, k=k, include_oracle=include, rng=rng)
            rows.append({"id": f"{kind}:{ident}", "kind": kind, **row})
            if progress:
                progress("examples", i + 1, len(items))
        held_rows = []
        held = [(rec, self._oracle_for(rec, by_source)) for rec in held_qa]
        held = [(rec, o) for rec, o in held if o is not None]
        held_negs = self._negatives_many([r.question for r, _ in held], [o.doc_id for _, o in held], n_neg)
        for (rec, oracle), negatives in zip(held, held_negs):  # held-out loss: same format, oracle always present
            ex = make_example(rec.question, rec.answer, oracle, negatives, k=k, include_oracle=True, rng=rng)
            held_rows.append({"id": f"heldout:{rec.key()}", "kind": "heldout", **ex})
        if not rows:  # before anything is written: an earlier training set stays whole
            why = "; ".join(f"{n} {reason}" for reason, n in (synth_report.dropped + dropped).most_common()) or "no chunk gave one"
            raise LoragError(
                f"no training examples could be built for '{cfg.domain}': {synth_report.kept} synthetic pair(s) from "
                f"{synth_report.chunks} chunk(s), {len(train_qa)} curated; dropped: {why}",
                hint="add curated Q&A with --qa, or synthesize from more chunks (--max-chunks) or with other writers "
                     "(--writer heading+cloze); nothing was written",
            )  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        if curated:
            write_jsonl(self.out / "curated.jsonl", (r.model_dump() for r in curated))
        write_jsonl(self.out / "heldout.jsonl", (r.model_dump() for r in held_qa))
        write_jsonl(self.out / "synthetic.jsonl", (dataclasses.asdict(p) for p in pairs))
        write_jsonl(self.out / "heldout_examples.jsonl", held_rows)
        data_hash = write_jsonl(self.out / "train.jsonl", rows)
        summary = {
            "domain": cfg.domain,
            "train_examples": len(rows),
            "with_oracle": sum(r["oracle_in_context"] for r in rows),
            "without_oracle": sum(not r["oracle_in_context"] for r in rows),
            "by_kind": dict(Counter(r["kind"] for r in rows)),
            "curated_total": len(curated),
            "curated_train": len(train_qa),
            "heldout": len(held_qa),
            "synthetic": synth_report.to_dict(),
            "dropped": dict(dropped),
            "data_hash": data_hash,
            "excluded_chunks": n_all - len(chunks),
            "exclude_patterns_matching_nothing": unmatched,
            "corpus_fingerprint": corpus_fingerprint(self.store, cfg.domain),
            "generator": getattr(self.generator, "name", None),
            "synth_config": dataclasses.asdict(cfg.synth),  # the settings that made this data (--writer included)
        }
        (self.out / "build.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return summary
