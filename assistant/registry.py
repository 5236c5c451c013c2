"""Adapter registry: adapters/<domain>/v<N>/ holds a standard PEFT folder plus card.json (lineage).

Names are "<domain>-v<N>"; "<domain>" alone means the domain's promoted version (`Registry.get`: the one rule of
`lorag eval`'s arms, `lorag ask --adapter`, the API's `model` and every `lorag adapters` command).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field

from assistant.errors import LoragError, NoPromotedAdapterError, UnknownAdapterError, known_hint
from assistant.names import check_domain, is_domain, parse_adapter


class AdapterCard(BaseModel):
    name: str
    domain: str
    version: int
    base_model: str = Field(description="The generator setting it was trained on.")
    base_fingerprint: str = Field(description="Hash of the base model's config (architecture, sizes, vocab).")
    data_hash: str = Field(description="sha256 of the training JSONL.")
    corpus_fingerprint: str = Field(description="The domain's corpus fingerprint at training time.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""
    train_seconds: float = 0.0
    promoted: bool = False
    promoted_at: str | None = None
    promotion: dict[str, Any] = Field(default_factory=dict, description="Gate decision or --force record.")
    reports: list[dict[str, Any]] = Field(default_factory=list, description="Evaluation reports, newest last.")
    exports: list[dict[str, Any]] = Field(
        default_factory=list,
        description="`lorag adapters export` runs, newest last: format, path, the load-back check.",
    )


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- lookup ---------------------------------------------------------------------------------
    def folder(self, card: AdapterCard) -> Path:
        return self.root / check_domain(card.domain) / f"v{int(card.version)}"

    def _read(self, folder: Path) -> AdapterCard | None:
        f = folder / "card.json"
        if not f.is_file():
            return None
        return AdapterCard.model_validate_json(f.read_text(encoding="utf-8"))

    def _write(self, card: AdapterCard) -> None:
        folder = self.folder(card)
        tmp = folder / "card.json.tmp"
        tmp.write_text(card.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(folder / "card.json")

    def versions(self, domain: str) -> list[AdapterCard]:
        d = self.root / check_domain(domain)
        if not d.is_dir():
            return []
        cards = [c for p in d.iterdir() if p.is_dir() and p.name.startswith("v") for c in [self._read(p)] if c]
        return sorted(cards, key=lambda c: c.version)

    def all(self) -> list[AdapterCard]:
        if not self.root.is_dir():
            return []
        domains = sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_domain(p.name))
        return [c for d in domains for c in self.versions(d)]

    def promoted(self) -> dict[str, AdapterCard]:
        return {c.domain: c for c in self.all() if c.promoted}

    def get(self, name: str) -> AdapterCard:
        """The card `name` names: `<domain>-v<N>` that version, `<domain>` the domain's promoted version. A domain
        without one is a NoPromotedAdapterError naming its versions; an unknown name an UnknownAdapterError."""
        domain, version = parse_adapter(name)
        cards = self.versions(domain)
        if version is not None:
            found = [c for c in cards if c.version == version]
        else:
            found = [c for c in cards if c.promoted]
            if cards and not found:
                raise no_promoted_adapter(domain, [c.name for c in cards])
        if not found:
            raise unknown_adapter(name, [c.name for c in self.all()])
        return found[0]

    # -- writes ---------------------------------------------------------------------------------
    def next_folder(self, domain: str, taken: list[int] | None = None) -> tuple[int, Path]:
        """The next version number and its folder; `taken`: numbers used elsewhere (training run folders)."""
        existing = [c.version for c in self.versions(check_domain(domain))] + list(taken or [])
        dirs = [int(p.name[1:]) for p in (self.root / domain).glob("v*") if p.name[1:].isdigit()]
        last = self.root / domain / ".last_version"
        used = [int(last.read_text())] if last.is_file() else []
        version = max(existing + dirs + used + [0]) + 1
        return version, self.root / domain / f"v{version}"

    def register(self, staged_folder: Path, card: AdapterCard) -> AdapterCard:
        """Move a finished PEFT folder into place with its card (the version appears whole)."""
        if not (staged_folder / "adapter_config.json").is_file():
            raise LoragError(f"{staged_folder} is not a PEFT adapter folder (no adapter_config.json)")
        target = self.folder(card)
        if target.exists():
            raise LoragError(f"adapter {card.name} already exists")
        (staged_folder / "card.json").write_text(card.model_dump_json(indent=2), encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        staged_folder.rename(target)
        (target.parent / ".last_version").write_text(str(card.version))  # a removed version is never reused
        return card

    def attach_report(self, name: str, report: dict[str, Any]) -> AdapterCard:
        card = self.get(name)
        card.reports.append({**report, "attached_at": now()})
        self._write(card)
        return card

    def record_export(self, name: str, record: dict[str, Any]) -> AdapterCard:
        card = self.get(name)
        card.exports.append(record)
        self._write(card)
        return card

    def latest_export(self, card: AdapterCard, fmt: str) -> dict[str, Any] | None:
        """The newest export of this format whose files are still there."""
        for r in reversed(card.exports):
            if r.get("format") == fmt and Path(r.get("file") or r.get("path") or "").exists():
                return r
        return None

    def promote(
        self, name: str, *, force: bool = False, gate: Callable[[AdapterCard], dict[str, Any]] | None = None
    ) -> AdapterCard:
        """Promote one version of a domain. `gate(card)` returns {"ok": bool, "reason": str, ...}."""
        card = self.get(name)
        decision: dict[str, Any] = {"ok": True, "reason": "no gate"}
        if gate is not None:
            decision = gate(card)
        if not decision.get("ok") and not force:
            raise LoragError(
                f"promotion of {card.name} refused: {decision.get('reason', 'gate failed')}",
                hint="the reason says which evaluation to run; --force promotes anyway (recorded on the card)",
            )
        for other in self.versions(card.domain):
            if other.promoted and other.version != card.version:
                other.promoted = False
                self._write(other)
        card.promoted = True
        card.promoted_at = now()
        card.promotion = {**decision, "forced": bool(force and not decision.get("ok")), "at": card.promoted_at}
        self._write(card)
        return card

    def remove(self, name: str) -> AdapterCard:
        card = self.get(name)
        shutil.rmtree(self.folder(card))
        return card


def promotion_text(promotion: dict[str, Any]) -> str:
    """A promotion's record in words: the gate's reason, or for one forced past the gate's refusal
    "forced (the gate said: <reason>)", so it never reads as the refusal alone."""
    reason = str(promotion.get("reason") or "")
    if promotion.get("forced"):
        return f"forced (the gate said: {reason})" if reason else "forced"
    return reason


def is_stale(card: AdapterCard, current_fingerprint: str | None) -> bool:
    """The domain's corpus changed since training (None: the domain is gone or empty)."""
    return current_fingerprint != card.corpus_fingerprint


