"""Which runtime computes the dense embedder's vectors (models.embedder_backend).

torch: transformers (float32 on CPU, float16 on CUDA). onnx / openvino: the int8 ONNX export run by onnxruntime /
OpenVINO on the CPU. `auto`: the backend the existing index was embedded with (so a query matches its index),
else torch on CUDA when present, else the fastest backend measured once on this CPU (remembered in the model
cache's embedder_speed.json, keyed by model and CPU).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable, Iterable

BACKENDS = ("torch", "onnx", "openvino")
SPEED_FILE = "embedder_speed.json"
NEEDS = {"torch": ("torch",), "onnx": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnxruntime", "onnx")}


def family(label: str) -> str:
    """'onnx:cpu:int8' -> 'onnx'; the backend setting that reproduces an index's record."""
    return label.split(":", 1)[0]


def installed_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def installed(backend: str) -> bool:
    return all(installed_module(m) for m in NEEDS[backend])


def available() -> list[str]:
    return [b for b in BACKENDS if installed(b)]


def cpu_id() -> str:
    """The CPU model and core count: what the measured speeds depend on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} x{os.cpu_count()}"


class SpeedMemo:
    """chunks/s per backend, per (embedder, CPU), in the model cache."""

    def __init__(self, root: Path):
        self.path = Path(root) / SPEED_FILE

    def _all(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict[str, float] | None:
        entry = self._all().get(key)
        return dict(entry["chunks_per_s"]) if entry else None

    def put(self, key: str, speeds: dict[str, float]) -> None:
        data = self._all()
        data[key] = {"chunks_per_s": speeds, "best": max(speeds, key=speeds.get),
                     "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.path)


def choose(setting: str, *, cuda: bool, recorded: Iterable[str], have: list[str],
           measured: Callable[[], dict[str, float]]) -> str:  # fmt: skip
    """The backend to load. `recorded`: the backend labels existing domains were embedded with; `measured`:
    chunks/s per backend on this CPU (called only when needed, memoised by the caller)."""
    if setting != "auto":
        return setting
    families = {family(r) for r in recorded} & set(BACKENDS)
    if len(families) == 1 and next(iter(families)) in have:
        return next(iter(families))
    if cuda or have == ["torch"]:
        return "torch"
    speeds = {b: s for b, s in measured().items() if b in have}
    return max(speeds, key=speeds.get) if speeds else "torch"


SAMPLE = ("Chunks of a manual, a policy or a source file are embedded in batches; each holds a few sentences "
          "about one topic, with names, numbers and words of the domain, like this one: ")  # fmt: skip


def measure(build: Callable[[str], object], backends: list[str], *, n: int = 48) -> dict[str, float]:
    """chunks/s of each backend on the same `n` ~200-token texts (after a warm-up batch)."""
    texts = [f"{SAMPLE * 4} item {i}." for i in range(n)]
    out: dict[str, float] = {}
    for b in backends:
        emb = build(b)
        emb.embed_documents(texts[:4])  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        emb.embed_documents(texts)  # type: ignore[attr-defined]
        out[b] = round(n / (time.perf_counter() - t0), 2)
    return out
