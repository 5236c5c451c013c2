"""The training benchmark's MFU count (benchmarks/bench_train_gpu.py): the parameters counted, FLOPs per
token, the GPU's bf16 peak, and `--check`'s report of a model's shapes and counts from its config alone."""

from __future__ import annotations

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from random_llama import RANDOM_LLAMAS, random_llama_config
from train_args import random_size

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}  # dense bf16 tensor-core peak (SXM)


def counted_parameters(model) -> int:
    """N of the MFU: every weight but the input embeddings and LoRA's, plus the output head once (an
    untied head is a parameter of its own; a tied one is the embedding's, and still a matmul per token)."""
    cfg = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "embed" not in name and "lora" not in name)
    if getattr(cfg, "tie_word_embeddings", False):
        n += cfg.vocab_size * cfg.hidden_size
    return n


def model_flops_per_token(model_path: str) -> float:
    """flops_per_token of the model at model_path, from its config (a meta-device model: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return flops_per_token(AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_path)))


def flops_per_token(model) -> float:
    """6·N for the matmuls (forward + backward; the standard MFU convention); attention's own FLOPs
    and recomputation are not counted."""
    return 6 * counted_parameters(model)


def check_report(args) -> dict:
    """The model's shapes and MFU count from its config alone (a meta-device model: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    size = random_size(args)
    if size:
        cfg = random_llama_config(AutoTokenizer.from_pretrained(args.tokenizer), size)
    else:
        cfg = AutoConfig.from_pretrained(args.model)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(cfg)
    keys = (*RANDOM_LLAMAS["8b"], "vocab_size", "rope_parameters", "head_dim")
    shown = {k: getattr(cfg, k) for k in keys if hasattr(cfg, k)}
    return {
        "model": f"random-{size}" if size else args.model,
        "config": shown,
        "parameters": sum(p.numel() for p in meta.parameters()),
        "counted_parameters": counted_parameters(meta),
        "flops_per_token": flops_per_token(meta),
        "arms": args.arms.split(","),
    }
