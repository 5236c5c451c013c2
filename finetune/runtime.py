"""What a training run does on this machine, and the one line that says how it trained.

`resolve_runtime` turns a recipe (finetune/config.py) into concrete choices for the device: the
quantization, batching, dtypes, Liger kernels, CUDA graphs, FP8 GEMMs and the allocator's mode, each
with the reason when a choice is off. `describe_runtime` is the run summary the CLI and the app print.
`cuda_allocator` applies the allocator's mode for the run's duration, `module_restored` undoes
what kernel libraries patch into a model's modeling module: a run leaves the process as it found it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from assistant.errors import LoragError
from finetune.config import TrainConfig
from finetune.fp8 import unsupported_reason
from finetune.varlen_attention import unsupported_reason as varlen_unsupported


def _liger_unimportable() -> str | None:
    """Why Liger's transformers integration cannot be used here, or None. It imports what the trainer will
    apply, here with the run's other imports, not inside the timed trainer.train() (in a new process
    the import loads Liger's ops and probes its backends)."""
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception as e:  # not installed, or installed against another transformers/triton
        return f"liger_kernel.transformers does not import: {type(e).__name__}: {e}"
    return None


def resolve_runtime(cfg: TrainConfig, device: str) -> dict[str, Any]:
    """Concrete choices for this machine: quantization, batching, dtype, liger."""
    import torch

    cuda = device == "cuda"
    quant = cfg.quantization if cfg.quantization != "auto" else ("nf4" if cuda else "none")
    if quant == "nf4" and not cuda:
        try:
            import bitsandbytes  # noqa: F401  (0.45+ has CPU NF4 kernels)
        except ImportError as e:
            raise LoragError("quantization 'nf4' needs bitsandbytes", hint="pip install bitsandbytes") from e
    # graphs need the same math on every replay: no dropout, nothing compiled around them
    graphable = next((why for off, why in (
        (not cfg.cuda_graphs, "off in the config"),
        (not cuda, "CUDA only"),
        (cfg.lora_dropout > 0, "needs lora_dropout 0 (a replayed recompute would draw other dropout masks)"),
        (cfg.compile_layers, "not with compile_layers"),
    ) if off), None)  # fmt: skip
    varlen_off = varlen_unsupported(device)
    # packed steps have one shape for the graphs to capture and ~1% padding (finetune/packing.py); without
    # graphs padded + length-grouped batches measured as fast as padding-free on the H100 at batch 16
    packs = graphable is None and varlen_off is None and cfg.attn_implementation == "sdpa" and not cfg.micro_batch
    batching = cfg.batching if cfg.batching != "auto" else ("packed" if packs else "padded")
    if batching == "packed" and varlen_off is not None:
        raise LoragError(f"batching 'packed' needs FlashAttention's varlen kernel: {varlen_off}",
                         hint="set batching: padded (or auto) in the recipe")  # fmt: skip
    liger_off = next((why for off, why in (
        (not cfg.liger, "off in the config"),
        (not cuda, "CUDA only"),
        (cfg.compile_layers, "not with compile_layers"),  # dynamo cannot trace Liger's autograd functions
    ) if off), None) or _liger_unimportable()  # fmt: skip
    bf16 = cuda and torch.cuda.is_bf16_supported()
    lora_dtype = cfg.lora_dtype if (bf16 and quant == "none") else "float32"
    graphs_off = graphable or ("padded or packed batching only" if batching not in ("padded", "packed") else None)
    fp8_off = next((why for off, why in (
        (not cfg.fp8_matmuls, "off in the config"),
        (not (cfg.fused_lora and cfg.lora_dropout == 0), "needs fused_lora and lora_dropout 0"),
        (cfg.compile_layers, "not with compile_layers"),
        (not cuda, "CUDA only"),
        (not bf16, "needs bf16 compute"),
    ) if off), None) or unsupported_reason(device)  # fmt: skip
    # the user's own allocator settings win (read when a run starts, never at import)
    user_alloc = os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF")
    expandable = cuda and cfg.expandable_segments and not user_alloc
    return {"device": device, "quantization": quant, "batching": batching, "bf16": bf16,
            "liger": liger_off is None, "liger_off": liger_off, "expandable_segments": expandable,
            "compile_layers": bool(cfg.compile_layers and cuda), "lora_dtype": lora_dtype,
            "cuda_graphs": graphs_off is None, "cuda_graphs_off": graphs_off, "fp8": fp8_off is None, "fp8_off": fp8_off}


