"""Which runtime computes the dense embedder's vectors (models.embedder_backend).

torch: transformers (float32 on CPU, float16 on CUDA). onnx / openvino: the int8 ONNX export run by onnxruntime /
OpenVINO on the CPU, opt-in (faster, at a cost in retrieval quality). `auto`: the backend the existing index was
embedded with (so a query matches its index), else torch.
"""

from __future__ import annotations

import importlib.util
from typing import Iterable

BACKENDS = ("torch", "onnx", "openvino")
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


def choose(setting: str, *, recorded: Iterable[str], have: list[str]) -> str:
    """The backend to load. `recorded`: the backend labels existing domains were embedded with. `auto` never picks
    an int8 backend on its own: they change 7-9% of the top-10 passages (benchmarks/RESULTS.md, embedder backends)."""
    if setting != "auto":
        return setting
    families = {family(r) for r in recorded} & set(BACKENDS)
    if len(families) == 1 and next(iter(families)) in have:
        return next(iter(families))
    return "torch"
