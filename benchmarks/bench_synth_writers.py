"""Each synthetic-question writer alone, on the same sample of chunks of each benchmark corpus: its
yield (pairs kept per chunk), the round trip's pass rate (the question retrieves its own chunk in the
top-k: a question a user could ask and the assistant could find), answer length, question types.

    .venv/bin/python benchmarks/bench_synth_writers.py [--chunks 400] [--model-chunks 40] \
        [--corpora python_faq,git_faq,sqlite_faq]

Needs the benchmarks built and ingested (benchmarks/<corpus>/README.md). The model writers
(teacher, answer_first) use the configured generator (the built-in SmolLM2-135M by default) on the
first --model-chunks chunks of the sample only: on a CPU they cost seconds per chunk.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common (a script folder, not a package)
from _common import DATA, quiet_libraries  # noqa: E402

CORPORA = {
    "python_faq": ("pydocs", "faq/*"),
    "git_faq": ("gitdocs", "gitfaq.html"),
    "sqlite_faq": ("sqlitedocs", "faq.html"),
}
WRITERS = ("section", "sentence", "cloze", "answer_first", "teacher")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=400)
    ap.add_argument("--model-chunks", type=int, default=40)
    ap.add_argument("--corpora", default=",".join(CORPORA))
    ap.add_argument("--writers", default=",".join(WRITERS))
    a = ap.parse_args()
    quiet_libraries()
    import fnmatch

    from assistant.settings import Settings
    from finetune.config import SynthConfig
    from finetune.synth import synthesize
    from ui.components import Components

    rows = []
    for corpus in a.corpora.split(","):
        domain, exclude = CORPORA[corpus]
        comps = Components(Settings(paths={"data_dir": DATA / corpus / "lorag"}))
        chunks = [
            h
            for h in comps.store.scroll_chunks(domain)
            if not fnmatch.fnmatchcase(h.payload.get("display", ""), exclude)
        ]
        sample = random.Random(0).sample(chunks, min(a.chunks, len(chunks)))
        k = comps.settings.retrieval.top_k
        for writer in a.writers.split(","):
            model = writer in ("teacher", "answer_first")
            picked = sample[: a.model_chunks] if model else sample
            cfg = SynthConfig(
                writer=writer, max_chunks=len(picked), pairs_per_chunk=2, model_probe=0, seed=0, max_new_tokens=256
            )
            t0 = time.perf_counter()
            pairs, report = synthesize(picked, cfg, teacher=comps.generator if model else None)
            write_s = time.perf_counter() - t0
            found = comps.retriever.retrieve_many([p.question for p in pairs], domain, top_k=k) if pairs else []
            ok = [p for p, r in zip(pairs, found) if any(x.chunk_id == p.chunk_id for x in r.passages[:k])]
            lengths = [len(p.answer.split()) for p in ok]
            rows.append(
                {
                    "corpus": corpus,
                    "writer": writer,
                    "chunks": len(picked),
                    "candidates": report.candidates,
                    "kept_filters": len(pairs),
                    "kept_round_trip": len(ok),
                    "pairs_per_100_chunks": round(100 * len(ok) / len(picked), 1),
                    "round_trip_rate": round(len(ok) / len(pairs), 3) if pairs else None,
                    "answer_words_median": statistics.median(lengths) if lengths else None,
                    "question_types": dict(Counter(p.qtype for p in ok).most_common()),
                    "top_drops": dict(report.dropped.most_common(3)),
                    "write_s": round(write_s, 1),
                    "example": {"q": ok[0].question, "a": ok[0].answer} if ok else None,
                }
            )
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
        comps.close()
    print(
        "\n| corpus | writer | chunks | kept after filters | after round trip | per 100 chunks | round-trip "
        "rate | answer words (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['writer']} | {r['chunks']} | {r['kept_filters']} | {r['kept_round_trip']} | "
            f"{r['pairs_per_100_chunks']} | {r['round_trip_rate']} | {r['answer_words_median']} |"
        )


if __name__ == "__main__":
    main()
