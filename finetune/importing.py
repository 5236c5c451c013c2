"""Register an adapter trained elsewhere (a GPU box, a notebook) so `lorag` serves and evaluates it.

The folder must be a standard PEFT LoRA folder. Its weights are checked against the configured base
model's architecture (every adapted module must exist with the shapes the LoRA matrices need), so an
adapter for another base is refused before it is registered. Lineage comes from the domain's
training set (datasets/<domain>/build.json, train.jsonl) when the caller names no data file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.qa import file_sha256
from assistant.registry import AdapterCard, Registry, now
from finetune.train import RESULT_FILE


def shape_problems(adapter_dir: Path, base_config: Any) -> list[str]:
    """Why these LoRA weights cannot sit on a model of `base_config` (empty: they fit)."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    weights = adapter_dir / "adapter_model.safetensors"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(base_config)
    modules = dict(model.named_modules())
    problems: list[str] = []
    try:
        fh_ctx = safe_open(str(weights), framework="pt")
    except Exception as e:  # a truncated or foreign file: safetensors raises its own error types
        raise LoragError(f"{weights}: not a readable safetensors file ({e})") from None
    with fh_ctx as fh:
        for k in fh.keys():
            if ".lora_A." not in k and ".lora_B." not in k:
                continue
            path = k.split(".lora_")[0].removeprefix("base_model.model.")
            mod = modules.get(path)
            if mod is None or not hasattr(mod, "in_features"):
                problems.append(f"{path}: no such linear layer in the base model")
            else:
                shape = tuple(fh.get_slice(k).get_shape())
                want = mod.in_features if ".lora_A." in k else mod.out_features
                got = shape[1] if ".lora_A." in k else shape[0]
                if got != want:
                    problems.append(
                        f"{k}: shape {shape} needs {'in' if '.lora_A.' in k else 'out'}_features {got}, the "
                        f"base has {want}"
                    )
            if len(problems) >= 5:
                problems.append("...")
                break
    return problems


def import_adapter(
    folder: Path,
    domain: str,
    *,
    registry: Registry,
    base_model: str,
    model_path: str,
    datasets_dir: Path,
    data_file: Path | None = None,
    corpus_fingerprint: str | None = None,
    taken_versions: list[int] | None = None,
) -> AdapterCard:
    folder = Path(folder)
    if not folder.exists():
        raise LoragError(f"{folder}: no such folder")
    if not folder.is_dir():
        adapter_file = folder.name in ("adapter_config.json", "adapter_model.safetensors")
        raise LoragError(
            f"{folder}: expected the adapter's folder, not a file",
            hint=f"pass {folder.parent}" if adapter_file else None,
        )
    if not (folder / "adapter_config.json").is_file():
        inside = sorted(
            (p.parent for p in folder.glob("*/adapter_config.json")), key=lambda d: (len(d.name), d.name)
        )  # checkpoints
        hint = f"pass {inside[-1]}" if inside else None
        raise LoragError(
            f"{folder}: not a PEFT adapter folder (no adapter_config.json)"
            + (f"; adapter folders inside it: {', '.join(p.name for p in inside)}" if inside else ""),
            hint=hint,
        )
    try:
        peft_cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LoragError(f"{folder / 'adapter_config.json'}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(peft_cfg, dict):
        raise LoragError(f"{folder / 'adapter_config.json'}: expected a JSON object of PEFT settings")
    if not (folder / "adapter_model.safetensors").is_file():
        raise LoragError(f"{folder}: adapter_model.safetensors is missing (only safetensors adapters are imported)")
    if str(peft_cfg.get("peft_type", "")).upper() != "LORA":
        raise LoragError(f"{folder}: peft_type {peft_cfg.get('peft_type')!r} is not LORA")
    from transformers import AutoConfig  # after the checks above: a wrong path is told at once, not after the import

    from assistant.adapters import base_fingerprint

    base_cfg = AutoConfig.from_pretrained(model_path)
    problems = shape_problems(folder, base_cfg)
    if problems:
        raise LoragError(
            f"{folder} does not fit the base model '{base_model}':\n  - " + "\n  - ".join(problems),
            hint="set models.generator to the model the adapter was trained on",
        )
    weights = file_sha256(folder / "adapter_model.safetensors")
    for known in registry.versions(domain):  # importing the same folder twice would only add a copy
        theirs = registry.folder(known) / "adapter_model.safetensors"
        if theirs.is_file() and file_sha256(theirs) == weights:
            raise LoragError(
                f"{folder}: already registered as {known.name} (the same adapter weights)",
                hint=f"lorag adapters show {known.name}",
            )

    # the run's figures: result.json next to (or above) a training run's adapter, or a registry folder's card.json
    result_path = next(
        (p for p in (folder / RESULT_FILE, folder.parent / RESULT_FILE, folder / "card.json") if p.is_file()), None
    )
    result = json.loads(result_path.read_text()) if result_path else {}
    metrics = result.get("metrics", {})
    data = Path(data_file) if data_file else Path(datasets_dir) / domain / "train.jsonl"
    data_hash = file_sha256(data) if data.is_file() else ""
    recorded = metrics.get("data_sha256")  # what the run trained on, when it said
    lineage_ok = bool(data_hash) and (recorded is None or recorded == data_hash)
    build = Path(datasets_dir) / domain / "build.json"
    build_info = json.loads(build.read_text()) if build.is_file() and not data_file and lineage_ok else {}
    if not lineage_ok:  # it was trained on other data: keep its own hash, and an unknown corpus (shown STALE)
        data_hash, data, corpus_fingerprint = recorded or "", None, None
    version, target = registry.next_folder(domain, taken_versions)
    staged = target.parent / f".staged-{version}"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(folder, staged, ignore=shutil.ignore_patterns("card.json", RESULT_FILE, "checkpoint-*"))
    for f in staged.rglob("*"):  # the registry owns its copy (sources may be read-only)
        f.chmod(f.stat().st_mode | 0o200)
    card = AdapterCard(
        name=f"{domain}-v{version}",
        domain=domain,
        version=version,
        base_model=base_model,
        base_fingerprint=base_fingerprint(base_cfg),
        data_hash=data_hash,
        corpus_fingerprint=build_info.get("corpus_fingerprint") or corpus_fingerprint or "",
        hyperparameters={
            **result.get("hyperparameters", {}),
            "imported_from": str(folder.resolve()),
            "training_data": str(data) if data is not None and data.is_file() else None,
        },
        # a registry folder's card says when it was trained; a run folder's result.json does not (now, then)
        metrics=metrics,
        created_at=result.get("created_at") or now(),
        train_seconds=float(metrics.get("train_seconds") or 0.0),
    )
    try:
        return registry.register(staged, card)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
