"""Export a plain sentence-transformers embedder to ONNX (float32), and quantize that file's weights to int8.

torch's exporter writes the transformer (input ids -> last hidden state; pooling stays in Python, shared with
the torch path) as `model.onnx`, in float32: onnxruntime runs it with torch's vectors (cosine > 0.9999).
onnxruntime's dynamic quantization makes `model_int8.onnx` from it, MatMul weights in int8, per output channel
(activations are quantized per batch at run time). onnxruntime runs either file; OpenVINO reads the int8 one.
Each file is written under a temporary name and renamed, so a file either is whole or is absent.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from assistant.errors import LoragError

FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
OPSET = 17
QUANTIZATION = "dynamic int8, MatMul weights per channel"  # an export made otherwise is made again


def runtime_versions() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing(e: ImportError) -> LoragError:
    return LoragError(
        f"the onnx embedder backends need onnxruntime and onnx ({e.name} is missing)",
        hint="pip install 'lorag[fast]', or set models.embedder_backend: torch",
    )


def export_fp32(src: Path, out: Path) -> dict[str, Any]:
    """Write `out/model.onnx` from the transformer in the sentence-transformers folder `src`; returns what the
    manifest records (file, sha256, inputs, versions)."""
    try:
        import onnx  # noqa: F401 - torch's exporter writes the file with it
        import onnxruntime  # noqa: F401 - runs the file; its version is recorded
    except ImportError as e:
        raise _missing(e) from None
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(src))
    model = AutoModel.from_pretrained(str(src), dtype=torch.float32).eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    sample = tokenizer(["an example sentence", "another, longer example sentence"], padding=True, return_tensors="pt")

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            return self.model(**dict(zip(names, args))).last_hidden_state

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        staged = Path(tmp) / FP32_FILE
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes: the axes above stay dynamic
            torch.onnx.export(
                LastHidden(),
                tuple(sample[n] for n in names),
                str(staged),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        staged.replace(out / FP32_FILE)
    return {
        "file": str(out / FP32_FILE),
        "sha256": sha256_of(out / FP32_FILE),
        "inputs": names,
        "opset": OPSET,
        **runtime_versions(),
    }


def quantize_int8(fp32: Path, out: Path) -> dict[str, Any]:
    """Write `out/model_int8.onnx` from the float32 export `fp32`; returns what the manifest records."""
    try:
        import onnx  # noqa: F401 - the quantizer needs it
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise _missing(e) from None

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".quantize-") as tmp:
        staged = Path(tmp) / INT8_FILE
        # MatMul weights only, one scale per output channel: quantizing the embedding Gathers too, or one scale per
        # tensor, cost MiniLM's vectors a cosine of ~0.9 to float32 (measured); this keeps it at ~0.99
        root = logging.getLogger()  # the quantizer logs a "consider pre-processing" note on the root logger
        was, root.disabled = root.disabled, True
        try:
            quantize_dynamic(
                str(fp32), str(staged), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
            )
        finally:
            root.disabled = was
        staged.replace(out / INT8_FILE)
    return {
        "file": str(out / INT8_FILE),
        "sha256": sha256_of(out / INT8_FILE),
        "from_sha256": sha256_of(fp32),
        "quantization": QUANTIZATION,
        **runtime_versions(),
    }
