"""How the graphed layers (finetune/accel/graphs.py) find or build a layer's programs at an input shape.

A mixin of LayerGraphs (its state is LayerGraphs'): the shape's key and static buffers, the layer's entry at that
shape (captured on first use), built either on the stand-in that layers of one structure share (its programs
captured once per shape, each layer's tensors loaded into it before a replay: finetune/accel/graph_sharing.py) or
on the layer itself (a kept layer's backward captured after the last layer's forward), and a layer's programs
(finetune/accel/graph_programs.py) with the fused LoRA outputs its recompute skips and the token tiles of its MLP.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from . import graph_programs, tiled_mlp
from .graph_replay import _Entry, _load_rope, _Shape, _Shared
from .graph_sharing import layer_copy, layer_tensors, pack_frozen, structure, unread_outputs
from .layers import autocast_state


class _Build:
    """LayerGraphs' entries: which programs layer i replays at a shape, found or built."""

    # -- a layer's entry at a shape ----------------------------------------------------------------
    @staticmethod
    def _key(hidden: Any, rope: Any, cu: Any = None) -> tuple:
        return (
            tuple(hidden.shape),
            hidden.dtype,
            tuple(rope[0].shape),
            rope[0].dtype,
            None if cu is None else tuple(cu.shape),
            autocast_state(hidden),
        )

    def _shape(self, key: tuple, hidden: Any, rope: Any, cu: Any = None) -> _Shape:
        import torch

        st = self.shapes.get(key)
        if st is None:
            n = hidden.numel()
            for name in ("x", "gout"):  # one allocation each at the largest batch, views per shape
                if name not in self.flat:
                    self.flat[name] = torch.empty(
                        self.max_tokens * hidden.shape[-1], dtype=hidden.dtype, device=hidden.device
                    )
            view = {name: self.flat[name][:n].view(hidden.shape) for name in ("x", "gout")}
            st = _Shape(
                **view,
                held=self.held,
                cos=torch.empty_like(rope[0]),
                sin=torch.empty_like(rope[1]),
                cu=None if cu is None else torch.empty_like(cu),
            )
            self.shapes[key] = st
        return st

    def _entry(self, i: int, hidden: Any, rope: Any, cu: Any = None) -> tuple[_Entry, _Shape, tuple] | None:
        """Layer i's captured programs for this shape (captured on first use), the shape's buffers with
        this step's rotary tables (and packed rows' offsets) loaded, and the shape's key; None when the
        layer cannot be captured."""
        key = self._key(hidden, rope, cu)
        st = self._shape(key, hidden, rope, cu)
        _load_rope(st, *rope, cu)
        if (i, key) in self.entries:
            entry = self.entries[(i, key)]
            return (entry, st, key) if entry is not None else None
        t0 = time.perf_counter()  # host time: a capture records work, it runs none (warm-ups are timed apart)
        try:
            entry = self._build(i, key, st, hidden)
            self.stats["captured"] += 1
            self.held.clear()  # warm-ups and probes wrote the buffers
        except Exception as e:  # a layer that cannot be captured: every layer runs eagerly from now on
            self._fail(e)
            entry = None
        self.stats["capture_s"] += time.perf_counter() - t0
        self.entries[(i, key)] = entry
        return (entry, st, key) if entry is not None else None

    def _xbuf(self, i: int, st: _Shape) -> Any:
        import torch

        if i not in self.xbufs:
            self.xbufs[i] = torch.empty(self.max_tokens * st.x.shape[-1], dtype=st.x.dtype, device=st.x.device)
        return self.xbufs[i][: st.x.numel()].view(st.x.shape)

    def _build(self, i: int, key: tuple, st: _Shape, hidden: Any) -> _Entry:
        import torch

        layer = self.layers[i]
        params = [p for p in layer.parameters() if p.requires_grad]
        if i not in self.grads:  # one accumulator per weight, shared by the layer's graphs of every shape
            self.grads[i] = [torch.zeros_like(p) for p in params]
        grads_acc = self.grads[i]
        kept = i in self.keep
        if not kept and self._shares(i):
            shared = self.shared.get(key) or self._build_shared(i, key, st, hidden)
            load = self._loader(i)

            def run_fwd() -> None:
                load()
                shared.run_fwd()

            def run_bwd() -> None:
                load()
                shared.run_bwd()
                if grads_acc:
                    torch._foreach_add_(grads_acc, shared.grads)

            self.stats["shared"] += 1
            return _Entry(params, grads_acc, run_fwd, run_bwd, graphs=shared.graphs)

        xbuf = self._xbuf(i, st) if kept else st.x
        fwd, bwd, recompute = self._programs(layer, params, grads_acc, st, key, xbuf, hidden, kept=kept, add=True)
        if not self.capture:
            return _Entry(params, grads_acc, fwd, bwd, x=xbuf if kept else None)
        if not kept:
            graphs = self._warm_and_capture(key, fwd, bwd, xbuf, hidden, st)
            return _Entry(params, grads_acc, graphs[0].replay, graphs[1].replay, graphs=graphs)
        self._warm_up(key, kept, fwd, bwd, xbuf, hidden, st)

        entry = _Entry(params, grads_acc, fwd, recompute, x=xbuf)  # until its backward is captured: recompute
        entry.graphs = (self._capture(fwd),)
        entry.run_fwd = entry.graphs[0].replay

        def capture_backward() -> None:
            entry.graphs += (self._capture(bwd),)
            entry.run_bwd = entry.graphs[-1].replay

        self.awaiting.setdefault(key, []).append(capture_backward)
        return entry

    # -- programs shared by layers of one structure -------------------------------------------------
    def _loader(self, i: int) -> Callable[[], None]:
        """What copies layer i's tensors into the stand-in: one copy of its packed frozen tensors plus one
        multi-tensor copy of its trainable weights; a copy per tensor where packing did not apply."""
        import torch

        if i not in self.tensors:
            self.tensors[i] = pack_frozen(layer_tensors(self.layers[i]))
        mine, theirs = self.tensors[i], self.template[1]
        if mine is None or theirs is None or mine.layout != theirs.layout:
            detached = [[t.detach() for t in layer_tensors(m)] for m in (self.template[0], self.layers[i])]
            return functools.partial(torch._foreach_copy_, *detached)

        def load() -> None:
            theirs.flat.copy_(mine.flat)
            if mine.trainable:
                torch._foreach_copy_(theirs.trainable, mine.trainable)

        return load

    def _shares(self, i: int) -> bool:
        """Whether layer i runs the stand-in's programs (made on first use: a copy of layer i)."""
        if not self.share:
            return False
        if self.template is None:
            stand_in = layer_copy(self.layers[i])
            self.template = (stand_in, pack_frozen(layer_tensors(stand_in)), structure(stand_in))
        if i not in self.structure_ok:
            self.structure_ok[i] = structure(self.layers[i]) == self.template[2]
        return self.structure_ok[i]

    def _build_shared(self, i: int, key: tuple, st: _Shape, hidden: Any) -> _Shared:
        import torch

        stand_in = self.template[0]
        params = [p for p in stand_in.parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) for p in params]
        with torch.no_grad():
            self._loader(i)()  # real weights for the warm-up
        fwd, bwd, _ = self._programs(stand_in, params, grads, st, key, st.x, hidden, kept=False, add=False)
        if not self.capture:
            shared = _Shared(fwd, bwd, grads)
        else:
            graphs = self._warm_and_capture(key, fwd, bwd, st.x, hidden, st)
            shared = _Shared(graphs[0].replay, graphs[1].replay, grads, graphs)
        self.shared[key] = shared
        return shared

    # -- one layer's programs (finetune/accel/graph_programs.py) -----------------------------------
    def _programs(
        self,
        layer: Any,
        params: list[Any],
        grads_acc: list[Any],
        st: _Shape,
        key: tuple,
        xbuf: Any,
        hidden: Any,
        *,
        kept: bool,
        add: bool,
    ) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
        """The layer's forward and backward bodies (to run or capture), and its recompute backward.
        add: the backward adds the weights' gradients into grads_acc (else writes them)."""
        call, autocast = graph_programs.layer_call(layer, st, key, self.varlen_max)
        grads_of = graph_programs.grads_probe(call, autocast, params, st, xbuf)
        skip = self._unread_outputs(layer, grads_of, xbuf, hidden, st) if self.skip_unread else []
        tiles = 1 if kept else self._tiles(layer, skip, hidden)
        return graph_programs.programs(
            layer, call, autocast, params, grads_acc, st, xbuf, skip=skip, tiles=tiles, kept=kept, add=add
        )

    def _tiles(self, layer: Any, skip: list[Any], hidden: Any) -> int:
        """How many token tiles layer's MLP runs over (finetune/accel/tiled_mlp.py): self.mlp_tiles where its
        output is known unread in a recompute (its down projection is among the skipped outputs) and it maps
        hidden -> hidden, else 1 (the reason in the stats)."""
        if self.mlp_tiles <= 1:
            return 1
        down = tiled_mlp.mlp_down(layer, hidden.shape[-1])
        if down is None:
            self.stats["mlp_tiles_off"] = "no hidden -> hidden MLP with a down projection"
            return 1
        if not any(m is down for m in skip):
            self.stats["mlp_tiles_off"] = "the recompute reads the MLP's output"
            return 1
        self.stats["mlp_tiles"] = self.mlp_tiles
        return self.mlp_tiles

    def _unread_outputs(
        self, layer: Any, grads_of: Callable[..., list[Any]], xbuf: Any, hidden: Any, st: _Shape
    ) -> list[Any]:
        """The layer's fused LoRA Linears whose outputs its recompute need not compute, found once per layer
        on this batch for a random output gradient (finetune/accel/graph_sharing.py unread_outputs)."""
        import torch

        if id(layer) not in self.unread:
            with torch.no_grad():
                xbuf.copy_(hidden.detach())
                st.gout.normal_()
            # on the stream the captures use: autograd nodes this probe leaves behind (a weight's gradient
            # accumulator outlives the graph that made it while anything still refers to it) then carry that
            # stream, and a capture that meets one carrying the default stream fails ("legacy stream")
            with self._side_stream():
                found = unread_outputs(layer, grads_of)
            names = {id(m): n for n, m in layer.named_modules()}
            self.stats["unread"] = sorted({*self.stats["unread"], *(names[id(m)] for m in found)})
            self.unread[id(layer)] = found
        return self.unread[id(layer)]
