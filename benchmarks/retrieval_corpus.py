"""bench_retrieval's data: synthetic chunks (Zipf-drawn words of the Python docs, random unit vectors) with their
queries, real Python-docs paragraphs and held-out query sentences for the recall part, and the timed write of a
corpus into a store. Imported by name from benchmarks/, the running script's folder, as bench_retrieval_e2e.py and
bench_bm25_terms.py do."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from pathlib import Path

from _common import Timer

DOC_CHUNKS = 50
NS = uuid.UUID("0b1e7f5c-2a6e-4c1d-9f7e-1f2d3c4b5a69")
HELD_OUT = ("tutorial", "howto", "faq")


# -- synthetic data ---------------------------------------------------------------------------
def vocabulary(src: Path | None, size: int = 4000) -> list[str]:
    if src is not None:
        c: Counter[str] = Counter()
        for f in sorted(src.rglob("*.txt")):
            c.update(w for w in re.findall(r"[a-z]{3,}", f.read_text(errors="replace").lower()))
        words = [w for w, _ in c.most_common(size)]
        if len(words) >= size // 2:
            return words
    import numpy as np

    rng = np.random.default_rng(1)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    return sorted({"".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size)})


def zipf_words(rng, vocab_arr, n_rows: int, n_words: int):
    import numpy as np

    p = 1.0 / np.arange(1, len(vocab_arr) + 1)
    p /= p.sum()
    idx = rng.choice(len(vocab_arr), size=(n_rows, n_words), p=p)
    return [" ".join(vocab_arr[r]) for r in idx]


def unit(rng, n: int, dim: int = 384):
    import numpy as np

    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_points(n: int, vocab_arr, sparse_enc, seed: int = 0):
    """(points grouped per document, stage time of bm25 encoding) for n synthetic chunks."""
    import numpy as np

    from assistant.store.base import ChunkPoint

    rng = np.random.default_rng(seed)
    texts = zipf_words(rng, vocab_arr, n, 120)
    with Timer() as t_bm25:
        sparse = sparse_enc.embed_documents(texts)
    dense = unit(rng, n)
    docs = []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for d, start in enumerate(range(0, n, DOC_CHUNKS)):
        doc_id, version = f"/bench/corpus/doc-{d:06d}.md", f"{d:032x}"
        pts = []
        for i in range(start, min(n, start + DOC_CHUNKS)):
            payload = {
                "doc_id": doc_id,
                "display": f"doc-{d:06d}.md",
                "content_hash": version,
                "chunk_index": i - start,
                "n_chunks": min(n, start + DOC_CHUNKS) - start,
                "text": texts[i],
                "section": f"Section {i % 7}",
                "page": None,
                "format": "md",
                "title": f"doc-{d:06d}",
                "domain": "bench",
                "ingested_at": now,
            }
            pts.append(
                ChunkPoint(str(uuid.uuid5(NS, f"{doc_id}|{version}|{i}")), dense[i].tolist(), sparse[i], payload)
            )
        docs.append((doc_id, version, pts))
    return docs, dense, t_bm25.s


def make_queries(n: int, dense, vocab_arr, sparse_enc, seed: int = 7):
    import numpy as np

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(dense), n)
    noise = unit(rng, n) * 0.45
    q = dense[pick] + noise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    words = zipf_words(rng, vocab_arr, n, 6)
    return [(q[i].tolist(), sparse_enc.embed_query(words[i])) for i in range(n)]


def load_store(store, docs) -> tuple[float, float]:
    with Timer() as t_up:
        for doc_id, version, pts in docs:
            store.stage("bench", pts)
            store.publish("bench", doc_id, version)
    with Timer() as t_fl:
        store.flush()
    return t_up.s, t_fl.s


# -- real text for recall ---------------------------------------------------------------------
def paragraphs(path: Path, lo: int, hi: int) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
        t = " ".join(block.split())
        if not t or t.startswith(("..", ":", "=", "-", "*", "+", "|", ">>>")):
            continue
        n = len(t.split())
        if lo <= n <= hi and sum(c.isalpha() or c == " " for c in t) / len(t) > 0.9:
            out.append(t)
    return out


def real_corpus(src: Path, n_chunks: int, n_queries: int) -> tuple[list[str], list[str]]:
    files = sorted(src.rglob("*.txt"))
    held = [f for f in files if f.relative_to(src).parts[0] in HELD_OUT]
    idx = [f for f in files if f.relative_to(src).parts[0] not in HELD_OUT]
    paras = list(dict.fromkeys(p for f in idx for p in paragraphs(f, 12, 60)))
    step = max(1, len(paras) // n_chunks)
    chunks = paras[::step][:n_chunks]
    sents = [
        s
        for f in held
        for p in paragraphs(f, 8, 400)
        for s in re.split(r"(?<=[.?!])\s+", p)
        if 8 <= len(s.split()) <= 30
    ]
    sents = [s for s in dict.fromkeys(sents) if s not in set(chunks)]
    qstep = max(1, len(sents) // n_queries)
    return chunks, sents[::qstep][:n_queries]
