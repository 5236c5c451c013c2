"""An ingest killed with SIGKILL leaves every document fully present (one whole version) or fully
absent; the next ingest completes the job. Kills land at random points, and at the two points of the
write protocol that matter, forced by a store wrapper in the child (tests/helpers/ingest_child.py):
right after a staged write, and between the publish's delete and its flip to live."""

import random
import signal
import subprocess
import sys
import time
from collections import defaultdict

from assistant.settings_pipeline import IngestSettings
from assistant.store.edge import EdgeStore
from ingest.pipeline import Ingestor
from tests.fakes import HashingEmbedder

N_DOCS = 40


def write_corpus(root, version):
    root.mkdir(exist_ok=True)
    rng = random.Random(version)
    for i in range(N_DOCS):
        n_paragraphs = rng.randint(2, 12)  # versions differ in chunk counts too
        body = "\n\n".join(
            f"doc {i} version {version} paragraph {p} " + " ".join(f"w{rng.randint(0, 500)}" for _ in range(25))
            for p in range(n_paragraphs)
        )
        (root / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{body}\n")


def versions_of(root):
    ing = Ingestor(
        None, HashingEmbedder(dim=32), None, IngestSettings(chunk_tokens=20, chunk_overlap=0, embed_batch_size=1)
    )
    return {str((root / f"doc{i:02d}.md").resolve()): ing._version(root / f"doc{i:02d}.md") for i in range(N_DOCS)}


def staged_count(store_path):
    store = EdgeStore(store_path)
    try:
        return store.count("crash", state="staged")
    finally:
        store.close()


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


def run_child(store_path, corpus, kill_after_files=None, kill_at=None):
    """Ingest in a child process. kill_after_files: SIGKILL it from here after that many files (plus a random
    delay); kill_at ("stage:N" / "publish:N"): it kills itself there and the doc_id it was writing is returned;
    neither: it runs to the end and the staged chunks it purged first are returned."""
    args = [sys.executable, "-m", "tests.helpers.ingest_child", str(store_path), str(corpus)]
    p = subprocess.Popen(
        args + ([kill_at] if kill_at else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "START"
    if kill_at is not None:
        out, err = p.communicate(timeout=120)
        assert p.returncode == -signal.SIGKILL, f"the child was not killed at {kill_at}: {out[-300:]} {err[-300:]}"
        (killed,) = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("KILL ")]
        return killed
    if kill_after_files is None:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        (done,) = [line for line in out.splitlines() if line.startswith("DONE ")]
        return int(done.split()[1])
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


def test_a_kill_right_after_a_staged_write_or_inside_a_publish_is_finished_by_the_next_run(tmp_path):
    """Kills forced at the two risky points of the write protocol, not left to timing: right after a staged
    write (the new version is partly or wholly staged, the old still live), and between the publish's two
    operations (old version deleted, new one staged but not live). Each leaves every document whole or
    absent, and the next ingest finishes the job."""
    corpus, store_path = tmp_path / "corpus", tmp_path / "store"
    write_corpus(corpus, 1)
    old = versions_of(corpus)
    run_child(store_path, corpus)

    write_corpus(corpus, 2)
    new = versions_of(corpus)
    killed = run_child(store_path, corpus, kill_at="stage:25")
    state = check_consistent(store_path, {d: {old[d], new[d]} for d in new})
    assert state[killed] == old[killed]  # its new version is staged only: the old one is still whole and live
    assert 0 < sum(state[d] == new[d] for d in new) < len(new)  # the kill landed mid-run
    assert staged_count(store_path) > 0  # and left staged data behind
    assert run_child(store_path, corpus) > 0  # the next run purges it ...
    assert check_consistent(store_path, {d: {h} for d, h in new.items()}) == new  # ... and finishes the job
    assert staged_count(store_path) == 0

    write_corpus(corpus, 3)
    newer = versions_of(corpus)
    killed = run_child(store_path, corpus, kill_at="publish:10")
    state = check_consistent(store_path, {d: {new[d], newer[d]} for d in newer})
    assert killed not in state  # half-published: the old version deleted, the new not yet live -> absent
    assert sum(state.get(d) == newer[d] for d in newer) == 9  # the nine published before it are whole
    assert staged_count(store_path) > 0
    assert run_child(store_path, corpus) > 0
    assert check_consistent(store_path, {d: {h} for d, h in newer.items()}) == newer
    assert staged_count(store_path) == 0
