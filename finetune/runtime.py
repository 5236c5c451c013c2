"""The run summary: one line on how a training run trained, from what its card recorded.

The choices themselves (quantization, batching, kernels, CUDA graphs, FP8 GEMMs) are the run's
acceleration plan (finetune/accel/plan.py), recorded as hyperparameters["runtime"]; this line says what
the CLI and the app print after a run, including each speed-up that was off on a GPU and why.
"""

from __future__ import annotations

from typing import Any

_NAMES = {
    "packed": "packed steps",
    "liger": "Liger kernels",
    "fused_lora": "fused LoRA",
}  # said here; graphs, FP8 below


def describe_runtime(metrics: dict[str, Any], hyper: dict[str, Any]) -> str:
    """One line on how a run trained: device, method, speed, and why CUDA graphs were off (if they were)."""
    rt = hyper.get("runtime", {})
    method = "QLoRA NF4" if rt.get("quantization") == "nf4" else "LoRA"
    per_pass = rt.get("micro_batch", "?")
    rows = rt.get("batch_rows", per_pass)  # cards of older runs record only the rows per pass
    if rt.get("step_tokens"):
        batches = f"packed steps of {rt['step_tokens']:,} tokens (~{rows} rows)"
    else:
        batches = f"{rt.get('batching', '?')} batches of {rows}" + (
            f" in passes of {per_pass}" if rows != per_pass else ""
        )
    world, accel_off = rt.get("world_size", 1), rt.get("accel_off_reason")
    if world > 1:  # several processes (finetune/distributed.py): each trains its share of a step
        batches += (
            f" per process; {world} processes ({str(rt.get('distributed', 'ddp')).upper()}), global batch "
            f"{hyper.get('batch_size', '?')}"
            + (f": {', '.join(rt['accel_off'])} off ({accel_off})" if accel_off else "")
        )
    parts = [f"on {rt.get('device', '?')}: {method}, {batches}"]
    if rt.get("accel") is False:
        parts.append("acceleration off (accel: off in the recipe): plain trl + peft")
    if metrics.get("tokens_per_s"):
        parts.append(f"{metrics['tokens_per_s']:,.0f} tokens/s")
    if metrics.get("peak_gpu_mem_gb"):
        parts.append(f"{metrics['peak_gpu_mem_gb']:.2f} GB peak")
    if metrics.get("rows_over_max_length"):
        over, limit = metrics["rows_over_max_length"], hyper.get("max_seq_length", "?")
        parts.append(
            f"{over} of {over + metrics.get('train_rows', 0)} rows over max_seq_length ({limit} tokens) left out"
        )
    if metrics.get("fused_lora_layers"):
        parts.append(
            f"{metrics['fused_lora_layers']} LoRA layers fused"
            + (f", {metrics['fp8_layers']} with FP8 base GEMMs" if metrics.get("fp8_layers") else "")
            + (
                f", {metrics['gated_mlps_recomputed']} MLPs' gated products recomputed in backward"
                if metrics.get("gated_mlps_recomputed")
                else ""
            )
        )
    # a GPU run: each speed-up that could not run, and why (the note says it at once when dropout turned them off;
    # several processes say it once, above)
    why_off = rt.get("device") == "cuda" and rt.get("accel") is not False and not rt.get("note")
    if why_off:
        for what, why in (rt.get("off") or {}).items():
            if what in _NAMES and why not in ("off in the config", accel_off):
                parts.append(f"{_NAMES[what]} off ({why})")
    if why_off and rt.get("fp8_off") not in (None, "off in the config", accel_off):
        parts.append(f"FP8 GEMMs off ({rt['fp8_off']})")  # a GPU that could not: say why it trained slower
    graphs = metrics.get("cuda_graphs")
    if isinstance(graphs, dict):
        kept = f", {graphs['kept_layers']} layers kept" if graphs.get("kept_layers") else ""
        took = f" ({graphs['graphs']} captured in {graphs['capture_s']:.1f} s)" if graphs.get("graphs") else ""
        skipped = f", recompute skips {'/'.join(graphs['unread'])}" if graphs.get("unread") else ""
        held = ", layer inputs held in CPU memory" if graphs.get("offloaded") else ""
        tiles = f", MLP in {graphs['mlp_tiles']} token tiles" if (graphs.get("mlp_tiles") or 1) > 1 else ""
        if graphs.get("mlp_tiles_off") and not tiles:
            tiles = f", MLP tiles off ({graphs['mlp_tiles_off']})"
        parts.append(
            f"CUDA graphs: {graphs.get('shapes', 0)} shapes{took}{kept}{skipped}{held}{tiles}"
            + (f", eager: {graphs['eager_reason']}" if graphs.get("eager_reason") else "")
        )
    elif graphs and graphs != accel_off and rt.get("accel") is not False and not rt.get("note"):
        parts.append(f"CUDA graphs off ({graphs})")
    if rt.get("note"):  # what the recipe gave up (lora_dropout > 0 on a GPU)
        parts.append(rt["note"])
    return "; ".join(parts)
