"""Serving LoRA adapters: one base model in memory, every adapter attached, chosen per request.

peft's mixed-adapter batching (`adapter_names=[...]` in generate) picks the adapter per row, so
switching costs no reload and needs no global "active adapter" state shared between requests.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

from assistant.errors import LoragError

BASE = "__base__"  # peft's name for "no adapter" inside a mixed batch
_FINGERPRINT_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
)


def base_fingerprint(config: Any) -> str:
    """What an adapter depends on: the base architecture and its sizes (not the weights' file path)."""
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    picked = {k: cfg.get(k) for k in _FINGERPRINT_KEYS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest()[:32]


def attach_adapters(model: Any, adapters: dict[str, Path]) -> tuple[Any, dict[str, float]]:
    """Wrap `model` in a PeftModel holding every adapter under its name. Returns (model, load seconds)."""
    from peft import PeftModel

    timings: dict[str, float] = {}
    peft_model = model if isinstance(model, PeftModel) else None
    for name, folder in adapters.items():
        if not (Path(folder) / "adapter_config.json").is_file():
            raise LoragError(f"adapter {name}: {folder} has no adapter_config.json")
        t0 = time.perf_counter()
        with (
            warnings.catch_warnings()
        ):  # peft reads transformers attributes deprecated in 5.x: not the user's to act on
            warnings.simplefilter("ignore", FutureWarning)
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, str(folder), adapter_name=name, is_trainable=False)
            elif name not in peft_model.peft_config:
                peft_model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
        timings[name] = time.perf_counter() - t0
    if peft_model is None:
        return model, timings
    peft_model.eval()
    from assistant.lora_batch import enable_gathered_lora

    enable_gathered_lora(peft_model)  # rows of one batch may use different adapters at one pass per layer
    return peft_model, timings


def adapter_names(model: Any) -> list[str]:
    cfg = getattr(model, "peft_config", None)
    return sorted(cfg) if cfg else []
