"""The training benchmark's lorag arms (benchmarks/bench_train_gpu.py): each a recipe's keys against the CUDA
default (`lorag`), and `_...` keys that set a finetune.accel module constant for that arm alone (the switches
of code paths that are no recipe key: the default before a change stays measurable beside it).
"""

from __future__ import annotations

import contextlib

# the LoRA recipe every lorag arm trains with (bench_train_gpu.py's and bench_train_multigpu.py's), beside the
# arms' own data, sizes and variant keys; the plain trl and Unsloth arms set the same values in their libraries
RECIPE = dict(
    domain="bench",
    lora_r=16,
    lora_alpha=32,
    save_steps=10**6,
    logging_steps=10,
    eval_fraction_steps=1.0,
    warmup_ratio=0.0,
    lr_scheduler="linear",
)
_DROP = dict(lora_dropout=0.05)  # the variants measured before lorag's default became 0 (CUDA graphs need 0)
_PADDED = dict(batching="padded", group_by_length=True, liger=True, gradient_checkpointing=True, **_DROP)
VARIANTS = {  # lorag's trainer choices to compare; "lorag" is the shipped default for CUDA (TrainConfig defaults)
    "lorag": dict(),
    "padded": dict(
        batching="padded"
    ),  # length-grouped padded batches, one graph shape per length (lorag's CUDA default before packed)
    "peft-lora": dict(fused_lora=False),  # peft's own LoRA forward (lorag's default before fused_lora)
    "noshare": dict(share_graphs=False),
    "nofp8": dict(fp8_matmuls=False),  # every base GEMM in bf16 (lorag's default before fp8_matmuls)
    "addmm": dict(fp8_lora_in_gemm=False),  # the adapter's delta added after the FP8 GEMMs (lorag's default before)
    "join16": dict(_join_multiple=16),  # ...inside them, its rank padded to 16 inner columns, not 128 (slower)
    "nofastacc": dict(fp8_fast_accum=False),  # the forward FP8 GEMMs accumulate in float32 (default before)
    # FP8 GEMMs only for base weights from 8M elements (default before: at 1B not q/o, at 8B not k/v)
    "fp8big": dict(_fp8_min_elements=1 << 23),
    # the checkpointed layers' MLPs over token tiles (default 1: the whole MLP at once)
    "tiles-auto": dict(recompute_mlp_tiles="auto"),  # tiles where layer inputs are offloaded (at 8B: 4)
    "tiles2": dict(recompute_mlp_tiles=2),
    "tiles4": dict(recompute_mlp_tiles=4),
    "tiles8": dict(recompute_mlp_tiles=8),
    "keep-h": dict(_gated_mlp=False),  # a gated MLP's down projection keeps its input (lorag's default before)
    # ...keeps the gate's operands, and the recompute computes the product too (lorag's default before)
    "product-h": dict(_defer_h=False),
    # ...and with the product deferred, its gradient made whole (lorag's default before)
    "whole-dh": dict(_chunked_dh=False),
    "notrim": dict(_trim_head=False),  # no hand-back of free cached memory before the head (lorag's default before)
    # a recompute keeps 4-bit weights dequantized for backward, not as FP8 operands (lorag's default before)
    "keep-w16": dict(_keep_fp8_operand=False),
    "chunks8": dict(_chunks=8),  # a gated product and its gradient made in 8 row chunks, not 4 (lorag's default before)
    "flash-b64": dict(sdpa_backend="flash", graph_bucket=64),
    "noskip": dict(recompute_skip_unread=False),  # the recompute computes every output (lorag's default before)
    "b64": dict(graph_bucket=64),
    "noskip-b64": dict(recompute_skip_unread=False, graph_bucket=64),
    "flash-b32": dict(
        sdpa_backend="flash", graph_bucket=32
    ),  # every layer captures its own graphs (lorag's default before share_graphs)
    "offload": dict(offload_activations=True),  # checkpointed layers' inputs in pinned CPU memory until backward
    "nooffload": dict(offload_activations=False),  # ... on the GPU ("auto" decides by their size)
    "offload-tiles2": dict(offload_activations=True, recompute_mlp_tiles=2),  # offloaded, MLP recomputed in 2 tiles
    "nographs": dict(cuda_graphs=False),  # the same step run eagerly (gradient checkpointing as usual)
    "keep2": dict(keep_activations=2),
    "graphs-b256": dict(graph_bucket=256),
    "graphs-b32": dict(batch=32, lr_scale=1.41),
    # kept activations (no recompute on those layers) in smaller micro-batches: still 16 rows per optimizer step
    "b4": dict(batch=4, grad_accum=4),
    "keep-b4": dict(batch=4, grad_accum=4, keep_activations=-1),
    "keep12-b4": dict(batch=4, grad_accum=4, keep_activations=12),
    "keep8-b8": dict(batch=8, grad_accum=2, keep_activations=8),
    "keep6-b8": dict(batch=8, grad_accum=2, keep_activations=6),
    "keep-b2": dict(batch=2, grad_accum=8, keep_activations=-1),
    "b2": dict(batch=2, grad_accum=8),
    # the same inside each 16-row step (micro_batch): the data order of "lorag", each pass cut to its longest row
    "keep-mb2": dict(micro_batch=2, keep_activations=-1),
    "keep-mb4": dict(micro_batch=4, keep_activations=-1),
    "mb2": dict(micro_batch=2),
    # each LoRA Linear as one autograd node without peft's output-sized elementwise passes
    "fused": dict(fused_lora=True),
    "fused-keep-mb2": dict(fused_lora=True, micro_batch=2, keep_activations=-1),
    "fused-keep1": dict(fused_lora=True, keep_activations=1),
    # FlashAttention-2 instead of cuDNN's attention: no cuDNN plans built per shape during the captures
    "flash": dict(sdpa_backend="flash"),
    "fused-flash": dict(fused_lora=True, sdpa_backend="flash"),
    "fused-flash-keep1": dict(fused_lora=True, sdpa_backend="flash", keep_activations=1),
    "keep-b1": dict(batch=1, grad_accum=16, keep_activations=-1),
    "drop05": dict(**_DROP),  # lorag before CUDA graphs: LoRA dropout 0.05, eager
    "free-sdpa": dict(batching="padding_free", liger=True, gradient_checkpointing=True, **_DROP),
    "free-flex": dict(
        batching="padding_free", liger=True, gradient_checkpointing=True, attn_implementation="flex_attention", **_DROP
    ),
    "free-sdpa-nockpt": dict(batching="padding_free", liger=True, gradient_checkpointing=False, **_DROP),
    "padded-nockpt": dict(batching="padded", group_by_length=True, liger=True, gradient_checkpointing=False, **_DROP),
    # more rows per optimizer step (a small model is launch-bound), learning rate scaled with sqrt(batch)
    "padded-b32": dict(_PADDED, batch=32, lr_scale=1.41),
    "padded-b64": dict(_PADDED, batch=64, lr_scale=2.0),
    "free-b32": dict(
        batching="padding_free", liger=True, gradient_checkpointing=True, batch=32, lr_scale=1.41, **_DROP
    ),
    "free-b64": dict(batching="padding_free", liger=True, gradient_checkpointing=True, batch=64, lr_scale=2.0, **_DROP),
    # fewer launches and casts at the same batch: bf16 LoRA weights (lorag's default since), regional torch.compile
    "fp32lora": dict(
        batching="padded", group_by_length=True, liger=True, gradient_checkpointing=True, lora_dtype="float32", **_DROP
    ),
    "bf16lora": dict(
        batching="padded", group_by_length=True, liger=True, gradient_checkpointing=True, lora_dtype="bfloat16", **_DROP
    ),
    "compiled": dict(
        batching="padded",
        group_by_length=True,
        gradient_checkpointing=True,
        lora_dtype="bfloat16",
        compile_layers=True,
        **_DROP,
    ),  # Liger's layer kernels are off with compile (dynamo cannot trace them)
}


