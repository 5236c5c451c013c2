"""Packed steps: each optimizer step is one sequence of a fixed number of tokens holding several rows.

Padded batches come in as many shapes as their lengths round to (9 on the benchmark's rows, each costing
a warm-up and two CUDA graph captures) and pad ~6% of their tokens. Packed, every step has the same
shape, so the graphed layers (finetune/accel/graphs.py) capture once: the step's rows end to end, then pad
tokens up to `capacity` as sequences of their own. Attention keeps each row to itself (FlashAttention's
varlen kernel over `cu_seq_lens`, finetune/accel/varlen_attention.py), positions restart with every row, and
no label reaches across a row boundary.

Which rows share a step: best-fit decreasing on their lengths (ties in a new random order every epoch),
steps in a shuffled order. `capacity` is the smallest multiple of `multiple` that packs an epoch into
as many steps as batches of `rows_per_step` rows would take, so the optimizer steps match padded
batching's; the steps per epoch are fixed up front (the trainer schedules by them).
"""

from __future__ import annotations

import bisect
import math
import random
from typing import Any, Iterator, Sequence


def best_fit_decreasing(lengths: Sequence[int], capacity: int, rng: random.Random | None = None) -> list[list[int]]:
    """Row indices grouped into bins of at most `capacity` tokens: longest rows first (equal lengths in
    the rng's order), each into the fullest bin it fits."""
    order = list(range(len(lengths)))
    if rng is not None:
        rng.shuffle(order)  # a stable sort keeps this order among equal lengths
    order.sort(key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (tokens left, bin), sorted
    for i in order:
        n = lengths[i]
        if n > capacity:
            raise ValueError(f"row {i} has {n} tokens, over the step's {capacity}")
        at = bisect.bisect_left(free, (n, -1))
        if at == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - n, len(bins) - 1))
            continue
        left, b = free.pop(at)
        bins[b].append(i)
        bisect.insort(free, (left - n, b))
    return bins


def step_capacity(lengths: Sequence[int], rows_per_step: int, multiple: int) -> int:
    """The fewest tokens per step (a multiple of `multiple`) that pack the rows into as many steps as
    batches of rows_per_step rows."""
    steps = math.ceil(len(lengths) / rows_per_step)
    cap = max(math.ceil(sum(lengths) / steps), max(lengths))
    cap = math.ceil(cap / multiple) * multiple
    while len(best_fit_decreasing(lengths, cap)) > steps:
        cap += multiple
    return cap


def _pad_runs(pad: int, max_len: int) -> int:
    return math.ceil(pad / max_len) if pad > 0 else 0


class PackedSteps:
    """A batch sampler: per epoch, the row indices of every step. len() is the steps per epoch, the
    same every epoch. `slots` bounds the sequences in a step (rows plus pad runs of at most `max_len`
    tokens), checked over the first `epochs` epochs; a later packing over it uses epoch 0's bins."""

    def __init__(self, lengths: Sequence[int], capacity: int, max_len: int, *, seed: int, epochs: int = 1):
        self.lengths, self.capacity, self.max_len, self.seed = list(lengths), capacity, max_len, seed
        self.epoch = 0
        self.base = best_fit_decreasing(self.lengths, capacity)
        self._cache: dict[int, list[list[int]]] = {}
        self.slots = max(self._slots_of(b) for b in [self.base, *(self._pack(e) for e in range(max(1, epochs)))])

    @classmethod
    def for_rows(
        cls, lengths: Sequence[int], rows_per_step: int, multiple: int, max_len: int, *, seed: int, epochs: int = 1
    ) -> "PackedSteps":
        """Steps of step_capacity(lengths, rows_per_step, multiple) tokens."""
        return cls(lengths, step_capacity(lengths, rows_per_step, multiple), max_len, seed=seed, epochs=epochs)

    def _slots_of(self, bins: list[list[int]]) -> int:
        return max(len(b) + _pad_runs(self.capacity - sum(self.lengths[i] for i in b), self.max_len) for b in bins)

    def _pack(self, epoch: int) -> list[list[int]]:
        """The epoch's bins, in the epoch's order; epoch 0's bins when this packing takes more steps."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        bins = best_fit_decreasing(self.lengths, self.capacity, rng)
        if len(bins) != len(self.base):
            bins = [list(b) for b in self.base]
        rng.shuffle(bins)
        return bins

    def bins(self, epoch: int) -> list[list[int]]:
        if epoch not in self._cache:
            bins = self._pack(epoch)
            if self._slots_of(bins) > self.slots:  # an epoch past those checked: stay within the captured size
                bins = [list(b) for b in self.base]
                random.Random(epoch).shuffle(bins)
            self._cache = {epoch: bins}
        return self._cache[epoch]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> "PackedSteps":  # accelerate sets the epoch through batch_sampler.sampler
        return self

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self) -> Iterator[list[int]]:
        bins = self.bins(self.epoch)
        self.epoch += 1  # the next epoch, unless the trainer sets it
        yield from bins


class PackedCollator:
    """Rows (trl's tokenized `input_ids` and `labels`) as one sequence: `capacity` tokens (None: the rows'
    total rounded up to `multiple`), the rest pad runs of at most `max_len` tokens; `cu_seq_lens` with
    `slots` + 1 entries (0: as many as needed), the unused ones at the end (empty sequences)."""

    def __init__(self, pad_id: int, max_len: int, capacity: int | None = None, slots: int = 0, multiple: int = 64):
        self.pad_id, self.max_len, self.capacity, self.slots, self.multiple = pad_id, max_len, capacity, slots, multiple

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows = [list(e["input_ids"]) for e in examples]
        labels = [list(e.get("labels") or e["input_ids"]) for e in examples]
        real = sum(len(r) for r in rows)
        size = self.capacity or math.ceil(max(real, 1) / self.multiple) * self.multiple
        if real > size:
            raise ValueError(f"{len(rows)} rows of {real} tokens do not fit a step of {size}")
        pad = size - real
        runs = [min(self.max_len, pad - a) for a in range(0, pad, self.max_len)]
        lens = [len(r) for r in rows] + runs
        if self.slots and len(lens) > self.slots:
            raise ValueError(f"{len(rows)} rows and {len(runs)} pad runs: over the step's {self.slots} sequences")
        ids, lab, pos = [], [], []
        for r, y in zip(rows, labels):
            ids += r
            lab += [-100] + [int(t) for t in y[1:]]  # a row's first token is nobody's target
            pos += range(len(r))
        for n in runs:
            ids += [self.pad_id] * n
            lab += [-100] * n
            pos += range(n)
        cu = [0]
        for n in lens:
            cu.append(cu[-1] + n)
        cu += [size] * (max(self.slots, len(lens)) - len(lens))
        longest = max(lens)
        cu_t = torch.tensor(cu, dtype=torch.int32)
        return {
            "input_ids": torch.tensor([ids]),
            "labels": torch.tensor([lab]),
            "position_ids": torch.tensor([pos]),
            "cu_seq_lens_q": cu_t,
            "cu_seq_lens_k": cu_t,
            "max_length_q": longest,
            "max_length_k": longest,
            "real_tokens": real,
        }
