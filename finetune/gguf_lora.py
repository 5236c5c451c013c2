"""GGUF LoRA adapters, the file llama.cpp (`llama-server --lora FILE`) and Ollama (Modelfile `ADAPTER FILE`)
load next to a GGUF base model; written and read back with the `gguf` package.

The format, as llama.cpp's own converter writes it and its loader (src/llama-adapter.cpp) checks it:
- metadata: `general.architecture` is the base's GGUF architecture (`llama`, `qwen2`), `general.type` is
  `adapter`, `adapter.type` is `lora`, `adapter.lora.alpha` a float32; llama.cpp scales each pair by
  alpha / rank, rank being the pair's own (lora_b's columns).
- tensors: for every adapted Linear, the base weight's GGUF name with `.lora_a` and `.lora_b`
  (`model.layers.3.self_attn.q_proj` -> `blk.3.attn_q.weight.lora_a`): lora_a is PEFT's lora_A
  (rank x in_features), lora_b is PEFT's lora_B (out_features x rank), each in numpy's row-major shape.
- Llama-architecture GGUF files keep the rows of the q and k projections in llama.cpp's rotary order
  (each head's two halves interleaved), so lora_b of q_proj and k_proj gets the same row permutation
  as the base weights; lora_a (the input side) does not change.

PEFT scaling that one alpha cannot say (rsLoRA's alpha / sqrt(r), per-module alpha_pattern and
rank_pattern) is folded into lora_b, so every pair carries exactly PEFT's delta. DoRA, LoRA on embeddings
and modules_to_save have no GGUF LoRA form and are refused by name.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from assistant.errors import LoragError

# HF architecture -> (GGUF architecture, whether q/k rows are permuted into llama.cpp's rotary order)
GGUF_ARCHS: dict[str, tuple[str, bool]] = {
    "LlamaForCausalLM": ("llama", True),
    "MistralForCausalLM": ("llama", True),
    "Qwen2ForCausalLM": ("qwen2", False),
}
DTYPES = ("f32", "f16")
_PEFT_PREFIX = "base_model.model."


def gguf_arch(base_config: Any) -> tuple[str, bool]:
    archs = list(getattr(base_config, "architectures", None) or [])
    for a in archs:
        if a in GGUF_ARCHS:
            return GGUF_ARCHS[a]
    raise LoragError(
        f"GGUF export supports {', '.join(GGUF_ARCHS)} base models; this base is "
        f"{', '.join(archs) or getattr(base_config, 'model_type', 'unknown')}",
        hint="export --format merged instead: any engine serves a merged model",
    )


def _rotary_rows(w: Any, heads: int) -> Any:
    """HF's rotary row order (per head: first half, second half) -> llama.cpp's (pairs interleaved)."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _hf_rows(w: Any, heads: int) -> Any:
    """The inverse of `_rotary_rows`."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _heads(module: str, cfg: Any) -> int | None:
    if module.endswith("self_attn.q_proj"):
        return int(cfg.num_attention_heads)
    if module.endswith("self_attn.k_proj"):
        return int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
    return None


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rank_pattern / alpha_pattern: a key matches a module path ending in it."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def peft_scaling(peft_cfg: dict[str, Any], module: str) -> float:
    """The factor PEFT multiplies B @ A by for `module`."""
    r = _pattern_value(peft_cfg.get("rank_pattern") or {}, module, peft_cfg.get("r", 8))
    alpha = _pattern_value(peft_cfg.get("alpha_pattern") or {}, module, peft_cfg.get("lora_alpha", 8))
    return float(alpha) / (math.sqrt(r) if peft_cfg.get("use_rslora") else float(r))


def read_peft_config(adapter_dir: Path) -> dict[str, Any]:
    path = Path(adapter_dir) / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoragError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)") from None
    except json.JSONDecodeError as e:
        raise LoragError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(cfg, dict) or str(cfg.get("peft_type", "")).upper() != "LORA":
        raise LoragError(f"{path}: peft_type {cfg.get('peft_type') if isinstance(cfg, dict) else None!r} is not LORA")
    return cfg


def lora_pairs(adapter_dir: Path, peft_cfg: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{module path: (lora_A, lora_B)} as float32 torch tensors; anything GGUF cannot carry is refused."""
    from safetensors.torch import load_file

    weights = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights.is_file():
        raise LoragError(f"{adapter_dir}: adapter_model.safetensors is missing")
    if peft_cfg.get("use_dora"):
        raise LoragError(
            f"{adapter_dir / 'adapter_config.json'}: use_dora is true; a DoRA adapter has no GGUF LoRA form",
            hint="export --format merged instead",
        )
    if peft_cfg.get("modules_to_save"):
        raise LoragError(
            f"{adapter_dir / 'adapter_config.json'}: modules_to_save {peft_cfg['modules_to_save']} are whole "
            "trained layers, which a GGUF LoRA cannot carry",
            hint="export --format merged instead",
        )
    pairs: dict[str, dict[str, Any]] = {}
    for key, t in load_file(str(weights)).items():
        m = re.fullmatch(r"(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight", key)
        if m is None:
            raise LoragError(
                f"{weights}: tensor {key} is not a LoRA A/B matrix of a Linear layer (embeddings, biases and "
                "whole layers have no GGUF LoRA form)",
                hint="export --format merged instead",
            )
        pairs.setdefault(m[1], {})[m[2]] = t.float()
    broken = [k for k, v in pairs.items() if set(v) != {"A", "B"}]
    if broken:
        raise LoragError(f"{weights}: {broken[0]} has only lora_{next(iter(pairs[broken[0]]))}")
    return {k: (v["A"], v["B"]) for k, v in sorted(pairs.items())}