@contextlib.contextmanager
def cuda_allocator(runtime: dict[str, Any]) -> Iterator[None]:
    """Inside, PyTorch's CUDA allocator grows its segments in place (runtime["expandable_segments"]); after
    the run it is back to its default for the rest of the process (the app's generation, another run, a
    benchmark's next arm). Segments already allocated keep the mode they were made with."""
    if not runtime.get("expandable_segments"):
        yield
        return
    import torch

    torch.cuda.memory._set_allocator_settings("expandable_segments:True")
    try:
        yield
    finally:
        torch.cuda.memory._set_allocator_settings("expandable_segments:False")


@contextlib.contextmanager
def module_restored(module: Any) -> Iterator[None]:
    """Inside, a model's modeling module may be patched; after, the names it had are put back (names added
    inside stay: a module may cache things lazily). Liger's kernels, applied by the trainer, replace a
    module's RMSNorm and MLP classes and its rotary function for the whole process: models made later (the
    app's, a benchmark's plain trl arm) would be built from Liger's classes."""
    saved = dict(vars(module))
    try:
        yield
    finally:
        for name, value in saved.items():
            if vars(module).get(name) is not value:
                setattr(module, name, value)


def describe_runtime(metrics: dict[str, Any], hyper: dict[str, Any]) -> str:
    """One line on how a run trained: device, method, speed, and why CUDA graphs were off (if they were)."""
    rt = hyper.get("runtime", {})
    method = "QLoRA NF4" if rt.get("quantization") == "nf4" else "LoRA"
    per_pass = rt.get("micro_batch", "?")
    rows = rt.get("batch_rows", per_pass)  # cards of older runs record only the rows per pass
    if rt.get("step_tokens"):
        batches = f"packed steps of {rt['step_tokens']:,} tokens (~{rows} rows)"
    else:
        batches = f"{rt.get('batching', '?')} batches of {rows}" + (f" in passes of {per_pass}" if rows != per_pass else "")
    world, accel_off = rt.get("world_size", 1), rt.get("accel_off_reason")
    if world > 1:  # several processes (finetune/distributed.py): each trains its share of a step
        batches += f" per process; {world} processes ({str(rt.get('distributed', 'ddp')).upper()}), global batch " \
                   f"{hyper.get('batch_size', '?')}" + (f": {', '.join(rt['accel_off'])} off ({accel_off})" if accel_off else "")
    parts = [f"on {rt.get('device', '?')}: {method}, {batches}"]
    if metrics.get("tokens_per_s"):
        parts.append(f"{metrics['tokens_per_s']:,.0f} tokens/s")
    if metrics.get("peak_gpu_mem_gb"):
        parts.append(f"{metrics['peak_gpu_mem_gb']:.2f} GB peak")
    if metrics.get("rows_over_max_length"):
        over, limit = metrics["rows_over_max_length"], hyper.get("max_seq_length", "?")
        parts.append(f"{over} of {over + metrics.get('train_rows', 0)} rows over max_seq_length ({limit} tokens) left out")
    if metrics.get("fused_lora_layers"):
        parts.append(f"{metrics['fused_lora_layers']} LoRA layers fused"
                     + (f", {metrics['fp8_layers']} with FP8 base GEMMs" if metrics.get("fp8_layers") else ""))
    if rt.get("device") == "cuda" and rt.get("fp8_off") not in (None, "off in the config", accel_off):
        parts.append(f"FP8 GEMMs off ({rt['fp8_off']})")  # a GPU that could not: say why it trained slower
    graphs = metrics.get("cuda_graphs")
    if isinstance(graphs, dict):
        kept = f", {graphs['kept_layers']} layers kept" if graphs.get("kept_layers") else ""
        took = f" ({graphs['graphs']} captured in {graphs['capture_s']:.1f} s)" if graphs.get("graphs") else ""
        skipped = f", recompute skips {'/'.join(graphs['unread'])}" if graphs.get("unread") else ""
        parts.append(f"CUDA graphs: {graphs.get('shapes', 0)} shapes{took}{kept}{skipped}"
                     + (f", eager: {graphs['eager_reason']}" if graphs.get("eager_reason") else ""))  # fmt: skip
    elif graphs and graphs != accel_off:
        parts.append(f"CUDA graphs off ({graphs})")
    return "; ".join(parts)
