"""The data phase of a training run (finetune/train.py): the prompt/completion rows read from their files, those
that fit max_seq_length (too many that do not stop the run, naming the file), and trl's datasets of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from finetune import accel
from finetune.config import TrainConfig


def in_curriculum_order(train_file: Path) -> bool:
    """synth.curriculum wrote the rows easy first (the dataset's build.json says so)."""
    try:
        return bool(json.loads((Path(train_file).parent / "build.json").read_text(encoding="utf-8")).get("curriculum"))
    except (OSError, ValueError):
        return False


def _read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])


def _n_tokens(tokenizer: Any, row: dict[str, Any], prompt_only: bool = False) -> int:
    messages = row["prompt"] if prompt_only else row["prompt"] + row["completion"]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=prompt_only)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def _fitting_rows(
    rows: list[dict[str, Any]], tokenizer: Any, max_len: int, batching: str, path: Path | None, max_loss: float = 1.0
) -> tuple[list[dict[str, Any]], int]:
    """The rows that can train within max_len tokens, and how many cannot. Padded rows are cut at the end by
    trl, which leaves out a row whose prompt alone fills max_len (no answer token is left); padding-free
    rows are not cut, so a row over max_len is left out. When none fits, the file is named in an error;
    when more than `max_loss` of the rows are left out or cut, too."""
    full = [_n_tokens(tokenizer, r) for r in rows]
    if batching == "padding_free":
        kept = [r for r, n in zip(rows, full) if n <= max_len]
    else:
        kept = [r for r, n in zip(rows, full) if n <= max_len or _n_tokens(tokenizer, r, prompt_only=True) < max_len]
    over = sum(n > max_len for n in full)
    if path is not None and kept and over > max_loss * len(rows):
        raise LoragError(
            f"{path}: {over} of {len(rows)} rows ({100 * over / len(rows):.1f}%) are longer than max_seq_length "
            f"({max_len} tokens): they would be left out or lose the end of their answer",
            hint="run `lorag synth` again (it builds rows to fit the recipe's max_seq_length), raise "
            "max_seq_length, or raise max_row_loss in the recipe to train anyway",
        )
    if not kept and path is not None:
        shortest = min(_n_tokens(tokenizer, r, prompt_only=batching != "padding_free") for r in rows)
        what = "row" if batching == "padding_free" else "prompt"
        raise LoragError(
            f"{path}: no row fits max_seq_length ({max_len} tokens): the shortest {what} has {shortest} tokens",
            hint="raise max_seq_length in the training recipe (the domain's, or the --config file), or "
            "build the data with fewer or shorter passages (synth.distractors, ingest.chunk_tokens)",
        )
    return kept, len(rows) - len(kept)


@dataclass
class _Data:
    """The data phase's output: the rows that train and evaluate, and how many were left out for length."""

    rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    too_long: int


def _data_phase(
    cfg: TrainConfig,
    plan: accel.Plan,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    train_file: Path,
) -> _Data:
    rows, too_long = _fitting_rows(rows, tokenizer, cfg.max_seq_length, plan.batching, train_file, cfg.max_row_loss)
    if eval_rows:
        eval_rows, _ = _fitting_rows(eval_rows, tokenizer, cfg.max_seq_length, plan.batching, None)
    return _Data(rows, eval_rows, too_long)
