"""Load generator and embedder weights from a model setting (built-in name, HF id, folder or .gguf)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import LoragError
from assistant.models.cache import ModelCache

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def pick_device(setting: str) -> str:
    """'auto' means CUDA when present, then Apple MPS, else CPU."""
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise LoragError("models.device is 'cuda' but no CUDA device is visible", hint="set models.device: auto")
    return setting


def pick_dtype(setting: str, device: str) -> "torch.dtype":
    import torch

    if setting == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32  # CPU matmuls in bf16 are slower than fp32 on most CPUs
    return getattr(torch, setting)


def load_causal_lm(spec: str, cache: ModelCache, *, device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """Return (model, tokenizer) in eval mode on the chosen device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every `lorag ask` is noise; errors still show
    where = cache.resolve(spec)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    kwargs: dict[str, Any] = {}
    path = Path(where)
    if path.suffix == ".gguf":  # a GGUF file given directly: transformers dequantises it (slow; prefer a folder)
        kwargs["gguf_file"] = path.name
        where = str(path.parent)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype, **kwargs)
    except OSError as e:
        raise LoragError(f"could not load generator '{spec}' from {where}: {e}") from e
    model.to(dev).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _load_st(cls_name: str, role: str, spec: str, cache: ModelCache, device: str) -> Any:
    import sentence_transformers
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    where = cache.resolve(spec)
    try:
        return getattr(sentence_transformers, cls_name)(where, device=pick_device(device))
    except OSError as e:
        raise LoragError(f"could not load {role} '{spec}' from {where}: {e}") from e


def load_sentence_transformer(spec: str, cache: ModelCache, *, device: str = "auto") -> Any:
    return _load_st("SentenceTransformer", "embedder", spec, cache, device)


def load_cross_encoder(spec: str, cache: ModelCache, *, device: str = "auto") -> Any:
    return _load_st("CrossEncoder", "reranker", spec, cache, device)
