"""Graphed decoder layers (finetune/accel/graphs.py): the same gradients as gradient checkpointing.

On this CPU the captured programs run eagerly (capture=False): what is checked is the bookkeeping
around the graphs — static buffers shared by layers and shapes, the input and weight gradients
handed to autograd, accumulation over micro-batches, no mask on right-padded rows, clean uninstall.
The CUDA capture itself runs in tests/test_accel_gpu.py (`pytest -m gpu`) on a GPU."""

import pytest
import torch

from finetune.accel.graphs import LayerGraphs
from finetune.accel.layers import decoder_layers


@pytest.fixture()
def lora_model(tiny_lm):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation="sdpa")
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False)
    )
    model.train()
    return model


def right_padded_batch(lengths, width, pad=0):
    torch.manual_seed(1)
    ids = torch.full((len(lengths), width), pad)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(3, 200, (n,))
        mask[i, :n] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def grads_of(model, batches):
    model.zero_grad(set_to_none=True)
    for b in batches:
        model(**b).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("keep", [0, 1, -1], ids=["all-recomputed", "first-kept", "all-kept"])
def test_graphed_layers_give_checkpointing_gradients(lora_model, keep):
    """Checkpointed layers recompute in backward; kept layers (keep) hold their autograd state from
    forward to backward. Either way: the gradients of gradient checkpointing."""
    model = lora_model
    batches = [right_padded_batch([9, 5, 12], 16), right_padded_batch([16, 3, 7], 16), right_padded_batch([4, 6], 8)]
    batches[0]["num_items_in_batch"] = torch.tensor(
        40
    )  # the Trainer's loss kwarg reaches every layer: not a reason to run eagerly
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    reference = grads_of(model, batches)  # masked attention, checkpointed, accumulated over 3 micro-batches
    keys = set(model.state_dict())

    graphs = LayerGraphs(decoder_layers(model), max_tokens=3 * 16, keep=keep, capture=False).install()
    got = grads_of(model, batches)
    summary = graphs.summary()
    graphs.uninstall()

    assert summary["failure"] is None and summary["eager"] == 0, summary
    n_layers = len(decoder_layers(model))
    assert summary["kept_layers"] == {0: 0, 1: 1, -1: n_layers}[keep]
    assert summary["captured"] == 2 * n_layers  # (3,16) twice -> one program pair per layer, and (2,8)
    assert summary["shared"] == 2 * (n_layers - summary["kept_layers"])  # the recomputed layers run the stand-in's
    assert summary["replayed"] == 3 * n_layers and summary["shapes"] == 2
    assert got.keys() == reference.keys() and len(got) > 0
    for name, g in reference.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name
    assert set(model.state_dict()) == keys  # no renamed or added modules
    assert all("forward" not in vars(layer) for layer in decoder_layers(model))
    assert all(layer.gradient_checkpointing for layer in decoder_layers(model))  # restored


@pytest.mark.parametrize("keep", [0, 1], ids=["all-recomputed", "first-kept"])
def test_offloaded_inputs_give_the_same_gradients_and_come_back_last_first(lora_model, keep):
    """offload=True: each checkpointed layer's input is held (on a GPU: in pinned CPU memory) until its backward,
    which takes it back and starts fetching the one saved before it in the same pass. Same gradients; per pass
    the saves chain in layer order from the first checkpointed layer, the last one stays put, loads go last
    first."""
    model = lora_model
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    batches = [right_padded_batch([9, 5, 12], 16), right_padded_batch([4, 6], 8)]
    reference = grads_of(model, batches)
    graphs = LayerGraphs(decoder_layers(model), max_tokens=3 * 16, keep=keep, capture=False, offload=True).install()
    saves, loads = [], []
    save, load = graphs.offload.save, graphs.offload.load

    def spy_save(x, *, first, keep=False):
        s = save(x, first=first, keep=keep)
        saves.append((s, s.prev, first, keep))
        return s

    def spy_load(s, into):
        loads.append(s)
        return load(s, into=into)

    graphs.offload.save, graphs.offload.load = spy_save, spy_load
    try:
        got = grads_of(model, batches)
    finally:
        graphs.uninstall()
    for name, g in reference.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name
    n_held = len(decoder_layers(model)) - keep
    assert len(saves) == len(loads) == 2 * n_held  # two micro-batches
    for p in range(2):
        pass_saves = saves[p * n_held : (p + 1) * n_held]
        assert [(first, kept) for _, _, first, kept in pass_saves] == [(k == 0, k == n_held - 1) for k in range(n_held)]
        assert [prev for _, prev, _, _ in pass_saves] == [None] + [s for s, _, _, _ in pass_saves[:-1]]
        assert loads[p * n_held : (p + 1) * n_held] == [s for s, _, _, _ in reversed(pass_saves)]
    assert all(s.prev is None and s.gpu is None for s, _, _, _ in saves)  # nothing left referenced