def write_gguf_lora(
    adapter_dir: Path, base_config: Any, out_file: Path, *, dtype: str = "f32", name: str | None = None
) -> dict[str, Any]:
    """Write the PEFT adapter in `adapter_dir` as a GGUF LoRA for a base of `base_config`. Returns what was written."""
    import gguf
    import numpy as np

    if dtype not in DTYPES:
        raise LoragError(f"GGUF tensor type {dtype!r} is not one of {', '.join(DTYPES)}")
    arch, rotary = gguf_arch(base_config)
    peft_cfg = read_peft_config(adapter_dir)
    pairs = lora_pairs(adapter_dir, peft_cfg)
    if not pairs:
        raise LoragError(f"{adapter_dir}: the adapter has no LoRA matrices")
    alpha = float(peft_cfg.get("lora_alpha", 8))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], int(base_config.num_hidden_layers))
    np_dtype = np.float32 if dtype == "f32" else np.float16
    writer = gguf.GGUFWriter(str(out_file), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    if name:
        writer.add_name(name)
    tensors = 0
    for module, (a, b) in pairs.items():
        gname = names.get_name(module.removeprefix(_PEFT_PREFIX))
        if gname is None:
            raise LoragError(f"{adapter_dir}: module {module} has no tensor in a GGUF {arch} model")
        rank = a.shape[0]
        b = b * (peft_scaling(peft_cfg, module) * rank / alpha)  # llama.cpp applies alpha / rank: carry the rest in B
        heads = _heads(module, base_config) if rotary else None
        if heads:
            b = _rotary_rows(b, heads)
        writer.add_tensor(f"{gname}.weight.lora_a", a.contiguous().numpy().astype(np_dtype))
        writer.add_tensor(f"{gname}.weight.lora_b", b.contiguous().numpy().astype(np_dtype))
        tensors += 2
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"architecture": arch, "alpha": alpha, "tensors": tensors, "tensor_type": dtype}


def read_gguf_lora(path: Path, base_config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A GGUF LoRA read back as PEFT would hold it: ({module path: (lora_A, lora_B)}, metadata), with the
    rotary row order undone. Checks the file is a LoRA adapter for this base's architecture."""
    import gguf
    import numpy as np
    import torch

    arch, rotary = gguf_arch(base_config)
    reader = gguf.GGUFReader(str(path))

    def field(key: str) -> Any:
        f = reader.get_field(key)
        return None if f is None else f.contents()

    if field(gguf.Keys.General.TYPE) != "adapter" or field(gguf.Keys.Adapter.TYPE) != "lora":
        raise LoragError(
            f"{path}: not a GGUF LoRA adapter (general.type {field(gguf.Keys.General.TYPE)!r}, "
            f"adapter.type {field(gguf.Keys.Adapter.TYPE)!r})"
        )
    if field(gguf.Keys.General.ARCHITECTURE) != arch:
        raise LoragError(
            f"{path}: an adapter for {field(gguf.Keys.General.ARCHITECTURE)!r} models, the base is {arch!r}"
        )
    alpha = float(field(gguf.Keys.Adapter.LORA_ALPHA))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], int(base_config.num_hidden_layers))
    back: dict[str, str] = {}
    for layer in range(int(base_config.num_hidden_layers)):
        for proj in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ):
            module = f"model.layers.{layer}.{proj}"
            gname = names.get_name(module)
            if gname:
                back[f"{gname}.weight"] = module
    found: dict[str, dict[str, Any]] = {}
    for t in reader.tensors:
        stem, _, part = t.name.rpartition(".")
        if part not in ("lora_a", "lora_b") or stem not in back:
            raise LoragError(f"{path}: tensor {t.name} is not a LoRA pair of a known layer")
        data = torch.from_numpy(np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)]))
        found.setdefault(back[stem], {})[part] = data
    pairs = {}
    for module, ab in sorted(found.items()):
        a, b = ab["lora_a"], ab["lora_b"]
        heads = _heads(module, base_config) if rotary else None
        pairs[module] = (a, _hf_rows(b, heads) if heads else b)
    return pairs, {"alpha": alpha, "architecture": arch}


def peft_model_from_pairs(base_model: Any, pairs: dict[str, tuple[Any, Any]], alpha: float) -> Any:
    """A PeftModel over `base_model` holding these LoRA pairs with PEFT's scaling alpha / rank."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    ranks = {m: int(a.shape[0]) for m, (a, _) in pairs.items()}
    r = max(ranks.values())
    cfg = LoraConfig(
        r=r,
        lora_alpha=alpha,
        target_modules=sorted(pairs),
        lora_dropout=0.0,
        bias="none",
        rank_pattern={rf"{re.escape(m)}": k for m, k in ranks.items() if k != r},
    )
    model = get_peft_model(base_model, cfg)
    state = {}
    for m, (a, b) in pairs.items():
        state[f"{_PEFT_PREFIX}{m}.lora_A.weight"] = a
        state[f"{_PEFT_PREFIX}{m}.lora_B.weight"] = b
    missing = set_peft_model_state_dict(model, state)
    if getattr(missing, "unexpected_keys", None):
        raise LoragError(f"GGUF LoRA read back: tensors that do not fit the base: {missing.unexpected_keys[:3]}")
    return model.eval()
