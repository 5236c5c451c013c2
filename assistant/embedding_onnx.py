"""The embedder's transformer run by onnxruntime or OpenVINO from an ONNX file, float32 or int8 (see
assistant.models.onnx_export); tokenising, pooling and normalising are the torch path's (PooledEmbedder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from assistant.embedding import PooledEmbedder
from assistant.errors import LoragError

RUNTIMES = ("onnx", "openvino")
PRECISIONS = ("float32", "int8")


class OnnxEmbedder(PooledEmbedder):
    def __init__(
        self,
        onnx_file: Path,
        tokenizer: Any,
        name: str,
        *,
        runtime: str,
        dim: int,
        precision: str = "int8",
        threads: int | None = None,
        **kw: Any,
    ):
        super().__init__(tokenizer, name, dim=dim, **kw)
        if runtime not in RUNTIMES:
            raise LoragError(f"unknown ONNX runtime '{runtime}'", hint=f"one of {', '.join(RUNTIMES)}")
        if precision not in PRECISIONS:
            raise LoragError(f"unknown ONNX precision '{precision}'", hint=f"one of {', '.join(PRECISIONS)}")
        self.runtime = runtime
        self.backend = f"{runtime}:cpu:{precision}"  # the label the index records (onnx:cpu:float32: torch's vectors)
        self._run = _onnxruntime(onnx_file, threads) if runtime == "onnx" else _openvino(onnx_file, threads)

    def _hidden(self, enc: dict[str, np.ndarray]) -> np.ndarray:
        return self._run({k: np.asarray(v, dtype=np.int64) for k, v in enc.items()})

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        enc = dict(self._tokenize(batch, "np"))
        hidden = np.asarray(self._hidden(enc), dtype=np.float32)
        return self._pool(hidden, enc["attention_mask"])


def _missing(package: str) -> LoragError:
    return LoragError(
        f"models.embedder_backend needs the '{package}' package, which is not installed",
        hint="pip install 'lorag[fast]', or set models.embedder_backend: torch (or auto)",
    )


def _onnxruntime(path: Path, threads: int | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise _missing("onnxruntime") from None
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    return lambda feed: session.run(None, {k: feed[k] for k in wanted})[0]


def _openvino(path: Path, threads: int | None) -> Any:
    try:
        import openvino as ov
    except ImportError:
        raise _missing("openvino") from None
    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    wanted = [p.get_any_name() for p in compiled.inputs]
    out = compiled.output(0)
    return lambda feed: compiled({k: feed[k] for k in wanted})[out]