@pytest.mark.parametrize("keep", [0, 1], ids=["all-recomputed", "first-kept"])
def test_a_layer_finds_its_input_where_the_layer_before_left_it(lora_model, keep, monkeypatch):
    """A layer's forward leaves its output in the shared input buffer, its backward the input's gradient in
    the shared gradient buffer: the next replay copies nothing in but the first layer's input (and, in
    backward, the last layer's output gradient), and the gradients stay checkpointing's."""
    model = lora_model
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    batch = right_padded_batch([9, 5, 12], 16)
    reference = grads_of(model, [batch])
    graphs = LayerGraphs(decoder_layers(model), max_tokens=3 * 16, keep=keep, capture=False).install()
    into = {"x": 0, "gout": 0}  # copy_ calls whose destination is one of the shared buffers
    real = torch.Tensor.copy_

    def counted(dst, *a, **k):
        for name in into:
            if name in graphs.flat and dst.data_ptr() == graphs.flat[name].data_ptr():
                into[name] += 1
        return real(dst, *a, **k)

    try:
        grads_of(model, [batch])  # builds the programs (warm-ups and probes write the buffers)
        model.zero_grad(set_to_none=True)
        monkeypatch.setattr(torch.Tensor, "copy_", counted)
        loss = model(**batch).loss
        fwd = dict(into)
        loss.backward()
        bwd = {k: into[k] - fwd[k] for k in into}
        monkeypatch.undo()
        got = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    finally:
        monkeypatch.undo()
        graphs.uninstall()
    n = len(decoder_layers(model))
    # forward: each layer's output over its input, and the first layer's input when it is recomputed (a kept
    # layer reads its own buffer); backward: each recomputed layer's input, the last layer's output gradient,
    # then each layer's input gradient over it
    assert fwd == {"x": n + (keep == 0), "gout": 0}
    assert bwd == {"x": n - keep, "gout": 1 + n}
    for name, g in reference.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name


def test_offload_hands_back_what_it_held():
    from finetune.accel.offload import Offload

    off = Offload()
    xs = [torch.randn(3, 5) for _ in range(3)]
    held = [off.save(xs[0], first=True), off.save(xs[1], first=False), off.save(xs[2], first=False, keep=True)]
    before = xs[0].clone()
    xs[0].add_(1)  # the caller's tensor changing after the save does not change what was held
    assert held[2].held is xs[2]  # kept: not copied
    into = torch.empty(3, 5)
    for k, want in ((2, xs[2]), (1, xs[1]), (0, before)):
        off.load(held[k], into=into)
        assert torch.equal(into, want), k
    assert off.stats["offloaded"] == 0  # nothing left a GPU


def test_a_fetched_input_dropped_unread_makes_the_compute_stream_wait_for_its_copy():
    """A fetch writes into memory of the compute stream's pool on a copy stream: a held input dropped before its
    load (a backward ended early, a layer whose backward never runs) makes the compute stream wait for that copy
    before the memory is reused; one that was loaded, or never fetched, asks nothing."""
    from finetune.accel.offload import Saved

    class Stream:
        def __init__(self):
            self.waited = []

        def wait_event(self, e):
            self.waited.append(e)

    compute = Stream()
    s = Saved(held=None, gpu=object(), ready="copy done", compute=compute)
    del s
    assert compute.waited == ["copy done"]
    loaded = Saved(held=None)  # what load leaves: gpu, ready and compute cleared
    del loaded
    assert compute.waited == ["copy done"]


