"""`lorag adapters serve-config --engine vllm|llamacpp|ollama`: the command line (or Modelfiles) that serves the
base model with every promoted adapter, from the registry's folders, and the lorag settings that use it.

- vllm:     `vllm serve BASE --enable-lora --lora-modules NAME=FOLDER ...` over the PEFT folders; the request's
            `model` is the adapter's registry name. `--max-lora-rank` is the largest rank rounded up to one vLLM
            accepts, `--max-loras` the number of adapters, so one batch can hold every adapter.
- llamacpp: `llama-server -m BASE.gguf --lora NAME.gguf ... --lora-init-without-apply` over the adapters' GGUF
            exports (`lorag adapters export NAME --format gguf`); lorag enables one per request by the `lora`
            field (models.endpoint.adapter_api: llamacpp), the adapter named by its file's stem.
- ollama:   one Modelfile per adapter (`FROM BASE.gguf`, `ADAPTER NAME.gguf`) and `ollama create NAME`: each
            adapter is an Ollama model whose name is the adapter's, so the request's `model` names it.

Also: the command that loads one adapter into a running engine, for the error about an adapter the engine
does not serve (`load_hint`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.registry import AdapterCard, Registry

ENGINES = ("vllm", "llamacpp", "ollama")
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's accepted --max-lora-rank values
PORTS = {"vllm": 8000, "llamacpp": 8080, "ollama": 11434}


@dataclass
class ServeConfig:
    engine: str
    commands: list[str]  # shell lines, in order
    files: dict[str, str] = field(default_factory=dict)  # file name -> content (Ollama Modelfiles)
    settings: dict[str, Any] = field(default_factory=dict)  # models.endpoint for lorag
    adapters: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"

    def text(self) -> str:
        out = [
            f"# {self.engine}: the base model with {len(self.adapters)} adapter(s): "
            f"{', '.join(self.adapters) or 'none'}"
        ]
        out += [f"# skipped {s}" for s in self.skipped]
        for name, content in self.files.items():
            out += [f"cat > {shlex.quote(name)} <<'EOF'", content.rstrip("\n"), "EOF"]
        out += self.commands
        out.append("# then point lorag at it:")
        out += [f"export LORAG_MODELS__ENDPOINT__{k.upper()}={shlex.quote(str(v))}" for k, v in self.settings.items()]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "commands": self.commands,
            "files": self.files,
            "settings": self.settings,
            "adapters": self.adapters,
            "skipped": self.skipped,
        }


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise LoragError(f"unknown engine {engine!r} (--engine): use {', '.join(ENGINES)}")
    return engine


def pick_adapters(
    registry: Registry, base_fp: str, names: list[str] | None = None
) -> tuple[list[AdapterCard], list[str]]:
    """The promoted adapters of this base (plus any named versions), and the promoted ones left out, with why."""
    cards: dict[str, AdapterCard] = {}
    skipped = []
    for card in registry.promoted().values():
        if card.base_fingerprint != base_fp:
            skipped.append(f"{card.name}: trained on another base model ({card.base_model})")
        else:
            cards[card.name] = card
    for name in names or []:
        card = registry.get(name)
        if card.base_fingerprint != base_fp:
            raise LoragError(f"adapter {card.name} was trained on '{card.base_model}', not on the configured generator")
        cards[card.name] = card
    return sorted(cards.values(), key=lambda c: c.name), skipped


def lora_rank(folder: Path) -> int:
    """The largest rank in a PEFT folder's adapter_config.json (r, and rank_pattern's values)."""
    from finetune.gguf_lora import read_peft_config

    cfg = read_peft_config(folder)
    return max([int(cfg.get("r", 8))] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()])


def vllm_rank(rank: int) -> int:
    for r in VLLM_RANKS:
        if r >= rank:
            return r
    raise LoragError(f"LoRA rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_RANKS[-1]})")


def _gguf_of(registry: Registry, card: AdapterCard) -> Path | None:
    rec = registry.latest_export(card, "gguf")
    return Path(rec["file"]) if rec else None


def export_command(name: str) -> str:
    return f"lorag adapters export {name} --format gguf --out .lorag/exports/{name}-gguf"


def serve_config(
    engine: str,
    *,
    registry: Registry,
    cards: list[AdapterCard],
    base_path: str,
    base_gguf: Path | None,
    served_model: str,
    skipped: list[str] | None = None,
    port: int | None = None,
) -> ServeConfig:
    """What serves `cards` over the base: `base_path` (HF folder or id, for vLLM) or `base_gguf` (llama.cpp, Ollama);
    `served_model` is the base model's name at the engine (models.endpoint.model)."""
    check_engine(engine)
    port = port or PORTS[engine]
    names = [c.name for c in cards]
    skipped = list(skipped or [])
    if engine == "vllm":
        if base_path.endswith(".gguf"):
            raise LoragError(
                f"vLLM serves LoRA adapters over a Hugging Face model, not the GGUF file {base_path}",
                hint="set models.generator to the HF id or folder the adapters were trained on",
            )
        cmd = ["vllm", "serve", base_path, "--served-model-name", served_model, "--port", str(port)]
        if cards:
            folders = {c.name: registry.folder(c).resolve() for c in cards}
            rank = vllm_rank(max(lora_rank(f) for f in folders.values()))
            cmd += ["--enable-lora", "--max-loras", str(len(cards)), "--max-lora-rank", str(rank), "--lora-modules"]
            cmd += [f"{n}={f}" for n, f in folders.items()]
        line = "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True " + shlex.join(cmd)
        return ServeConfig(
            engine,
            [line],
            settings={
                "base_url": f"http://localhost:{port}/v1",
                "model": served_model,
                "adapter_api": "model",
                "repetition_penalty_field": "repetition_penalty",
            },
            adapters=names,
            skipped=skipped,
        )
    if base_gguf is None:
        raise LoragError(
            f"{engine} serves GGUF models, and the base model has no GGUF file here",
            hint="pass --base-gguf FILE (llama.cpp's convert_hf_to_gguf.py makes one from an HF folder), "
            "or serve with --engine vllm",
        )
    ggufs = {c.name: _gguf_of(registry, c) for c in cards}
    missing = [n for n, f in ggufs.items() if f is None]
    if missing:
        raise LoragError(
            f"{engine} loads GGUF adapters, and {', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} "
            "no GGUF export yet",
            hint="; ".join(export_command(n) for n in missing),
        )
    base = str(Path(base_gguf).resolve())
    if engine == "llamacpp":
        cmd = ["llama-server", "-m", base, "--alias", served_model, "--port", str(port)]
        if cards:
            cmd.append("--lora-init-without-apply")  # every adapter off unless a request's `lora` field turns it on
            for n in names:
                cmd += ["--lora", str(ggufs[n])]
        return ServeConfig(
            engine,
            [shlex.join(cmd)],
            settings={
                "base_url": f"http://localhost:{port}/v1",
                "model": served_model,
                "adapter_api": "llamacpp",
                "repetition_penalty_field": "repeat_penalty",
            },
            adapters=names,
            skipped=skipped,
        )
    files = {f"Modelfile.{served_model}": f"FROM {base}\n"}
    commands = [f"ollama create {shlex.quote(served_model)} -f {shlex.quote(f'Modelfile.{served_model}')}"]
    for n in names:
        files[f"Modelfile.{n}"] = f"FROM {base}\nADAPTER {ggufs[n]}\n"
        commands.append(f"ollama create {shlex.quote(n)} -f {shlex.quote(f'Modelfile.{n}')}")
    return ServeConfig(
        engine,
        commands,
        files,
        settings={
            "base_url": f"http://localhost:{port}/v1",
            "model": served_model,
            "adapter_api": "model",
            "repetition_penalty_field": "none",
        },
        adapters=names,
        skipped=skipped,
    )


