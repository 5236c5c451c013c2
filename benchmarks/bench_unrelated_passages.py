"""Sources left out as unrelated: what top-k gives an answer with and without dropping the passages that share no
BM25 term with the question and sit under retrieval.min_relevance in cosine (assistant/retrieval.py `unrelated`).

    .venv/bin/python benchmarks/bench_unrelated_passages.py [--top-k 4] [--docs N] [--corpus DIR] [--qa DIR]

Index: every folder of --corpus as a domain (default: the sample domains), embedded by the default embedder
(all-MiniLM-L6-v2 from paths.model_cache; nothing is downloaded). Questions: every row of the --qa files (one per
domain, `question` and `sources`), each asked in its own domain and then without a domain (all domains fused).
--docs N: each domain made of its first N documents only (sorted by name; a small domain), and only the questions
whose sources are all among them.
Per way: passages per answer, the share of questions whose expected source is among the passages (source@k), and
the share of passages from a document the row does not name (off-source: a rough count of unrelated ones, since
a document the row does not name can still hold the answer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, header, quiet_libraries, rm, table, temp_dir  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--corpus", type=Path, default=REPO / "samples" / "corpus")
    ap.add_argument("--qa", type=Path, default=REPO / "samples" / "qa")
    ap.add_argument("--docs", type=int, default=0, help="each domain of its first N documents only (0: all)")
    args = ap.parse_args()
    quiet_libraries()
    header("sources left out as unrelated: top-k with and without the cut")

    from assistant.retrieval import Retriever
    from assistant.settings import Settings
    from ui.components import Components

    data = temp_dir("unrelated")
    domains = sorted(p.name for p in args.corpus.iterdir() if p.is_dir())
    rows = []
    try:
        comps = Components(Settings(paths={"data_dir": data}))
        kept: dict[str, set[str]] = {}
        for d in domains:
            files = sorted(p for p in (args.corpus / d).iterdir() if p.is_file())
            files = files[: args.docs] if args.docs else files
            kept[d] = {p.name for p in files}
            comps.ingestor().run(files, d)
        s = comps.settings.retrieval.model_copy(update={"top_k": args.top_k})
        ways = {
            "all of top-k (before)": Retriever(
                comps.store, comps.dense, comps.sparse, s.model_copy(update={"drop_unrelated": False})
            ),
            "unrelated left out (now)": Retriever(comps.store, comps.dense, comps.sparse, s),
        }
        cases = []
        for d in domains:
            f = args.qa / f"{d}.jsonl"
            if f.exists():
                rows_d = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
                cases += [(d, r) for r in rows_d if set(r.get("sources") or []) <= kept[d]]
        for scope in ("own domain", "all domains"):
            for way, r in ways.items():
                n = hit = off = 0
                for d, row in cases:
                    res = r.retrieve(row["question"], d if scope == "own domain" else None)
                    want = set(row.get("sources") or [])
                    got = [p.source for p in res.passages]
                    n += len(got)
                    hit += bool(want & set(got))
                    off += sum(1 for g in got if g not in want)
                rows.append(
                    [
                        scope,
                        way,
                        len(cases),
                        f"{n / len(cases):.2f}",
                        f"{hit / len(cases):.3f}",
                        f"{off / max(n, 1):.3f}",
                    ]
                )
        comps.close()
    finally:
        rm(data)
    print(
        table(["questions asked in", "passages", "questions", "per answer", f"source@{args.top_k}", "off-source"], rows)
    )


if __name__ == "__main__":
    main()
