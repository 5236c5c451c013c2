"""The first hour's waits, as a user meets them: `lorag ingest MISSING` and `lorag ask` end to end.

    python benchmarks/bench_first_hour.py [--before PATH] [--runs 3]

Each run is a fresh `python -m ui.cli` process (what the `lorag` script starts), on the real built-in models
(`lorag models pull` first) and a temporary data folder with samples/corpus/handbook ingested once.

- `ingest MISSING`: the wall time until a wrong path is reported (target: under 2 s).
- `ask`: `lorag ask --json` end to end, and its own reported retrieval + generation time
  (timings_ms.retrieve_ms + generate_ms); the overhead is the difference (target: under 3 s), the ratio
  wall ÷ (retrieval + generation).

`--before PATH`: another checkout of lorag (e.g. `git worktree add /tmp/before <commit>`) measured alternately
with this one on the same data, so both see the same load on a shared machine. Not a timed test: figures go
to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, SAMPLES

QUESTION = "How many days of annual leave do full-time employees get?"


def lorag(checkout: Path, data: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env.update(PYTHONPATH=str(checkout), LORAG_PATHS__DATA_DIR=str(data))
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True, env=env, cwd=data.parent
    )
    return time.perf_counter() - t0, r


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="another checkout, measured alternately with this one")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    checkouts = {"this": REPO, **({"before": a.before.resolve()} if a.before else {})}
    root = Path(tempfile.mkdtemp(prefix="lorag-first-hour-"))
    data = root / "data"
    print(f"load average at start: {load()}")
    secs, r = lorag(REPO, data, "ingest", str(SAMPLES / "handbook"), "--domain", "handbook")
    assert r.returncode == 0, r.stderr
    print(f"ingested samples/corpus/handbook in {secs:.1f}s")
    results: dict[str, dict[str, list[float]]] = {k: {"missing": [], "wall": [], "work": []} for k in checkouts}
    for i in range(a.runs):
        for name, checkout in checkouts.items():
            secs, r = lorag(checkout, data, "ingest", str(root / "no-such-folder"), "--domain", "handbook")
            results[name]["missing"].append(secs)
            secs, r = lorag(checkout, data, "ask", QUESTION, "--domain", "handbook", "--json")
            assert r.returncode == 0, r.stderr
            t = json.loads(r.stdout)["timings_ms"]
            work = (t["retrieve_ms"] + t.get("generate_ms", 0.0)) / 1000
            results[name]["wall"].append(secs)
            results[name]["work"].append(work)
            print(
                f"run {i + 1} {name:6s}: ingest MISSING {results[name]['missing'][-1]:.2f}s; ask {secs:.1f}s wall, "
                f"{work:.1f}s retrieval+generation, overhead {secs - work:.1f}s (stderr: {len(r.stderr)} "
                f"chars); load {load()}"
            )
    print("\nmedians")
    for name, m in results.items():
        wall, work = statistics.median(m["wall"]), statistics.median(m["work"])
        over = statistics.median([w - k for w, k in zip(m["wall"], m["work"])])
        ratio = statistics.median([w / k for w, k in zip(m["wall"], m["work"])])
        print(
            f"{name:6s}: ingest MISSING {statistics.median(m['missing']):.2f}s; ask {wall:.1f}s for {work:.1f}s of "
            f"retrieval+generation: overhead {over:.1f}s, ratio {ratio:.2f}"
        )
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
