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
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from assistant.qa import QARecord, write_jsonl
from assistant.store import Hit
from assistant.store.base import corpus_fingerprint
from finetune.data import load_qa, split_qa
from finetune.data_report import build_report
from finetune.general_data import load_general_rows
from finetune.raft_examples import heldout_documents, make_example
from finetune.raft_items import RaftItems
from finetune.synth import synthesize


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


class TrainingSetBuilder(RaftItems):
    """Builds and writes a domain's training set (see the module's docstring)."""

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
            held_docs = heldout_documents([p for p, _, _ in kept], cfg.heldout_fraction / 2, s.heldout_max)
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
