"""Load generator and embedder weights from a model setting (built-in name, HF id, folder or .gguf)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import LoragError
from assistant.models.cache import ModelCache

if TYPE_CHECKING:
    import torch


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


def plain_embedder_layout(folder: Path) -> dict[str, Any] | None:
    """The pooling and tokenizer settings of a sentence-transformers folder made of Transformer -> mean or CLS
    pooling [-> Normalize] (most embedders, all-MiniLM-L6-v2 included); None for anything else."""
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or modules[0].get("path"):
            return None
        pool = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        modes = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v]
        if (
            modes not in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"])
            or pool.get("include_prompt") is False
        ):
            return None
        st = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if (folder / "config_sentence_transformers.json").is_file():
            extra = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
            if extra.get("prompts") and any(extra["prompts"].values()) or extra.get("default_prompt_name"):
                return None  # prompts are prepended by sentence-transformers: leave it to that library
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return {
        "pooling": "mean" if modes == ["pooling_mode_mean_tokens"] else "cls",
        "max_seq_length": st.get("max_seq_length"),
        "do_lower_case": bool(st.get("do_lower_case")),
    }


GPU_BATCH = 256  # on CUDA in float16, large batches keep the GPU busy; memory is no concern at embedder sizes


def load_embedder(
    spec: str,
    cache: ModelCache,
    *,
    device: str = "auto",
    batch_size: int = 64,
    backend: str = "torch",
    cpu_bf16: bool = False,
) -> Any:
    """The dense embedder of a model setting. torch: with transformers alone when the folder has the usual
    Transformer -> pooling -> Normalize layout (same vectors, a much faster start; float16 and batches of at
    least GPU_BATCH on CUDA), else sentence-transformers. onnx-fp32: the float32 ONNX export of that layout run by
    onnxruntime (made once, see ModelCache.onnx_fp32); openvino-bf16: that file run by OpenVINO in bfloat16; onnx /
    openvino: the int8 export (ModelCache.onnx_int8); on the CPU, without loading torch's model. cpu_bf16: torch
    on the CPU runs its matrix products in bfloat16 (TransformersEmbedder)."""
    from assistant.embedding import SentenceTransformerEmbedder, TransformersEmbedder

    where = cache.resolve(spec)
    layout = plain_embedder_layout(Path(where)) if Path(where).is_dir() else None
    if backend != "torch":
        return _load_onnx_embedder(spec, cache, where, layout, backend, batch_size)
    if layout is None:
        return SentenceTransformerEmbedder(load_sentence_transformer(spec, cache, device=device), spec, batch_size)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModel.from_pretrained(where)
    except OSError as e:
        raise LoragError(f"could not load embedder '{spec}' from {where}: {e}") from e
    dev = pick_device(device)
    if dev == "cuda":
        model.half()
        batch_size = max(batch_size, GPU_BATCH)
    model.to(dev).eval()
    return TransformersEmbedder(model, tokenizer, spec, batch_size=batch_size, cpu_bf16=cpu_bf16, **layout)


def _load_onnx_embedder(
    spec: str, cache: ModelCache, where: str, layout: dict | None, backend: str, batch_size: int
) -> Any:
    import json

    from assistant.embedding_onnx import OnnxEmbedder
    from assistant.models.backends import BACKENDS

    if backend not in BACKENDS:
        raise LoragError(f"models.embedder_backend '{backend}' is not one of auto, {', '.join(BACKENDS)}")
    if layout is None:
        raise LoragError(
            f"embedder '{spec}' is not a plain sentence-transformers folder (Transformer -> mean or CLS "
            f"pooling -> Normalize), so the {backend} backend cannot run it",
            hint="set models.embedder_backend: torch",
        )
    from transformers import AutoTokenizer

    runtime, precision = {
        "onnx-fp32": ("onnx", "float32"),
        "onnx": ("onnx", "int8"),
        "openvino": ("openvino", "int8"),
        "openvino-bf16": ("openvino", "bfloat16"),
    }[backend]
    onnx_file = cache.onnx_file(spec, backend)
    dim = int(json.loads((Path(where) / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    tokenizer = AutoTokenizer.from_pretrained(where)
    return OnnxEmbedder(
        onnx_file,
        tokenizer,
        spec,
        runtime=runtime,
        precision=precision,
        dim=dim,
        batch_size=batch_size,
        **layout,
    )


def embedder_backend(settings: Any, cache: ModelCache, recorded: list[str] | None = None) -> str:
    """The backend models.embedder_backend picks here (see assistant.models.backends; `recorded`: the backend
    labels of the existing domains, for `auto`); under `auto`, openvino-bf16 on a CPU with native bfloat16 (with
    OpenVINO installed), else on a CPU onnx-fp32 embeds queries and torch documents."""
    from assistant.models import backends

    m = settings.models
    if m.embedder_backend not in ("auto", "torch") and not backends.installed(m.embedder_backend):
        missing = ", ".join(p for p in backends.NEEDS[m.embedder_backend] if not backends.installed_module(p))
        raise LoragError(
            f"models.embedder_backend is '{m.embedder_backend}' but {missing} is not installed",
            hint="pip install 'lorag[fast]', or set models.embedder_backend: auto",
        )

    if m.embedder_backend != "auto":
        return m.embedder_backend
    where = Path(cache.resolve(m.embedder))
    have = backends.available() if where.is_dir() and plain_embedder_layout(where) else ["torch"]
    # auto's ONNX backends are for a CPU; pick_device imports torch, which the tokenizer's transformers imports anyway
    on_cpu = not {"onnx-fp32", "openvino-bf16"} & set(have) or pick_device(m.device) == "cpu"
    # OpenVINO in bfloat16: on a CPU with native bfloat16, unless bfloat16 is turned off (models.embedder_cpu_bf16)
    bf16 = "openvino-bf16" in have and m.embedder_cpu_bf16 != "off" and backends.cpu_bf16()
    return backends.choose(m.embedder_backend, recorded=recorded or [], have=have, on_cpu=on_cpu, bf16=bf16)


def _torch_bf16(settings: Any, choice: str) -> bool:
    """torch's embedding in bfloat16 on the CPU (vectors at cosine > 0.9999 to float32's): models.embedder_cpu_bf16."""
    from assistant.models import backends

    m = settings.models
    return choice in ("torch", "onnx-fp32") and (
        m.embedder_cpu_bf16 == "on"
        or (m.embedder_cpu_bf16 == "auto" and m.embedder_backend == "auto" and backends.cpu_bf16())
    )


def embedder_backend_words(settings: Any, choice: str) -> str:
    """What embeds here, in words, without loading the model: 'openvino-bf16', 'onnx-fp32 for queries, torch
    for documents', 'torch in bfloat16' (`choice`: embedder_backend's, as embedder_for loads it)."""
    torch = "torch in bfloat16" if _torch_bf16(settings, choice) else "torch"
    if settings.models.embedder_backend == "auto" and choice == "onnx-fp32":
        return f"onnx-fp32 for queries, {torch} for documents"
    return torch if choice == "torch" else choice


def embedder_for(settings: Any, cache: ModelCache, recorded: list[str] | None = None) -> Any:
    """The dense embedder the settings ask for, its backend chosen by models.embedder_backend (embedder_backend)."""

    m = settings.models
    kw: dict[str, Any] = {"device": m.device, "batch_size": settings.ingest.embed_batch_size}
    choice = embedder_backend(settings, cache, recorded)
    bf16 = _torch_bf16(settings, choice)
    if m.embedder_backend == "auto" and choice == "onnx-fp32":
        # queries by the float32 ONNX export, documents by torch (faster in batches), loaded on first need
        from assistant.embedding_split import SplitEmbedder

        queries = load_embedder(m.embedder, cache, backend="onnx-fp32", **kw)
        return SplitEmbedder(
            queries,
            lambda: load_embedder(m.embedder, cache, backend="torch", cpu_bf16=bf16, **kw),
            backend=f"torch:cpu:{'bfloat16' if bf16 else 'float32'}",
        )
    return load_embedder(m.embedder, cache, backend=choice, cpu_bf16=bf16 and choice == "torch", **kw)


def load_cross_encoder(spec: str, cache: ModelCache, *, device: str = "auto") -> Any:
    return _load_st("CrossEncoder", "reranker", spec, cache, device)