def test_weight_grads_follow_the_trainers_zeroing(lora_model):
    """The graphs add weight gradients into accumulators that stand in as .grad: a step after
    zero_grad(set_to_none=True) or after an in-place zeroing starts from zero, and a .grad set
    from outside (e.g. by the trainer) is added to, as autograd would."""
    model = lora_model
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    batches = [right_padded_batch([9, 5, 12], 16), right_padded_batch([4, 6], 8)]
    reference = grads_of(model, batches)
    graphs = LayerGraphs(decoder_layers(model), max_tokens=3 * 16, capture=False).install()
    try:
        grads_of(model, batches)
        first = grads_of(model, batches)  # .grad set to None before: the accumulators start again from zero
        model.zero_grad(set_to_none=False)  # zeroed in place: the accumulators themselves
        for b in batches:
            model(**b).loss.backward()
        zeroed = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.ones_like(p)  # a gradient from elsewhere
        model(**batches[0]).loss.backward()
        added = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    finally:
        graphs.uninstall()
    one_batch = grads_of(model, batches[:1])
    for name, g in reference.items():
        assert torch.allclose(first[name], g, atol=1e-5, rtol=1e-4), name
        assert torch.allclose(zeroed[name], g, atol=1e-5, rtol=1e-4), name
        assert torch.allclose(added[name], one_batch[name] + 1, atol=1e-5, rtol=1e-4), name


def test_eval_and_oversized_batches_run_eagerly(lora_model):
    model = lora_model
    graphs = LayerGraphs(decoder_layers(model), max_tokens=8, capture=False).install()
    try:
        batch = right_padded_batch([5, 7], 8)  # 16 tokens > max_tokens
        loss = model(**batch).loss
        loss.backward()
        with torch.no_grad():
            model(**batch)
        assert graphs.stats["replayed"] == 0 and graphs.stats["eager"] == 2 * len(decoder_layers(model))
    finally:
        graphs.uninstall()


def test_trl_collator_pads_on_the_right(tiny_lm):
    """The graphs drop the attention mask, which is exact only for right padding: trl must keep it."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=0, pad_to_multiple_of=8)
    batch = collate(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
            {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, 8, 9]},
        ]
    )
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]


def test_sliding_window_models_are_recognised():
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    from finetune.accel.layers import sliding_window

    assert sliding_window(LlamaConfig()) is None
    assert sliding_window(MistralConfig(sliding_window=512)) == 512  # graphs off when the window is under the length
    assert sliding_window(Qwen2Config(sliding_window=4096, use_sliding_window=False)) is None


class _RecordedProgram:
    """Stands in for a CUDA graph on the CPU: capture records the body, replay runs it."""

    order: list = []

    def __init__(self, body):
        self.body = body
        _RecordedProgram.order.append(body)

    def replay(self):
        self.body()


@pytest.mark.parametrize("keep", [1, -1])
def test_capture_path_orders_kept_backwards_after_the_last_forward(lora_model, keep, monkeypatch):
    """The capture path (warm-up, capture, replay), with recorded programs standing in for CUDA graphs:
    kept layers' backward programs are captured once the last layer's forward has run, last layer
    first, and then replace the recompute fallback; the gradients stay those of checkpointing."""
    import contextlib

    model = lora_model
    batches = [right_padded_batch([9, 5, 12], 16), right_padded_batch([16, 3, 7], 16)]
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    reference = grads_of(model, batches)

    monkeypatch.setattr(torch.cuda, "Stream", lambda: None)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(LayerGraphs, "_side_stream", lambda self: contextlib.nullcontext())
    monkeypatch.setattr(LayerGraphs, "_capture", lambda self, body: _RecordedProgram(body))
    _RecordedProgram.order = []
    layers = decoder_layers(model)
    graphs = LayerGraphs(layers, max_tokens=3 * 16, keep=keep, capture=True).install()
    try:
        got = grads_of(model, batches)
        kept = sorted(graphs.keep)
        entries = {i: e for (i, _), e in graphs.entries.items()}
        assert graphs.failure is None and not graphs.awaiting  # every kept backward was captured
        for i, e in entries.items():
            assert len(e.graphs) == 2 and (e.x is not None) == (i in kept)
            if i in kept:
                assert e.run_bwd == e.graphs[1].replay  # the captured backward, not the fallback
            else:  # the stand-in's programs, shared by the recomputed layers
                assert e.graphs == next(iter(graphs.shared.values())).graphs
        assert len(_RecordedProgram.order) == 2 * (len(kept) + (len(layers) > len(kept)))  # 2 per kept layer, 2 shared
        captured_backwards = [b for b in _RecordedProgram.order if b.__name__ == "bwd"]
        assert captured_backwards[-len(kept) :] == [
            entries[i].graphs[1].body for i in reversed(kept)
        ]  # last layer first
    finally:
        graphs.uninstall()
    for name, g in reference.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name


def test_a_layer_of_another_structure_gets_its_own_programs(lora_model):
    """Layers share the stand-in's programs only when their structure matches: here layer 1's q_proj
    adapter has another scaling (as another rank or alpha, or a sliding window, would differ), so it is
    captured on its own, and every layer still gets checkpointing's gradients."""
    from finetune.accel.graph_sharing import structure as _structure

    model = lora_model
    layers = decoder_layers(model)
    assert _structure(layers[0]) == _structure(layers[1])
    layers[1].self_attn.q_proj.scaling["default"] *= 3
    assert _structure(layers[0]) != _structure(layers[1])
    batches = [right_padded_batch([9, 5, 12], 16), right_padded_batch([4, 6], 8)]
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    reference = grads_of(model, batches)
    graphs = LayerGraphs(layers, max_tokens=3 * 16, capture=False).install()
    try:
        got = grads_of(model, batches)
        assert graphs.structure_ok == {0: True, 1: False} and graphs.stats["shared"] == 2  # layer 0, both shapes
    finally:
        graphs.uninstall()
    for name, g in reference.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name


