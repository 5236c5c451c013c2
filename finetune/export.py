"""`lorag adapters export NAME --format peft|merged|gguf --out DIR`: an adapter in the form an engine serves.

- peft:   the registry's PEFT folder as it is (adapter_config.json, adapter_model.safetensors, card.json):
          vLLM `--lora-modules`, LoRAX, `lorag adapters import` on another machine.
- merged: the base model with the adapter merged into its weights (peft's merge_and_unload, in the base's
          dtype), with its tokenizer: a plain model folder any engine serves without LoRA support.
- gguf:   `<DIR>/<name>.gguf`, a GGUF LoRA adapter for llama.cpp (`--lora`) and Ollama (`ADAPTER`), next
          to a GGUF of the base (finetune/gguf_lora.py).

Every export is written to a staging folder, loaded back and checked against the registry's adapter
applied unmerged (finetune/export_check.py: greedy answers to three fixed prompts, and the logits along
them), and only then moved to DIR; the adapter's card records the export with its check.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from assistant.registry import AdapterCard, Registry, now

FORMATS = ("peft", "merged", "gguf")
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors", "card.json", "README.md")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise LoragError(f"unknown export format {fmt!r} (--format): use {', '.join(FORMATS)}")
    return fmt


def check_out_dir(out: Path) -> Path:
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise LoragError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        n = sum(1 for _ in out.iterdir())
        raise LoragError(
            f"--out {out}: the folder is not empty ({n} entr{'y' if n == 1 else 'ies'})",
            hint="name a new or empty folder; an export never writes over files",
        )
    return out


def resolve_base(card: AdapterCard, resolve: Callable[[str], str]) -> tuple[str, Any]:
    """The adapter's own base model (the card's), found here and with the architecture it was trained on:
    (path for from_pretrained, its config)."""
    from transformers import AutoConfig

    from assistant.adapters import base_fingerprint

    try:
        path = resolve(card.base_model)
        config = AutoConfig.from_pretrained(path)
    except LoragError as e:
        raise LoragError(
            f"adapter {card.name}: its base model '{card.base_model}' is not available here: {e.args[0]}",
            hint=e.hint or "pull or download the base model first",
        ) from None
    except OSError as e:
        raise LoragError(
            f"adapter {card.name}: its base model '{card.base_model}' cannot be read from {path}: {e}"
        ) from None
    if base_fingerprint(config) != card.base_fingerprint:
        raise LoragError(
            f"adapter {card.name}: '{card.base_model}' here is not the model it was trained on (architecture "
            f"{base_fingerprint(config)[:12]}, the card says {card.base_fingerprint[:12]})",
            hint="point the model setting at the adapter's base model",
        )
    return path, config


def llama_cpp_base(card: AdapterCard, model_cache: Any) -> Path | None:
    """The base's GGUF for checking a GGUF export in llama.cpp itself, when llama-cpp-python is installed and
    the base has a GGUF here (a built-in model, or a .gguf generator); else None (the check reads the file back)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return None
    try:
        return model_cache.gguf_file(card.base_model)
    except LoragError:
        return None


def export_adapter(
    registry: Registry,
    name: str,
    fmt: str,
    out: Path,
    *,
    resolve: Callable[[str], str],
    device: str = "cpu",
    gguf_dtype: str = "f32",
    base_gguf: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export, check and record one adapter; returns the record written to its card (with `path`)."""
    from finetune import export_check
    from finetune.gguf_lora import DTYPES

    check_format(fmt)
    if fmt == "gguf" and gguf_dtype not in DTYPES:
        raise LoragError(f"unknown GGUF tensor type {gguf_dtype!r} (--gguf-type): use {', '.join(DTYPES)}")
    out = check_out_dir(out)
    card = registry.get(name)
    source = registry.folder(card)
    if not (source / "adapter_config.json").is_file() or not (source / "adapter_model.safetensors").is_file():
        raise LoragError(f"adapter {card.name}: {source} lacks adapter_config.json or adapter_model.safetensors")
    say = progress or (lambda _msg: None)
    base_path, base_config = resolve_base(card, resolve)
    if fmt == "gguf":
        from finetune.gguf_lora import gguf_arch

        gguf_arch(base_config)  # an architecture GGUF cannot carry fails before any model loads
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.export-partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        say(f"loading {card.base_model} with {card.name} (unmerged) for the reference answers")
        checker = export_check.Checker(base_path, source, device=device)
        record: dict[str, Any] = {"format": fmt, "base_model": card.base_model, "dtype": checker.dtype_name}
        if fmt == "peft":
            for f in PEFT_FILES:
                if (source / f).is_file():
                    shutil.copy2(source / f, staging / f)
            say("checking the copy: loading it back")
            record["check"] = checker.check_peft(staging)
        elif fmt == "merged":
            say("merging (merge_and_unload) and saving")
            checker.save_merged(staging)
            say("checking the merged model: loading it back")
            record["check"] = checker.check_merged(staging)
        else:
            from finetune.gguf_lora import write_gguf_lora

            file = staging / f"{card.name}.gguf"
            record.update(write_gguf_lora(source, base_config, file, dtype=gguf_dtype, name=card.name))
            say("checking the GGUF adapter: reading it back")
            record["check"] = checker.check_gguf(file, base_config, quantized=gguf_dtype != "f32")
            if base_gguf is not None:
                say(f"checking it in llama.cpp over {Path(base_gguf).name}")
                record["check_llama_cpp"] = checker.check_llama_cpp(file, Path(base_gguf))
        failed = [k for k in ("check", "check_llama_cpp") if k in record and not record[k]["ok"]]
        if failed:
            raise LoragError(
                f"export of {card.name} as {fmt} failed its check: {record[failed[0]]['reason']}",
                hint="nothing was written to --out; the check's figures are in the message",
            )
        if out.exists():
            out.rmdir()  # empty (checked above)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    path = out.resolve()
    record.update(path=str(path), at=now(), seconds=round(time.perf_counter() - t0, 1))
    if fmt == "gguf":
        record["file"] = str(path / f"{card.name}.gguf")
    registry.record_export(card.name, record)
    return record
