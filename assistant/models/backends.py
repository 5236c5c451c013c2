"""Which runtime computes the dense embedder's vectors (models.embedder_backend).

torch: transformers (float32 on CPU, float16 on CUDA). onnx-fp32: the float32 ONNX export run by onnxruntime on
the CPU: torch float32's vectors (cosine > 0.9999, so either searches and extends the other's index), a single
query embedded ~3x faster (torch's per-call overhead), batches at 0.88-0.97x torch's speed. onnx / openvino: the
int8 ONNX export run by onnxruntime / OpenVINO on the CPU, opt-in: its vectors differ (7-9% of the top-10
passages change). openvino-bf16: the float32 export run by OpenVINO in bfloat16, for a CPU with native bfloat16:
documents through a THROUGHPUT compile fed by an async queue (~3.3x torch float32's chunks/s), a query through a
LATENCY compile; vectors at cosine > 0.999 to torch float32's (torch-equivalent: either extends the other's index).

`auto`: an index embedded by an int8 backend keeps that backend (so a query matches its index). Otherwise (an
index of float32 vectors, or none yet), with no GPU, on a CPU with native bfloat16 where OpenVINO is installed
(lorag[fast]): openvino-bf16 (unless models.embedder_cpu_bf16 is off). Else, when onnxruntime and onnx are
installed and the embedder runs on the CPU: queries by onnx-fp32 and documents by torch float32, loaded on first
need (assistant.embedding_split: a query ~3x faster, batches at torch's speed, which beats onnxruntime's
0.88-0.97x; benchmarks/RESULTS.md, "embedder backends"); else torch. It never picks int8 on its own. Without
OpenVINO, on a CPU with native bfloat16 (cpu_bf16, models.embedder_cpu_bf16) `auto`'s torch runs its matrix
products in bfloat16 (documents; queries too where torch embeds them): vectors at cosine > 0.9999 to float32's
(torch-equivalent: either extends the other's index), batches ~1.7x faster.
"""

from __future__ import annotations

import importlib.util
from typing import Iterable

BACKENDS = ("torch", "onnx-fp32", "onnx", "openvino", "openvino-bf16")
NEEDS = {
    "torch": ("torch",),
    "onnx-fp32": ("onnxruntime", "onnx"),  # torch's exporter writes the file with onnx
    "onnx": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "onnxruntime", "onnx"),
    "openvino-bf16": ("openvino", "onnxruntime", "onnx"),  # the float32 export, as onnx-fp32's
}
FP32_ONNX = "onnx:cpu:float32"  # the label of onnx-fp32's vectors
OV_BF16 = "openvino:cpu:bfloat16"  # openvino-bf16's; "openvino:cpu:float32" where the CPU has no bfloat16
FLOAT_LABELS = {FP32_ONNX: "onnx-fp32", OV_BF16: "openvino-bf16", "openvino:cpu:float32": "openvino-bf16"}


def setting_of(label: str) -> str:
    """The backend setting that reproduces a recorded label: 'onnx:cpu:int8' -> 'onnx', 'onnx:cpu:float32' ->
    'onnx-fp32', 'openvino:cpu:bfloat16' -> 'openvino-bf16', 'torch:cuda:float16' -> 'torch'."""
    return FLOAT_LABELS.get(label) or label.split(":", 1)[0]


def torch_equivalent(label: str) -> bool:
    """Vectors that are torch's (float32 on a CPU, float16 on a GPU, bfloat16 matrix products on a CPU, float32
    ONNX, OpenVINO's bfloat16): an index of any of them serves the others; the probe check
    (assistant.index_record) confirms it."""
    return label in FLOAT_LABELS or label.split(":", 1)[0] == "torch"


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU flags (Linux /proc/cpuinfo) of native bfloat16 dot products


def cpu_bf16(cpuinfo: str | None = None) -> bool:
    """The CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), so `auto` embeds documents with torch's matrix
    products in bfloat16: 1.7x float32's chunks/s at cosine > 0.9999 to its vectors. `cpuinfo`: /proc/cpuinfo's
    text (read here when None; False where there is none)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(f in flags for f in BF16_FLAGS)


def installed_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def installed(backend: str) -> bool:
    return all(installed_module(m) for m in NEEDS[backend])


def available() -> list[str]:
    return [b for b in BACKENDS if installed(b)]


def choose(setting: str, *, recorded: Iterable[str], have: list[str], on_cpu: bool = True, bf16: bool = False) -> str:
    """The backend to load. `recorded`: the backend labels existing domains were embedded with; `have`: the
    backends that can run this embedder here; `on_cpu`: the torch path would run on the CPU (no GPU); `bf16`: the
    CPU multiplies bfloat16 natively (cpu_bf16) and bfloat16 is allowed (models.embedder_cpu_bf16 not off).
    `auto` picks the fastest measured backend of torch's vectors: openvino-bf16 on a bfloat16 CPU, else onnx-fp32
    (queries; torch documents) on a CPU. It never picks an int8 backend on its own: they change 7-9% of the top-10
    passages (benchmarks/RESULTS.md, embedder backends)."""
    if setting != "auto":
        return setting
    recorded = list(recorded)
    if all(torch_equivalent(r) for r in recorded):
        if on_cpu and bf16 and "openvino-bf16" in have:
            return "openvino-bf16"
        return "onnx-fp32" if on_cpu and "onnx-fp32" in have else "torch"
    settings = {setting_of(r) for r in recorded}
    if len(settings) == 1 and next(iter(settings)) in have:
        return next(iter(settings))
    return "torch"