def test_pack_frozen_moves_frozen_tensors_into_one_buffer():
    """Frozen tensors become views of one byte buffer with their values, shapes and dtypes (a tensor
    listed twice packed once); trainable weights stay separate; another layout is told apart."""
    from finetune.accel.graph_sharing import pack_frozen

    torch.manual_seed(0)
    w = torch.randn(5, 3).to(torch.bfloat16)
    code = torch.randint(0, 255, (7,), dtype=torch.uint8)
    scalar = torch.tensor(0.25)
    lora = torch.nn.Parameter(torch.randn(2, 3))
    values = [t.clone() for t in (w, code, scalar)]
    tensors = [w, lora, code, scalar, code]
    packed = pack_frozen(tensors)
    assert packed is not None
    for t, v in zip((w, code, scalar), values):
        assert t.dtype == v.dtype and t.shape == v.shape and torch.equal(t, v)
        assert t.untyped_storage().data_ptr() == packed.flat.untyped_storage().data_ptr()
    assert lora.untyped_storage().data_ptr() != packed.flat.untyped_storage().data_ptr()
    assert len(packed.trainable) == 1 and packed.trainable[0].data_ptr() == lora.data_ptr()
    assert packed.layout[1] == packed.layout[3]  # the repeated tensor (frozen ones only are laid out): one slot
    w.add_(1)  # writes go to the buffer
    assert torch.equal(packed.flat[: w.numel() * 2].view(torch.bfloat16).view(5, 3), w)

    other = pack_frozen(
        [
            torch.zeros(5, 3, dtype=torch.bfloat16),
            torch.zeros(7, dtype=torch.uint8),
            torch.tensor(1.0),
            torch.zeros(7, dtype=torch.uint8),
        ]
    )
    assert other.layout != packed.layout  # the last entry is a tensor of its own here
    assert pack_frozen([lora]) is None  # nothing frozen


def test_a_failed_capture_reports_the_op_that_failed_inside_it():
    """capture_end's "previous error during capture" masks the op that failed in the captured body: the record
    names that op's error first, then capture_end's."""
    from finetune.accel.graphs import LayerGraphs

    graphs = LayerGraphs([], max_tokens=8, capture=False)
    try:
        try:
            raise RuntimeError("Offset increment outside graph capture")
        except RuntimeError:
            raise RuntimeError("operation failed due to a previous error during capture") from None
    except RuntimeError as e:
        plain = e
    try:
        try:
            raise ValueError("flash attention needs bf16\nsecond line")
        except ValueError:
            raise RuntimeError("operation failed due to a previous error during capture")  # noqa: B904
    except RuntimeError as e:
        graphs._fail(e)
    assert graphs.failure.startswith("ValueError: flash attention needs bf16 (at test_finetune_graphs.py:")
    assert "; then RuntimeError: operation failed due to a previous error during capture" in graphs.failure
    assert "second line" not in graphs.failure and graphs.stats["failed"] == 1
    other = LayerGraphs([], max_tokens=8, capture=False)
    other._fail(plain)  # `from None` hides the context: only the error raised is reported
    assert other.failure.startswith("RuntimeError: operation failed due to a previous error during capture")


def test_auto_offloads_when_the_layer_inputs_of_a_step_are_large():
    from finetune.accel.offload import wanted
    from finetune.config import TrainConfig

    llama8b = dict(layers=32, max_tokens=12_864, hidden=4096)  # 3.4 GB of inputs a step
    llama1b = dict(layers=16, max_tokens=12_160, hidden=2048)  # 0.8 GB
    assert wanted("auto", **llama8b) and not wanted("auto", **llama1b)
    assert wanted(True, **llama1b) and not wanted(False, **llama8b)
    assert TrainConfig(domain="x").offload_activations == "auto"
    assert TrainConfig(domain="x", offload_activations=False).offload_activations is False
    assert TrainConfig(domain="x", offload_activations="on").offload_activations is True
    with pytest.raises(Exception, match="offload_activations: true, false or auto"):
        TrainConfig(domain="x", offload_activations="sometimes")


