"""Decoder layers trained as CUDA graphs: activation checkpointing, captured once per shape, replayed.

A small model's LoRA step is launch-bound: ~9-12k kernels per step, each launched through Python,
autograd and peft, kept the H100 30-43% busy (benchmarks/RESULTS.md). Here each decoder layer's work
is captured per input shape as two CUDA graphs and replayed every step:

  forward   the layer under no_grad, its output left in the input's buffer (where the next layer's replay
            finds it: one copy per layer, the one autograd keeps); only the input is kept (as checkpointing does)
  backward  the layer recomputed with grad, then autograd.grad for its input and its trainable
            (LoRA) weights, written to static buffers that autograd then accumulates as usual (the input's
            gradient over the output's, where the layer before finds it)

so a layer costs a few launches per step instead of ~300, with the math of gradient checkpointing.
Layers of one structure share their programs (share=True): each shape is captured once, on a copy of
the first such layer, and replayed for every layer after copying that layer's weights into the copy:
one copy of its frozen tensors, packed into one buffer, and one multi-tensor copy of its LoRA weights
(whose gradients are then added into the layer's own accumulators). Two captures per shape instead
of two per layer per shape (at 1B: 10 graphs instead of 160, and less memory).
The backward graph adds the LoRA weights' gradients straight into fixed accumulators that serve as
the weights' `.grad` (finetune/accel/graph_replay.py).

Layers in `keep` trade memory for compute instead: their forward graph runs with grad and leaves the
activations autograd saves in the graphs' memory pool, and their backward graph reads them, with no
recompute: a LoRA layer then costs 4N FLOPs per token instead of 6N. As torch.cuda.make_graphed_callables
does, the backward graphs are captured after the last layer's forward, last layer first. Every graph
shares one pool, which is safe because replays come in capture order within a micro-batch (layers
forward, then backward in reverse) and micro-batches never interleave; so a kept layer's activations
take pool memory once, at the largest shape, not once per shape.
With offload, a checkpointed layer's kept input waits for its backward in pinned CPU memory instead
(finetune/accel/offload.py).
Conditions, checked by the plan (finetune/accel/plan.py): padded batches padded on the
right (a causal layer then never lets a real token see a pad, so the graphs run without a mask;
pads carry no loss), shapes bucketed by `pad_to_multiple_of` so few graphs are captured, or packed
steps of one size (finetune/accel/packing.py: the rows' offsets are copied into a static buffer like the
rotary tables, and the varlen attention reads them, bounded by `varlen_max`), and no
dropout inside the layers (a replayed recompute would draw other masks than the forward). Anything
else (evaluation, no grad, a cache, extra attention kwargs, a capture that fails) runs the layer
as before, checkpointed when training; a no-grad forward over more tokens than a tile (trl's evaluation
during training) runs its MLP over token tiles (eval_tile_tokens; finetune/accel/tiled_mlp.py).

Here: LayerGraphs, which layer runs what at which shape, and the captures' lifecycle. Elsewhere: a layer's
entry at a shape, found or built (graph_build.py, a mixin of LayerGraphs), its warm-ups and captures on the side
stream (graph_stream.py, a mixin too), a layer's programs (graph_programs.py), the static buffers and the autograd
node that replays them (graph_replay.py), capture mechanics that need no state here (graph_capture.py), which
layers share programs (graph_sharing.py).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from . import tiled_mlp
from .graph_build import _Build
from .graph_capture import _failure_text
from .graph_replay import _Entry, _replay_fn, _Shape, _Shared
from .graph_sharing import Packed
from .graph_stream import _SideStream
from .offload import Offload

# after the last layer's training forward, hand the free cached memory back to the device (torch.cuda.empty_cache:
# every stream's free blocks but the graphs' pools; with expandable segments, free blocks anywhere in a segment), so
# the head and the loss map fresh pages instead of growing the pool past blocks too small for them. The host waits
# for the GPU there, once a micro-batch. 8B QLoRA on an H100: 8.15 -> 7.92 GB reserved, the step unchanged within
# the run's spread (benchmarks/RESULTS.md). Off: the benchmark's `notrim` arm
TRIM_BEFORE_HEAD = True


def trim_cache(out: Any) -> None:
    """TRIM_BEFORE_HEAD's hand-back, where `out` (the last layer's output) lives on a GPU."""
    if out.is_cuda:
        import torch

        torch.cuda.empty_cache()


_GRAPHED_KWARGS = {
    "attention_mask",
    "position_ids",
    "position_embeddings",
    "cache",
    "past_key_values",
    "use_cache",
    "cache_position",
    "cu_seq_lens_q",
    "cu_seq_lens_k",
    "max_length_q",
    "max_length_k",
}


class LayerGraphs(_Build, _SideStream):
    """Installs graphed forwards on a model's decoder layers for one training run.

    capture=False runs the same static-buffer programs eagerly instead of as CUDA graphs (the CPU
    tests check the bookkeeping with it). max_tokens bounds rows x padded length of any batch; keep is
    the number of leading layers whose activations are kept instead of recomputed (-1: all). varlen_max
    bounds a packed row's length (finetune/accel/packing.py; 0: packed rows run eagerly). offload holds the
    checkpointed layers' inputs in CPU memory until their backward (finetune/accel/offload.py)."""

    def __init__(
        self,
        layers: list[Any],
        *,
        max_tokens: int,
        checkpoint: bool = True,
        keep: int = 0,
        capture: bool = True,
        share: bool = True,
        skip_unread: bool = True,
        varlen_max: int = 0,
        offload: bool = False,
        mlp_tiles: int = 1,
        eval_tile_tokens: int | None = None,
    ):
        self.layers = list(layers)
        self.max_tokens = max_tokens
        self.varlen_max = varlen_max
        self.checkpoint = checkpoint
        n = len(self.layers)
        self.keep = set(range(n if keep < 0 else min(keep, n)))  # layers whose activations are kept, not recomputed
        self.capture = capture
        # checkpointed layers' inputs wait for their backward in CPU memory (finetune/accel/offload.py)
        self.offload = Offload() if offload and checkpoint else None
        held = [j for j in range(n) if j not in self.keep]  # the checkpointed layers: first and last
        self.held_ends = (held[0], held[-1]) if held else (-1, -1)
        self.share = share  # layers of one structure replay one stand-in layer's programs (see the module doc)
        self.skip_unread = skip_unread  # recomputes skip fused LoRA outputs nothing reads (_unread_outputs)
        self.mlp_tiles = mlp_tiles  # checkpointed layers' MLPs over this many token tiles (finetune/accel/tiled_mlp.py)
        # no-grad forwards (the evaluations during training, run eagerly outside the graphs' memory pool): each
        # layer's MLP over tiles of this many tokens (None: the model's hidden size; 0: whole), so its
        # intermediates come from the default pool a tile at a time, not a whole batch's on top of training's
        self.eval_tile_tokens = eval_tile_tokens
        self.unread: dict[int, list[Any]] = {}
        self.template: tuple | None = None  # (stand-in layer, its packed tensors, its structure)
        self.structure_ok: dict[int, bool] = {}
        self.tensors: dict[int, Packed | None] = {}  # per layer: what is copied into the stand-in before a replay
        self.shared: dict[tuple, _Shared] = {}
        self.xbufs: dict[int, Any] = {}  # kept layers' input buffers, one allocation each at the largest batch
        self.grads: dict[int, list[Any]] = {}  # per layer: its trainable weights' gradient accumulators (their .grad)
        self.awaiting: dict[
            tuple, list[Callable[[], None]]
        ] = {}  # per shape: kept layers' backward captures, in layer order
        self.shapes: dict[tuple, _Shape] = {}
        self.entries: dict[tuple, _Entry | None] = {}
        self.flat: dict[str, Any] = {}
        self.held: dict[str, Any] = {}  # what the shapes' x / gout buffers were last handed out as (_Shape.held)
        self.pool: Any = None
        self.stream: Any = None  # one side stream for warm-ups and captures: memory cached per stream is reused
        self.warm: set[tuple] = set()
        self.stats: dict[str, Any] = {
            "captured": 0,
            "shared": 0,
            "graphs": 0,
            "replayed": 0,
            "eager": 0,
            "failed": 0,
            "eager_reason": None,
            "capture_s": 0.0,
            "warmup_s": 0.0,
            "unread": [],
            "mlp_tiles": 1,
            "mlp_tiles_off": None,
            "eval_mlp_tiles": 0,  # the most tiles a no-grad forward's MLP ran over (0: none ran tiled)
        }
        self.failure: str | None = None
        self._saved: list[tuple[Any, bool]] = []

    # -- install / uninstall ------------------------------------------------------------------
    def install(self) -> "LayerGraphs":
        for i, layer in enumerate(self.layers):
            self._saved.append((layer, bool(getattr(layer, "gradient_checkpointing", False))))
            if hasattr(layer, "gradient_checkpointing"):
                layer.gradient_checkpointing = False  # the graphs checkpoint; transformers must not as well
            layer.forward = functools.partial(
                self._forward, i
            )  # instance attribute: module paths and state_dict unchanged
        return self

    def uninstall(self) -> None:
        for layer, ckpt in self._saved:
            vars(layer).pop("forward", None)
            if hasattr(layer, "gradient_checkpointing"):
                layer.gradient_checkpointing = ckpt
        self._saved.clear()
        self.entries.clear()
        self.shapes.clear()
        self.flat.clear()
        self.held.clear()
        self.xbufs.clear()
        self.awaiting.clear()
        self.grads.clear()
        self.shared.clear()
        self.unread.clear()
        self.tensors.clear()
        self.structure_ok.clear()
        self.template = None
        self.pool = self.stream = None

    def summary(self) -> dict[str, Any]:
        return {
            **self.stats,
            "capture_s": round(self.stats["capture_s"], 3),
            "warmup_s": round(self.stats["warmup_s"], 3),
            "shapes": len(self.shapes),
            "kept_layers": len(self.keep),
            **(self.offload.stats if self.offload is not None else {}),
            "failure": self.failure,
        }

    # -- the layer call ---------------------------------------------------------------------------
    def _orig(self, i: int) -> Callable[..., Any]:
        layer = self.layers[i]
        return type(layer).forward.__get__(layer)

    def _forward(self, i: int, *args: Any, **kwargs: Any) -> Any:
        import torch

        hidden = args[0] if args else kwargs.pop("hidden_states")
        rope = kwargs.get("position_embeddings")
        layer = self.layers[i]
        training = layer.training and torch.is_grad_enabled()
        if (
            training and self.checkpoint
        ):  # as transformers does under checkpointing: a recompute must not write a cache twice
            kwargs.update({k: None for k in ("cache", "past_key_values") if k in kwargs})
            kwargs["use_cache"] = False
        why = self._not_graphable(training, args, kwargs, hidden, rope)
        graphable = why is None
        if why and training and self.stats.get("eager_reason") is None:
            self.stats["eager_reason"] = why
        cu = kwargs.get("cu_seq_lens_q")
        found = self._entry(i, hidden, rope, cu) if graphable else None
        if found is None:
            return self._eager(i, hidden, *args[1:], **kwargs)
        entry, st, key = found
        self.stats["replayed"] += 1
        hold = None
        if self.offload is not None and entry.x is None:
            hold = (self.offload, i == self.held_ends[0], i == self.held_ends[1])
        out = _replay_fn().apply(hidden, entry, st, hold, rope[0], rope[1], cu, *entry.params)
        if i == len(self.layers) - 1 and key in self.awaiting:
            self._capture_kept_backwards(key)
        if i == len(self.layers) - 1 and TRIM_BEFORE_HEAD:
            trim_cache(out)
        return out

    def _capture_kept_backwards(self, key: tuple) -> None:
        """After the last layer's forward: the kept layers' backward graphs for this shape, last layer
        first (each capture frees that layer's activations in the pool to the ones captured after it,
        which run after it). Nothing runs: the activations the forward replays wrote stay put."""
        t0 = time.perf_counter()
        for capture in reversed(self.awaiting.pop(key, [])):
            if self.failure is not None:
                break  # the rest keep their eager fallback
            try:
                capture()
            except Exception as e:
                self._fail(e)
        self.stats["capture_s"] += time.perf_counter() - t0

    def _not_graphable(self, training: bool, args: tuple, kwargs: dict, hidden: Any, rope: Any) -> str | None:
        if self.failure is not None:
            return "a capture failed"
        if not training:
            return "not training (evaluation or no grad)"
        if len(args) > 1 or rope is None or hidden.dim() != 3:
            return "unexpected layer arguments"
        if kwargs.get("use_cache") or kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None:
            return "a KV cache"
        # extra kwargs ride along to every layer (e.g. num_items_in_batch for the loss): scalars are ignored,
        # but tensors such as packed-sequence boundaries change what attention does
        extra = [k for k, v in kwargs.items() if k not in _GRAPHED_KWARGS and getattr(v, "ndim", 0) > 0]
        if extra:
            return f"per-token arguments {extra}"
        cu = kwargs.get("cu_seq_lens_q")
        if cu is not None and (not self.varlen_max or hidden.shape[0] != 1):  # keys: the queries' rows (self-attention)
            return "packed rows without a length bound (varlen_max) or in a batch of several"
        if hidden.shape[0] * hidden.shape[1] > self.max_tokens:
            return f"batch of {hidden.shape[0]}x{hidden.shape[1]} tokens over {self.max_tokens}"
        return None

    def _eager(self, i: int, hidden: Any, *args: Any, **kwargs: Any) -> Any:
        import torch

        self.stats["eager"] += 1
        orig = self._orig(i)
        if self.checkpoint and self.layers[i].training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(orig, hidden, *args, use_reentrant=False, **kwargs)
        tiles = 1 if torch.is_grad_enabled() else self._eval_tiles(self.layers[i], hidden)
        if tiles > 1:
            self.stats["eval_mlp_tiles"] = max(self.stats["eval_mlp_tiles"], tiles)
            with tiled_mlp.tiled(self.layers[i].mlp, tiles, unread=False, skip=[]):
                return orig(hidden, *args, **kwargs)
        return orig(hidden, *args, **kwargs)

    def _eval_tiles(self, layer: Any, hidden: Any) -> int:
        """How many token tiles a no-grad forward runs layer's MLP over: one per eval_tile_tokens (default: the
        hidden size) of the batch's tokens, where the MLP maps hidden -> hidden through a down projection."""
        width = hidden.shape[-1]
        if self.eval_tile_tokens == 0 or tiled_mlp.mlp_down(layer, width) is None:
            return 1
        return -(-(hidden.numel() // width) // (self.eval_tile_tokens or width))

    # -- a capture that fails ----------------------------------------------------------------------
    def _fail(self, e: Exception) -> None:
        self.failure = self.failure or _failure_text(e)
        self.stats["failed"] += 1