def check_base(card: AdapterCard, base_fingerprint: str) -> None:
    if card.base_fingerprint != base_fingerprint:
        raise LoragError(
            f"adapter {card.name} was trained on base model '{card.base_model}' "
            f"(fingerprint {card.base_fingerprint[:12]}), not on the configured generator (fingerprint "
            f"{base_fingerprint[:12]})",
            hint="set models.generator to the adapter's base model, or train a new adapter",
        )


def export_check_text(record: dict[str, Any]) -> str:
    """One line for an export's load-back check: what was compared and how close it came."""
    c = record.get("check") or {}
    text = (
        f"checked: {'same answers' if c.get('same_text') else 'answers differ'} on {c.get('prompts', '?')} prompts, "
        f"largest logit difference {_num(c.get('max_logit_diff'), '.2g')}"
    )
    lc = record.get("check_llama_cpp")
    if lc and not lc.get("skipped"):
        text += f"; in llama.cpp: {'same answers' if lc.get('same_text') else 'logits within tolerance'}"
    return text


def card_json(card: AdapterCard) -> str:
    return json.dumps(card.model_dump(), indent=2)


def _num(x: Any, fmt: str = ".4f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def eval_command(domain: str, name: str, heldout: bool) -> str:
    """The command that A/B-evaluates an adapter against the base model: on the domain's held-out split, or,
    when training held nothing out (synth without curated --qa), on a test set the user brings."""
    if heldout:
        return f"lorag eval --domain {domain} --ab base,{name}"
    return (
        f"lorag eval --domain {domain} --testset FILE.jsonl --ab base,{name}   (no held-out questions: synth "
        "had no --qa)"
    )


def card_text(
    card: AdapterCard, *, stale: bool | None = None, gate_metric: str = "answer_f1", heldout: bool = True
) -> str:
    """A card for people: lineage, the settings that matter, training figures, the evaluation record."""
    h, m, rt = card.hyperparameters, card.metrics, card.hyperparameters.get("runtime", {}) or {}
    max_steps = h.get("max_steps", -1)
    length = (
        f"max_steps {max_steps}" if isinstance(max_steps, int) and max_steps > 0 else f"{h.get('epochs', '-')} epochs"
    )
    state = "promoted (served)" if card.promoted else "not promoted"
    if card.promoted and card.promotion.get("forced"):
        state += ", forced"
    lines = [
        f"{card.name}  domain {card.domain}  version {card.version}  {state}" + ("  STALE" if stale else ""),
        f"  base model     {card.base_model} (architecture {card.base_fingerprint[:12]})",
        f"  trained        {card.created_at}, {_num(m.get('train_seconds'), '.0f')} s, {m.get('steps', '-')} "
        f"step{'' if m.get('steps') == 1 else 's'} on "
        f"{m.get('train_rows', '-')} rows ({rt.get('device', '?')}, "
        f"{'no quantization' if rt.get('quantization') == 'none' else rt.get('quantization', '?')})",
        f"  data           sha256 {card.data_hash[:16]}…  corpus fingerprint {card.corpus_fingerprint[:16]}…"
        + ("  (the corpus changed since: STALE)" if stale else ""),
        f"  LoRA           r {h.get('lora_r', '-')}, alpha {h.get('lora_alpha', '-')}, dropout "
        f"{h.get('lora_dropout', '-')}, "
        f"targets {h.get('target_modules', '-')}",
        f"  schedule       {length}, lr {h.get('learning_rate', '-')} {h.get('lr_scheduler', '')}, "
        f"batch {h.get('batch_size', '-')}, max length {h.get('max_seq_length', '-')}",
        f"  losses         train {_num(m.get('train_loss'))}, held-out {_num(m.get('eval_loss'))}",
        f"  speed          {_num(m.get('tokens_per_s'), ',.0f')} tokens/s"
        + (
            f", peak GPU memory {_num(m.get('peak_gpu_mem_gb'), '.2f')} GB"
            if m.get("peak_gpu_mem_gb") is not None
            else ""
        ),
    ]
    if card.promotion:
        lines.append(f"  promotion      {promotion_text(card.promotion)}")
    for e in card.exports[-3:]:
        lines.append(
            f"  export         {e.get('format')} -> {e.get('file') or e.get('path')} ({e.get('at', '')}; "
            f"{export_check_text(e)})"
        )
    if not card.reports:
        lines.append(f"  evaluations    none yet: {eval_command(card.domain, card.name, heldout)}")
    for r in card.reports[-3:]:
        vs = r.get("vs", {})
        gate = {other: v.get(gate_metric, {}) for other, v in vs.items()}
        diffs = ", ".join(
            f"vs {other}: {_num(g.get('diff'), '+.4f')} [{_num(g.get('ci_low'), '+.4f')}, "
            f"{_num(g.get('ci_high'), '+.4f')}]"
            for other, g in gate.items()
        )
        lines.append(
            f"  evaluation     {r.get('run_id', '?')} ({r.get('attached_at', '')}): {gate_metric} "
            f"{_num(r.get('means', {}).get(gate_metric))}; {diffs or 'no comparison'}"
        )
        if r.get("report"):
            lines.append(f"                 {r['report']}")
    return "\n".join(lines)


def unknown_adapter(name: str, names: list[str]) -> UnknownAdapterError:
    """The error for an adapter name that is not among `names` (the did-you-mean hint, or how to make one)."""
    if names:
        hint = known_hint(name, names, "adapters")
    else:
        hint = "no adapter is registered yet: lorag synth --domain D && lorag train --domain D"
    return UnknownAdapterError(f"no adapter named '{name}'", hint=hint)


def no_promoted_adapter(domain: str, versions: list[str]) -> NoPromotedAdapterError:
    """The error for a domain's name (which stands for its promoted version) while the domain has none: its versions
    (oldest first), and how to pick or promote one."""
    newest = versions[-1]
    return NoPromotedAdapterError(
        f"domain '{domain}' has no promoted adapter for its name to pick; its versions: {', '.join(versions)}",
        hint=f"name a version ({newest}), or promote one: lorag adapters promote {newest}",
    )
