"""lorag's SFTTrainer: micro-batches inside a step, and no GPU reads after every micro-batch.

Micro-batches: a step's padded batch of `batch_size` rows runs forward/backward in groups of
`micro_batch` rows, each cut to its own longest row (rounded up to the padding multiple), with the
loss normalised by the whole batch's answer tokens: the gradients, data order and optimizer steps
of one batch, with the activation memory of a micro-batch (which kept layers then spend on skipping
the recompute: finetune/graphs.py).

No GPU reads: transformers reads the token count (`.item()` on a device sum) after every
micro-batch, and its NaN filter reads the loss (turned off in the arguments). Each read drains the
GPU before Python goes on to the next micro-batch, which then starts on an idle GPU. Here non-pad
tokens are summed on the device and read at logging steps and at the end (`tokens_seen`).
"""

from __future__ import annotations

from typing import Any


def split_rows(inputs: dict[str, Any], rows: int, multiple: int) -> list[dict[str, Any]]:
    """A right-padded batch as consecutive groups of `rows` rows, each cut to its longest row rounded
    up to `multiple` columns. Tensors without the batch's (rows, columns) shape are passed whole."""
    mask = inputs["attention_mask"]
    n, width = mask.shape
    lengths = mask.sum(dim=1).tolist()  # one read per step, before any of its work is queued
    parts = []
    for a in range(0, n, rows):
        b = min(n, a + rows)
        cols = min(width, -(-max(max(lengths[a:b]), 1) // multiple) * multiple)
        parts.append({k: (v[a:b, :cols].contiguous() if getattr(v, "shape", None) == (n, width) else v)
                      for k, v in inputs.items()})  # fmt: skip
    return parts


def lorag_trainer(trainer_cls: type, *, micro_rows: int = 0, multiple: int = 1) -> type:
    """trainer_cls (trl's SFTTrainer) with micro-batches of `micro_rows` rows inside each step (0: none)
    and the token count kept on the device."""

    class LoragTrainer(trainer_cls):  # type: ignore[misc, valid-type]
        _tokens: Any = None

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            mask = inputs.get("attention_mask")
            if not micro_rows or mask is None or mask.dim() != 2 or mask.shape[0] <= micro_rows or "labels" not in inputs:
                return super().training_step(model, inputs, num_items_in_batch)
            if num_items_in_batch is None:  # each part's loss must be its share of the whole batch's mean
                num_items_in_batch = (inputs["labels"][:, 1:] != -100).sum()
            total = None
            for part in split_rows(inputs, micro_rows, multiple):
                loss = super().training_step(model, part, num_items_in_batch)
                total = loss if total is None else total + loss
            return total

        def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
            mask = inputs.get("attention_mask")
            if mask is None:  # padding-free rows: transformers' own count
                super()._track_num_input_tokens(inputs)
                return
            n = mask.sum()
            self._tokens = n if self._tokens is None else self._tokens + n

        def tokens_seen(self) -> int:
            if self._tokens is not None:
                self.state.num_input_tokens_seen += int(self._tokens)
                self._tokens = None
            return int(self.state.num_input_tokens_seen or 0)

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            self.tokens_seen()
            super().log(logs, *args, **kwargs)

    return LoragTrainer
