"""Export a plain sentence-transformers embedder to ONNX and quantize its weights to int8, once.

torch's exporter writes the transformer (input ids -> last hidden state; pooling stays in Python, shared with
the torch path), onnxruntime's dynamic quantization stores the MatMul weights in int8, per output channel
(activations are quantized per batch at run time). onnxruntime runs the file; OpenVINO reads the same file.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from assistant.errors import LoragError

INT8_FILE = "model_int8.onnx"
OPSET = 17
QUANTIZATION = "dynamic int8, MatMul weights per channel"  # an export made otherwise is made again


def runtime_versions() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def export_int8(src: Path, out: Path) -> dict[str, Any]:
    """Write `out/model_int8.onnx` from the transformer in the sentence-transformers folder `src`; returns what the
    manifest records (file, sha256, inputs, versions)."""
    try:
        import onnx  # noqa: F401 - the quantizer needs it
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise LoragError(
            f"the onnx embedder backend needs onnxruntime and onnx ({e.name} is missing)",
            hint="pip install 'lorag[fast]', or set models.embedder_backend: torch",
        ) from None
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
        fp32 = Path(tmp) / "model.onnx"
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes: the axes above stay dynamic
            torch.onnx.export(
                LastHidden(),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
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
    digest = hashlib.sha256((out / INT8_FILE).read_bytes()).hexdigest()
    return {
        "file": str(out / INT8_FILE),
        "sha256": digest,
        "inputs": names,
        "opset": OPSET,
        "quantization": QUANTIZATION,
        **runtime_versions(),
    }