def base_config(base_path: str) -> Any:
    """The base model's config from a folder, an HF id or a .gguf file."""
    from transformers import AutoConfig

    path = Path(base_path)
    if path.suffix == ".gguf":
        return AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoConfig.from_pretrained(base_path)


def build(
    engine: str,
    *,
    settings: Any,
    registry: Registry,
    model_cache: Any,
    names: list[str] | None = None,
    base_gguf: Path | None = None,
    port: int | None = None,
) -> ServeConfig:
    """`lorag adapters serve-config`: the configured generator as the base, its promoted adapters (plus `names`)."""
    from assistant.adapters import base_fingerprint

    check_engine(engine)
    spec = settings.models.generator
    base_path = model_cache.resolve(spec)
    cards, skipped = pick_adapters(registry, base_fingerprint(base_config(base_path)), names)
    if base_gguf is not None and not Path(base_gguf).is_file():
        raise LoragError(f"--base-gguf {base_gguf}: no such file")
    if base_gguf is None and engine != "vllm":
        base_gguf = model_cache.gguf_file(spec)
    served = settings.models.endpoint.model or spec
    return serve_config(
        engine,
        registry=registry,
        cards=cards,
        base_path=base_path,
        base_gguf=base_gguf,
        served_model=served,
        skipped=skipped,
        port=port,
    )


def engine_kind(adapter_api: str, base_url: str, entries: list[dict[str, Any]]) -> str | None:
    """Which engine answers at base_url, from the settings and its GET /models entries (None: unknown)."""
    if adapter_api == "llamacpp":
        return "llamacpp"
    owners = {str(e.get("owned_by", "")).lower() for e in entries}
    if "vllm" in owners:
        return "vllm"
    if "library" in owners or "ollama" in owners or ":11434" in base_url:
        return "ollama"
    return None


def load_hint(kind: str | None, name: str, *, folder: Path | None, gguf: Path | None, base_url: str) -> str:
    """How to make the engine serve adapter `name`: the command for this engine (or for each, when unknown)."""
    folder_s = str(folder.resolve()) if folder is not None else "<adapter folder>"
    vllm = (
        f"vLLM: start it with --enable-lora --lora-modules {name}={folder_s}, or load it into the running server: "
        f'POST {base_url}/load_lora_adapter {{"lora_name": "{name}", "lora_path": "{folder_s}"}} '
        "(needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
    )
    first = "" if gguf is not None or folder is None else f"{export_command(name)}, then "
    gguf_s = str(gguf) if gguf is not None else f".lorag/exports/{name}-gguf/{name}.gguf"
    llamacpp = (
        f"llama.cpp: {first}restart llama-server with --lora {gguf_s} (it loads adapters only at start; "
        "`lorag adapters serve-config --engine llamacpp` prints the whole command)"
    )
    ollama = (
        f"Ollama: {first}`ollama create {name} -f Modelfile.{name}` with FROM <base GGUF> and ADAPTER {gguf_s} "
        "(`lorag adapters serve-config --engine ollama` writes it)"
    )
    by_kind = {"vllm": vllm, "llamacpp": llamacpp, "ollama": ollama}
    if kind in by_kind:
        return by_kind[kind]
    return "; ".join((vllm, llamacpp, ollama))
