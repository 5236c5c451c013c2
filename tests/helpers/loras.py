"""LoRA adapters with random weights (B not zero, so they change the answers), registered like trained ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def random_lora(
    base: Path, out: Path, *, seed: int = 1, r: int = 4, alpha: int = 8, b_std: float = 0.5, **cfg: Any
) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(
            r=r,
            lora_alpha=alpha,
            target_modules=cfg.pop("target_modules", "all-linear"),
            init_lora_weights=False,
            **cfg,
        ),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, b_std)
    model.save_pretrained(out)
    return out


def register_lora(
    registry: Any,
    folder: Path,
    base: Path | str,
    domain: str,
    version: int,
    *,
    promoted: bool = False,
    base_model: str | None = None,
) -> Any:
    from transformers import AutoConfig

    from assistant.adapters import base_fingerprint
    from assistant.registry import AdapterCard, now

    card = AdapterCard(
        name=f"{domain}-v{version}",
        domain=domain,
        version=version,
        base_model=base_model or str(base),
        base_fingerprint=base_fingerprint(AutoConfig.from_pretrained(base)),
        data_hash="d" * 64,
        corpus_fingerprint="c",
        created_at=now(),
    )
    registry.register(folder, card)
    if promoted:
        registry.promote(card.name)
    return registry.get(card.name)