@pytest.mark.parametrize("fused", ["peft", "fused", "fused-fp8"])
def test_no_grad_forwards_run_the_mlp_in_token_tiles(lora_model, fused, monkeypatch):
    """An evaluation during training (no grad, layers run eagerly outside the graphs' memory) runs each layer's
    MLP a tile of eval_tile_tokens tokens at a time, with the untiled forward's output (peft's LoRA, the fused
    nodes; with FP8 base GEMMs, in train mode where they run, each weight's forward operand made once for the
    tiles and no input-gradient one); a training forward and a batch within one tile run it whole."""
    from finetune.accel import fp8, lora_fused

    model = lora_model
    uninstall = lora_fused.install(model) if fused != "peft" else None
    made = []
    if fused == "fused-fp8":
        for m in lora_fused.fused_modules(model):
            lora_fused.enable_fp8(m)
        real = fp8.weight_operand

        def counted(w, s, *, transposed):
            made.append("input gradient" if transposed else "forward")
            return real(w, s, transposed=transposed)

        monkeypatch.setattr(fp8, "weight_operand", counted)
    try:
        _eval_tiles_check(model, eval_mode=fused != "fused-fp8")
    finally:
        if uninstall:
            uninstall()
    if fused == "fused-fp8":  # the tiled no-grad forward: gate, up and down's forward operands, once per layer
        assert made == ["forward"] * 3 * len(decoder_layers(model)), made


def _eval_tiles_check(model, *, eval_mode: bool):
    """eval_mode: the no-grad forwards in eval mode (trl's evaluation), else in train mode (FP8 GEMMs run)."""
    layers = decoder_layers(model)
    batch = right_padded_batch([16, 9, 12], 16)  # 48 tokens
    model.train(not eval_mode)
    with torch.no_grad():
        reference = model(**batch).logits
    model.train()
    mlp = layers[0].mlp
    calls = []
    real = type(mlp).forward
    type(mlp).forward = lambda self, x: calls.append(tuple(x.shape[:-1])) or real(self, x)
    graphs = LayerGraphs(layers, max_tokens=48, capture=False, eval_tile_tokens=16).install()
    try:
        model.train(not eval_mode)
        with torch.no_grad():
            logits = model(**batch).logits
            assert calls == [(16,)] * 3 * len(layers)  # 3 tiles of 16 tokens per layer
            calls.clear()
            model(**right_padded_batch([5, 7], 8))  # 16 tokens: one tile, the MLP whole
            assert calls == [(2, 8)] * len(layers)
        calls.clear()
        model.train()
        model(**batch).loss.backward()  # training: graphed layers, the MLP whole
        assert all(c == (3, 16) for c in calls) and calls
    finally:
        type(mlp).forward = real
        graphs.uninstall()
    assert graphs.stats["eval_mlp_tiles"] == 3
    assert torch.allclose(logits, reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("trim", [False, True])
def test_the_cache_is_handed_back_after_the_last_layers_forward_only_when_asked(lora_model, trim, monkeypatch):
    """graphs.TRIM_BEFORE_HEAD (on by default; the benchmark's notrim arm turns it off): once a micro-batch, after
    the last layer's forward, with that layer's output. The gradients do not change."""
    from finetune.accel import graphs as layer_graphs

    model = lora_model
    batches = [right_padded_batch([9, 5, 12], 16), right_padded_batch([4, 6], 8)]
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    reference = grads_of(model, batches)
    assert layer_graphs.TRIM_BEFORE_HEAD is True
    monkeypatch.setattr(layer_graphs, "TRIM_BEFORE_HEAD", trim)
    seen = []
    monkeypatch.setattr(layer_graphs, "trim_cache", lambda out: seen.append(tuple(out.shape)))
    graphs = LayerGraphs(decoder_layers(model), max_tokens=3 * 16, capture=False).install()
    try:
        got = grads_of(model, batches)
    finally:
        graphs.uninstall()
    width = model.config.hidden_size
    assert seen == ([(3, 16, width), (2, 8, width)] if trim else [])
    for name, g in reference.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name
