"""The embedder's transformer run by onnxruntime or OpenVINO from an ONNX file, float32 or int8 (see
assistant.models.onnx_export); tokenising, pooling and normalising are the torch path's (PooledEmbedder).

OpenVINO in bfloat16 (precision "bfloat16", the float32 file computed with INFERENCE_PRECISION_HINT bf16, for a CPU
with native bfloat16): documents go through a THROUGHPUT compile (one stream per couple of cores), fed mini-batches
of DOC_BATCH texts by an AsyncInferQueue so the streams run at once, each request's output pooled in its callback;
a query goes through a LATENCY compile (all cores on one request: a single text is faster there). Both compiles
have the same precision, so queries and documents match; both give torch float32's vectors within cosine > 0.999
(benchmarks/RESULTS.md, embedder backends)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from assistant.embedding import PooledEmbedder, normalized, pool
from assistant.errors import LoragError

RUNTIMES = ("onnx", "openvino")
PRECISIONS = ("float32", "int8", "bfloat16")
DOC_BATCH = 4  # texts per OpenVINO infer request for documents: small batches keep every stream busy, pad little


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
        if precision == "bfloat16" and runtime != "openvino":
            raise LoragError("bfloat16 ONNX runs on the openvino runtime only", hint="models.embedder_backend: auto")
        self.runtime = runtime
        self.backend = f"{runtime}:cpu:{precision}"  # the label the index records (onnx:cpu:float32: torch's vectors)
        self._ov: _OpenVinoBf16 | None = None
        if precision == "bfloat16":
            self._ov = _OpenVinoBf16(onnx_file, threads)
            # what OpenVINO computes in: bfloat16 where the CPU has it, float32 (same vectors, slower) where not
            self.backend = f"openvino:cpu:{self._ov.precision}"
            self._run = self._ov.latency
        elif runtime == "onnx":
            self._run = _onnxruntime(onnx_file, threads)
        else:
            self._run = _openvino(onnx_file, threads)

    def _hidden(self, enc: dict[str, np.ndarray]) -> np.ndarray:
        return self._run({k: np.asarray(v, dtype=np.int64) for k, v in enc.items()})

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        enc = dict(self._tokenize(batch, "np"))
        hidden = np.asarray(self._hidden(enc), dtype=np.float32)
        return self._pool(hidden, enc["attention_mask"])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self._ov is None:
            return super().embed_documents(texts)
        return self._ov.embed_documents(self, texts)

    def embed_query(self, text: str) -> np.ndarray:
        # a single text, in one batch, on the LATENCY compile where there is one
        return super().embed_documents([text])[0]


class _OpenVinoBf16:
    """The float32 ONNX file compiled by OpenVINO in bfloat16 twice: LATENCY for a query (compiled now), THROUGHPUT
    with an AsyncInferQueue for documents (compiled on first need: a process that only searches never makes it)."""

    def __init__(self, path: Path, threads: int | None):
        try:
            import openvino as ov
        except ImportError:
            raise _missing("openvino") from None
        self._ov = ov
        self._core = ov.Core()
        self._model = self._core.read_model(str(path))
        self._threads = threads
        self.latency_model = self._compile("LATENCY")
        bf16 = self.latency_model.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
        self.precision = "bfloat16" if bf16 else "float32"
        self.wanted = [p.get_any_name() for p in self.latency_model.inputs]
        self._out = self.latency_model.output(0)
        self.throughput_model: Any = None
        self._queue: Any = None
        self._lock = threading.Lock()  # one document call at a time owns the queue and its callback
        self._latency_lock = threading.Lock()

    def _compile(self, hint: str) -> Any:
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "bf16"}
        if self._threads:
            config["INFERENCE_NUM_THREADS"] = self._threads
        return self._core.compile_model(self._model, "CPU", config)

    def latency(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        # a compiled model's call reuses one infer request: one caller at a time (searches may come from threads)
        with self._latency_lock:
            return np.array(self.latency_model({k: feed[k] for k in self.wanted})[self._out], dtype=np.float32)

    def queue(self) -> Any:
        if self._queue is None:
            self.throughput_model = self._compile("THROUGHPUT")
            jobs = int(self.throughput_model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self._queue = self._ov.AsyncInferQueue(self.throughput_model, max(1, jobs))
        return self._queue

    def embed_documents(self, emb: OnnxEmbedder, texts: Sequence[str]) -> np.ndarray:
        """PooledEmbedder.embed_documents's vectors (longest first, padded per batch, pooled, normalised), the
        batches DOC_BATCH texts each and in flight on every stream at once; rows in the order of `texts`."""
        texts, order = emb._prepared(texts)
        out = np.zeros((len(texts), emb.dim), dtype=np.float32)
        failed: list[BaseException] = []
        pooling = emb.pooling

        def done(request: Any, userdata: tuple[np.ndarray, np.ndarray]) -> None:
            # the output tensor is the request's own buffer, reused by its next batch: pooled here, into `out`.
            # Runs on OpenVINO's threads, which may also release it last: it holds nothing of the embedder's, whose
            # compiled models can't be destroyed from one of their own threads
            try:
                idx, mask = userdata
                hidden = np.asarray(request.get_output_tensor(0).data, dtype=np.float32)
                out[idx] = normalized(pool(hidden, mask, pooling))
            except BaseException as e:  # raised after wait_all, in the caller's thread
                failed.append(e)

        with self._lock:
            queue = self.queue()
            queue.set_callback(done)
            try:
                for i in range(0, len(order), DOC_BATCH):
                    idx = order[i : i + DOC_BATCH]
                    enc = emb._tokenize([texts[j] for j in idx], "np")
                    feed = {k: np.asarray(enc[k], dtype=np.int64) for k in self.wanted}
                    queue.start_async(feed, (idx, np.asarray(enc["attention_mask"])))
            finally:
                queue.wait_all()
                queue.set_callback(_no_callback)  # the queue outlives this call: let go of its vectors
        if failed:
            raise failed[0]
        return out


def _no_callback(request: Any, userdata: Any) -> None:
    """An idle AsyncInferQueue's callback: holds nothing."""


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
