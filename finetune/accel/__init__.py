"""lorag's training acceleration, a leaf package: it imports nothing from the rest of finetune/ or assistant/.

One entry point, used by finetune/train.py:

    plan = accel.decide(recipe, device, model_config=config, sequential=False)  # frozen, decided once
    with accel.process(plan) as proc:                   # allocator mode; restores patched modules at the end
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=plan.attn_implementation, ...)
        proc.restore(sys.modules[type(model).__module__])
        trainer = accel.trainer_class(SFTTrainer, plan, ...)(...)   # trl's own class on a plain plan
        applied = accel.apply(plan, trainer.model, max_tokens=...)  # fused LoRA, FP8, CUDA graphs
        try:
            trainer.train()
        finally:
            report = applied()                           # undone; what ran (graph shapes, fused layers)

`plan.lines()` says what the plan is and why anything is off; a recipe with `accel: off` gets plain
trl + peft. The parts: plan.py (the decision), apply.py (process and model changes, undone after),
trainer.py (trl's SFTTrainer without per-step GPU reads, with micro-batches and packed steps), packing.py
and varlen_attention.py (packed steps and their attention), lora_fused.py and lora_node.py (the LoRA Linear as
one autograd node), fp8.py and fp8_triton.py (FP8 base GEMMs, their quantization kernels), graphs.py and
graph_*.py (decoder layers as CUDA graphs), layers.py (decoder layers, attention window, SDPA kernels).

Private APIs it relies on, each where the public one is missing or too slow: torch's
`_flash_attention_forward` (only where `torch.nn.attention.varlen` is absent), `_scaled_mm` (FP8 GEMMs, only
where `torch.nn.functional.scaled_mm` is absent),
`torch.cuda.memory._set_allocator_settings`, `torch._foreach_*`; trl/transformers trainer members
(`_prepare_inputs`, `_track_num_input_tokens`, `_metrics`, `_total_train_tokens`, `_remove_unused_columns`);
peft's LoraLayer attributes. pyproject.toml bounds torch, transformers, trl and peft to the versions tested;
tests/test_accel_gpu.py (`pytest -m gpu`) runs the GPU paths.
"""

from __future__ import annotations

from .apply import Applied, apply, process
from .plan import Plan, PlanError, Recipe, decide


def trainer_class(base: type, plan: Plan, *, micro_rows: int = 0, multiple: int = 1) -> type:
    """The trainer class for the plan: lorag's (finetune/accel/trainer.py) over `base` (trl's SFTTrainer), or
    `base` itself on a plain plan."""
    if not plan.lorag_trainer:
        return base
    from .trainer import lorag_trainer

    return lorag_trainer(base, micro_rows=micro_rows, multiple=multiple, mask_free=plan.cuda_graphs)


__all__ = ["Applied", "Plan", "PlanError", "Recipe", "apply", "decide", "process", "trainer_class"]
