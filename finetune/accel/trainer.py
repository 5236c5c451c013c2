"""lorag's SFTTrainer: micro-batches inside a step, and no GPU reads after every micro-batch.

Micro-batches: a step's padded batch of `batch_size` rows runs forward/backward in groups of
`micro_batch` rows, each cut to its own longest row (rounded up to the padding multiple), with the
loss normalised by the whole batch's answer tokens: the gradients, data order and optimizer steps
of one batch, with the activation memory of a micro-batch (which kept layers then spend on skipping
the recompute: finetune/accel/graphs.py).

No GPU reads: transformers reads the token count (`.item()` on a device sum) after every
micro-batch, and its NaN filter reads the loss (turned off in the arguments); trl's loss reads its
entropy, token accuracy and token count (four reads). Each read drains the GPU, which then idles
while Python prepares the next work. Here non-pad tokens and trl's metrics are summed on the device
and read at logging steps and at the end (`tokens_seen`); the loss is trl's own formula.

No attention mask (mask_free, set under CUDA graphs, whose layers ignore it): rows are padded on the
right, so under causal attention no real token sees a pad and the mask changes nothing a loss
reads, while building it cost Python time and a GPU read in every forward.

Packed steps (finetune/accel/packing.py): the training batches come from a PackedSteps batch sampler, when
one is set on the trainer as `packed_steps` (built from the tokenized rows' lengths), collated into
one fixed-size sequence per step; the collator's count of real tokens is what `tokens_seen` adds up.
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
        parts.append(
            {
                k: (v[a:b, :cols].contiguous() if getattr(v, "shape", None) == (n, width) else v)
                for k, v in inputs.items()
            }
        )
    return parts


def lorag_trainer(trainer_cls: type, *, micro_rows: int = 0, multiple: int = 1, mask_free: bool = False) -> type:  # noqa: C901 - the sum of the trainer class's small methods
    """trainer_cls (trl's SFTTrainer) with micro-batches of `micro_rows` rows inside each step (0: none),
    the token count and loss metrics kept on the device, (mask_free) no attention mask in training
    forwards of right-padded rows, and training steps packed by `packed_steps` when it is set."""

    class LoragTrainer(trainer_cls):  # type: ignore[misc, valid-type]
        _tokens: Any = None
        _loss_stats: Any = None  # summed on the device: answer tokens, entropy, correct top-1, input tokens
        packed_steps: Any = None  # packing.PackedSteps, set before train() when packed
        _real_tokens: int | None = None  # the packed batch being trained: its rows' tokens (no pads)

        def train_lengths(self) -> list[int]:
            """The tokenized training rows' lengths (what trl truncated to max_length), for packing."""
            return [len(x) for x in self.train_dataset["input_ids"]]

        def get_train_dataloader(self) -> Any:
            if self.packed_steps is None:
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            from .packing import PackedCollator

            steps = self.packed_steps
            collate = PackedCollator(self.processing_class.pad_token_id, steps.max_len, steps.capacity, steps.slots)
            data = self._remove_unused_columns(self.train_dataset, description="training")
            return self.accelerator.prepare(
                DataLoader(
                    data,
                    batch_sampler=steps,
                    collate_fn=collate,
                    num_workers=0,
                    pin_memory=self.args.dataloader_pin_memory,
                )
            )

        def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
            real = inputs.pop("real_tokens", None)  # packed rows: the collator's count, not a model input
            self._real_tokens = real
            if real is not None and self.model.training:
                self._tokens = (self._tokens or 0) + real
            return super()._prepare_inputs(inputs)

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            mask = inputs.get("attention_mask")
            if (
                not micro_rows
                or mask is None
                or mask.dim() != 2
                or mask.shape[0] <= micro_rows
                or "labels" not in inputs
            ):
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
            if self.packed_steps is not None:  # counted from the collator's figure (_prepare_inputs)
                return
            if mask is None:  # padding-free rows: transformers' own count
                super()._track_num_input_tokens(inputs)
                return
            n = mask.sum()
            self._tokens = n if self._tokens is None else self._tokens + n

        def _plain_loss(self) -> bool:
            """trl's default loss path (no auxiliary, custom or smoothed loss, one process)."""
            return (
                not getattr(self, "aux_loss_enabled", True)
                and self.compute_loss_func is None
                and self.label_smoother is None
                and getattr(self.args, "loss_type", None) == "nll"
                and self.accelerator.num_processes == 1
                and isinstance(getattr(self, "_metrics", None), dict)
            )

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            if return_outputs or not self.model.training or not self._plain_loss():
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            import torch

            mask = inputs.get("attention_mask")
            model_inputs = {k: v for k, v in inputs.items() if not (mask_free and k == "attention_mask")}
            model_inputs["use_cache"] = False
            outputs = model(**model_inputs, fused_lm_head=True)
            valid = outputs.label_mask.sum()
            per_token_loss = -outputs.log_probs  # zero on ignored positions
            loss = per_token_loss.sum() / torch.as_tensor(
                valid if num_items_in_batch is None else num_items_in_batch
            ).clamp(min=1)
            with torch.no_grad():
                zero = valid.new_zeros((), dtype=torch.float32)
                stats = torch.stack(
                    [
                        valid.float(),
                        outputs.entropy.detach().sum().float() if outputs.entropy is not None else zero,
                        outputs.is_top1.sum().float() if outputs.is_top1 is not None else zero,
                        mask.sum().float()
                        if mask is not None
                        else zero + (self._real_tokens or inputs["input_ids"].numel()),
                    ]
                )
            self._loss_stats = stats if self._loss_stats is None else self._loss_stats + stats
            return loss

        def _flush_loss_stats(self) -> None:
            """trl's train metrics from the device sums since the last log (one read)."""
            if self._loss_stats is None:
                return
            valid, entropy, correct, tokens = self._loss_stats.tolist()
            self._loss_stats = None
            metrics = self._metrics["train"]
            metrics["entropy"].append(entropy / valid if valid > 0 else 0.0)
            metrics["mean_token_accuracy"].append(correct / valid if valid > 0 else 0.0)
            self._total_train_tokens += int(tokens)
            metrics["num_tokens"] = [self._total_train_tokens]

        def tokens_seen(self) -> int:
            """Tokens trained so far, every process's (under several, a collective: all ranks log at the same steps)."""
            if self.accelerator.num_processes > 1:
                import torch

                local = torch.as_tensor(self._tokens or 0, device=self.accelerator.device).reshape(1)
                self._tokens = self.accelerator.reduce(local, reduction="sum")
            if self._tokens is not None:
                self.state.num_input_tokens_seen += int(self._tokens)
                self._tokens = None
            return int(self.state.num_input_tokens_seen or 0)

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            self.tokens_seen()
            self._flush_loss_stats()
            super().log(logs, *args, **kwargs)

    return LoragTrainer
