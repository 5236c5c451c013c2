"""An ingest killed with SIGKILL at random points leaves every document fully present (one whole
version) or fully absent; the next ingest completes the job."""

import random
import signal
import subprocess
import sys
import time
from collections import defaultdict

from assistant.embedding import HashingEmbedder
from assistant.settings import IngestSettings
from assistant.store.edge import EdgeStore
from ingest.pipeline import Ingestor

N_DOCS = 40


def write_corpus(root, version):
    root.mkdir(exist_ok=True)
    rng = random.Random(version)
    for i in range(N_DOCS):
        n_paragraphs = rng.randint(2, 12)  # versions differ in chunk counts too
        body = "\n\n".join(f"doc {i} version {version} paragraph {p} " + " ".join(f"w{rng.randint(0, 500)}" for _ in range(25)) for p in range(n_paragraphs))
        (root / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{body}\n")


def versions_of(root):
    ing = Ingestor(None, HashingEmbedder(dim=32), None, IngestSettings(chunk_tokens=20, chunk_overlap=0, embed_batch_size=1))
    return {str((root / f"doc{i:02d}.md").resolve()): ing._version(root / f"doc{i:02d}.md") for i in range(N_DOCS)}


def check_consistent(store_path, allowed):
    """Every document: absent, or exactly one version with all of its chunks live."""
    store = EdgeStore(store_path)
    try:
        live = defaultdict(list)
        for hit in store.scroll_chunks("crash"):
            live[hit.payload["doc_id"]].append(hit.payload)
        for doc_id, chunks in live.items():
            hashes = {c["content_hash"] for c in chunks}
            assert len(hashes) == 1, f"{doc_id}: a mix of versions is visible: {hashes}"
            (h,) = hashes
            assert h in allowed[doc_id], f"{doc_id}: unknown version {h}"
            n = chunks[0]["n_chunks"]
            assert sorted(c["chunk_index"] for c in chunks) == list(range(n)), f"{doc_id}: partial document"
        return {d: chunks[0]["content_hash"] for d, chunks in live.items()}
    finally:
        store.close()


def run_child(store_path, corpus, kill_after_files=None):
    p = subprocess.Popen([sys.executable, "-m", "tests.helpers.ingest_child", str(store_path), str(corpus)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "START"
    started = time.perf_counter()
    if kill_after_files is None:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        return time.perf_counter() - started
    # Kill once the child reports this many files written (0: at once), plus a random delay,
    # so kills land before, inside and between the stage and publish steps.
    done = 0
    while done < kill_after_files:
        line = p.stdout.readline()
        if not line:
            break
        done = int(line.split()[1]) if line.startswith("PROGRESS") else done
    time.sleep(random.uniform(0, 0.01))
    p.send_signal(signal.SIGKILL)
    p.wait()
    return None


def test_sigkill_at_random_points_never_leaves_a_partial_document(tmp_path):
    corpus, store_path = tmp_path / "corpus", tmp_path / "store"
    write_corpus(corpus, 1)
    old = versions_of(corpus)
    run_child(store_path, corpus)
    assert check_consistent(store_path, {d: {h} for d, h in old.items()}) == old

    rng = random.Random(1234)
    interrupted_midway = 0
    for version in range(2, 7):
        write_corpus(corpus, version)  # every document changes
        new = versions_of(corpus)
        run_child(store_path, corpus, kill_after_files=rng.randint(0, N_DOCS - 5))
        state = check_consistent(store_path, {d: {old[d], new[d]} for d in new})  # raises on a mix or a part
        done = sum(state.get(d) == new[d] for d in new)
        interrupted_midway += 0 < done < len(new)
        run_child(store_path, corpus)  # the next ingest finishes the job
        assert check_consistent(store_path, {d: {h} for d, h in new.items()}) == new
        old = new
    assert interrupted_midway >= 1, "no kill landed in the middle of an ingest; the test proved nothing"
