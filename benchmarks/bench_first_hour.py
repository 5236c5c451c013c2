"""The first hour's waits, as a user meets them: `lorag ingest MISSING` and `lorag ask` end to end.

    nice -n 10 python benchmarks/bench_first_hour.py [--before PATH] [--runs 3]

Each run is a fresh `python -m ui.cli` process (what the `lorag` script starts), on the real built-in models
(`lorag models pull` first) and a temporary data folder with samples/corpus/handbook ingested once.

- `ingest MISSING`: the wall time until a wrong path is reported (target: under 2 s).
- `ask`: `lorag ask --json` end to end, and its own reported retrieval + generation time
  (timings_ms.retrieve_ms + generate_ms); the overhead is the difference (target: under 3 s), the ratio
  wall ÷ (retrieval + generation). Three ways, in this order each run:
  - `in-process`: `lorag ask --no-warm`, the models loaded by the command itself;
  - `cold`: `lorag stop`, then `lorag ask`: it starts the keep-warm worker (loading the models there) and asks it;
  - `warm`: `lorag ask` again: the worker answers with the models loaded.
  `lorag stop` ends the worker at the end.

`--before PATH`: another checkout of lorag (e.g. `git worktree add /tmp/before <commit>`) measured alternately
with this one on the same data, so both see the same load on a shared machine (its `ask` as it was, no flags).
Not a timed test: figures go to benchmarks/RESULTS.md.
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


def ask(checkout: Path, data: Path, *flags: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, retrieval + generation s, the process)."""
    secs, r = lorag(checkout, data, "ask", QUESTION, "--domain", "handbook", "--json", *flags)
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["timings_ms"]
    return secs, (t["retrieve_ms"] + t.get("generate_ms", 0.0)) / 1000, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="another checkout, measured alternately with this one")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    checkouts = {"this": REPO, **({"before": a.before.resolve()} if a.before else {})}
    root = Path(tempfile.mkdtemp(prefix="lorag-first-hour-"))
    data = root / "data"
    print(f"load average at start: {load()}; niceness {os.nice(0)}")
    secs, r = lorag(REPO, data, "ingest", str(SAMPLES / "handbook"), "--domain", "handbook")
    assert r.returncode == 0, r.stderr
    print(f"ingested samples/corpus/handbook in {secs:.1f}s")
    ways = {"this": ("in-process", "cold", "warm"), "before": ("in-process",)}
    results = {(name, way): {"wall": [], "work": []} for name in checkouts for way in ways[name]}
    missing: dict[str, list[float]] = {name: [] for name in checkouts}
    try:
        for i in range(a.runs):
            for name, checkout in checkouts.items():
                secs, r = lorag(checkout, data, "ingest", str(root / "no-such-folder"), "--domain", "handbook")
                missing[name].append(secs)
                for way in ways[name]:
                    if way == "cold":
                        lorag(checkout, data, "stop")
                    flags = ("--no-warm",) if (name, way) == ("this", "in-process") else ()
                    wall, work, r = ask(checkout, data, *flags)
                    started = "started a lorag worker" in r.stderr
                    assert started == (way == "cold"), r.stderr
                    results[(name, way)]["wall"].append(wall)
                    results[(name, way)]["work"].append(work)
                    print(
                        f"run {i + 1} {name:6s} {way:10s}: ask {wall:.1f}s wall, {work:.1f}s retrieval+generation, "
                        f"overhead {wall - work:.2f}s; load {load()}",
                        flush=True,
                    )
                print(f"run {i + 1} {name:6s} ingest MISSING {missing[name][-1]:.2f}s", flush=True)
    finally:
        lorag(REPO, data, "stop")
    print("\nmedians")
    for name in checkouts:
        print(f"{name:6s}: ingest MISSING {statistics.median(missing[name]):.2f}s")
    for (name, way), m in results.items():
        wall, work = statistics.median(m["wall"]), statistics.median(m["work"])
        over = [w - k for w, k in zip(m["wall"], m["work"])]
        ratio = statistics.median([w / k for w, k in zip(m["wall"], m["work"])])
        print(
            f"{name:6s} {way:10s}: ask {wall:.1f}s for {work:.1f}s of retrieval+generation: overhead "
            f"{statistics.median(over):.2f}s (runs {', '.join(f'{x:.2f}' for x in over)}), ratio {ratio:.2f}"
        )
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