# arm keys that set a module's constant for that arm alone, not recipe keys: key -> (module under finetune.accel, name)
MODULE_CONSTANTS = {
    "_fp8_min_elements": ("fp8", "MIN_WEIGHT_ELEMENTS"),  # FP8 GEMMs from this many weight elements
    "_join_multiple": ("fp8", "JOIN_MULTIPLE"),  # a joined adapter's rank padded to this many inner columns
    "_gated_mlp": ("gated_mlp", "ENABLED"),
    "_defer_h": ("gated_mlp", "DEFER_IN_RECOMPUTE"),
    "_chunked_dh": ("gated_mlp", "OPERAND_GRADS_IN_CHUNKS"),
    "_trim_head": ("graphs", "TRIM_BEFORE_HEAD"),
    "_keep_fp8_operand": ("lora_node", "KEEP_FP8_OPERAND"),
    "_chunks": ("recomputed_input", "CHUNKS"),
}


def module_constants(spec: dict) -> contextlib.AbstractContextManager:
    """Pops the arm's MODULE_CONSTANTS keys from spec now; the context returned sets those constants inside, and
    the defaults again after, for the arms that follow in this process."""
    wanted = [(*MODULE_CONSTANTS[key], spec.pop(key)) for key in list(spec) if key in MODULE_CONSTANTS]
    return _constants_set(wanted)


@contextlib.contextmanager
def _constants_set(wanted: list[tuple[str, str, object]]):
    import importlib

    before = []
    try:
        for module, name, value in wanted:
            mod = importlib.import_module(f"finetune.accel.{module}")
            before.append((mod, name, getattr(mod, name)))
            setattr(mod, name, value)
        yield
    finally:
        for mod, name, value in before:
            setattr(mod, name, value)
