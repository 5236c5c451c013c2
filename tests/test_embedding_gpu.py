"""GPU embedding: float16 on CUDA in large batches gives the float32 CPU vectors (cosine > 0.999), so an index
built on either is searched by the other without a re-embed. Runs only where CUDA is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant import index_record
from assistant.models.cache import ModelCache
from assistant.models.loading import GPU_BATCH, load_embedder
from tests.helpers.tiny_embedder import build_tiny_embedder

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TEXTS = [
    f"Section {i}: staff get {i % 40} days of leave; badges are reported within {i % 24} hours. " * (1 + i % 6)
    for i in range(600)
]


def _specs(tmp_path: Path) -> list[tuple[str, ModelCache]]:
    out = [(str(build_tiny_embedder(tmp_path / "tiny")), ModelCache(tmp_path / "cache"))]
    real = ModelCache(Path("~/.cache/lorag").expanduser())
    if real.is_pulled("all-minilm-l6-v2"):  # the built-in embedder, where `lorag models pull` has run
        out.append(("all-minilm-l6-v2", real))
    return out


def test_fp16_on_cuda_matches_fp32_on_cpu(tmp_path):
    for spec, cache in _specs(tmp_path):
        gpu = load_embedder(spec, cache, device="cuda", batch_size=64)
        cpu = load_embedder(spec, cache, device="cpu", batch_size=64)
        assert gpu.backend == "torch:cuda:float16" and cpu.backend == "torch:cpu:float32"
        assert gpu.batch_size >= GPU_BATCH
        g, c = gpu.embed_documents(TEXTS), cpu.embed_documents(TEXTS)
        assert g.dtype == np.float32 and np.allclose(np.linalg.norm(g, axis=1), 1, atol=1e-4)
        cos = (g * c).sum(1)
        assert cos.min() > 0.999, (spec, float(cos.min()))
        # an index embedded on the CPU is searched from the GPU as it is (and the other way round)
        assert index_record.mismatch(index_record.record_for(cpu), gpu) is None
        assert index_record.mismatch(index_record.record_for(gpu), cpu) is None
