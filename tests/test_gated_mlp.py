"""finetune/accel/gated_mlp.py: a gated MLP's down projection keeps the gate's operands, not its input, and gives
the same gradients (its input recomputed in row chunks for A's gradient)."""

import pytest
import torch

from finetune.accel import gated_mlp, lora_fused, recomputed_input
from finetune.accel.graphs import LayerGraphs
from finetune.accel.layers import decoder_layers


def _run(model, rows=2, cols=11):
    torch.manual_seed(3)
    ids = torch.randint(3, 200, (rows, cols))
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids.clone())
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _saved_intermediates(model, width):
    """The distinct tokens x `width` tensors (the MLP's intermediates) autograd keeps in one forward of 22 tokens."""
    kept = []

    def pack(t):
        if t.dim() and t.shape[-1] == width and t.numel() == 22 * width:
            kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        torch.manual_seed(3)
        ids = torch.randint(3, 200, (2, 11))
        model(input_ids=ids, labels=ids.clone())
    return len({t.untyped_storage().data_ptr() for t in kept})


def test_the_down_projection_keeps_no_input_and_the_gradients_stay(peft_model):
    logits_ref, grads_ref = _run(peft_model)
    width = decoder_layers(peft_model)[0].mlp.intermediate_size
    layers = len(decoder_layers(peft_model))
    unfuse = lora_fused.install(peft_model)
    try:
        before = _saved_intermediates(peft_model, width)
        ungate = gated_mlp.install(peft_model)
        try:
            assert ungate.count == layers
            after = _saved_intermediates(peft_model, width)
            logits, grads = _run(peft_model)  # 22 tokens: A's gradient from two row chunks (16 + 6)
        finally:
            ungate()
    finally:
        unfuse()
    # per layer: gate, act(gate) and up (the activation's and the product's), and the product h, which the down
    # projection kept; now it keeps gate and up, the same tensors
    assert before - after == layers and after == 3 * layers
    assert torch.allclose(logits, logits_ref, atol=1e-5, rtol=1e-4)
    for name, g in grads_ref.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name
    assert not any("forward" in vars(m) for m in peft_model.modules())  # uninstalled


@pytest.mark.parametrize(
    "defer, act_mul, in_chunks",
    [(False, False, True), (True, False, True), (True, True, False), (True, True, True)],
    ids=["product-in-forward", "deferred-for-liger-only", "product-deferred", "deferred-grads-in-chunks"],
)
@pytest.mark.parametrize("tiles", [1, 3])
def test_inside_checkpointed_graphed_layers(peft_model, tiles, defer, act_mul, in_chunks, monkeypatch):
    """As training runs it: the graphs' recompute skips the down projection's output and still gets its A
    gradient from the recomputed input; with the MLP in token tiles, each tile's backward does. Deferred, the
    recompute does not run the gating op at all (B's gradient then comes from the backward's chunks too); by
    DEFER_ACT_MUL off only Liger's SiLU-mul defers, so transformers' MLP form here does not (on by default). With
    OPERAND_GRADS_IN_CHUNKS the product's gradient and the operands' are made in those chunks too (16 rows each)."""
    peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peft_model.enable_input_require_grads()
    _, grads_ref = _run(peft_model, 3, 16)
    monkeypatch.setattr(gated_mlp, "DEFER_IN_RECOMPUTE", defer)
    monkeypatch.setattr(gated_mlp, "DEFER_ACT_MUL", act_mul)  # transformers' MLP form here (no Liger on the CPU)
    monkeypatch.setattr(gated_mlp, "OPERAND_GRADS_IN_CHUNKS", in_chunks)
    unfuse = lora_fused.install(peft_model)
    ungate = gated_mlp.install(peft_model)
    chunks, deferred, operand_rows = [], [], []
    real, real_fn, real_into = recomputed_input.grads, gated_mlp._deferred_fn, gated_mlp._operand_grads_into
    monkeypatch.setattr(recomputed_input, "grads", lambda gu, *a, **k: chunks.append(gu.shape[0]) or real(gu, *a, **k))
    monkeypatch.setattr(
        gated_mlp,
        "_operand_grads_into",
        lambda op, m, g, u, dh: operand_rows.append(dh.numel() // dh.shape[-1]) or real_into(op, m, g, u, dh),
    )

    class Counted:
        @staticmethod
        def apply(gate, *a):
            deferred.append(gate.shape[-2] if gate.dim() > 2 else gate.shape[0])
            return real_fn().apply(gate, *a)

    monkeypatch.setattr(gated_mlp, "_deferred_fn", lambda: Counted)
    graphs = LayerGraphs(decoder_layers(peft_model), max_tokens=48, capture=False, mlp_tiles=tiles).install()
    try:
        _, grads = _run(peft_model, 3, 16)
        assert graphs.stats["unread"] == ["mlp.down_proj"] and graphs.stats["eager"] == 0
    finally:
        graphs.uninstall()
        ungate()
        unfuse()
    # every down projection's backward took the recomputed input: a tile's (the first step's probe for unread
    # outputs runs whole MLPs)
    assert 48 // tiles in chunks and set(chunks) <= {48, 48 // tiles}
    assert bool(deferred) == (defer and act_mul)  # the recompute's (and the NaN probe's) unread down projections only
    if deferred:  # the operands' gradients: per 16-row chunk in the down projection's backward, else whole
        whole = {48 // tiles} <= set(operand_rows) <= {48, 48 // tiles}  # a tile's, and the NaN probe's whole MLP
        assert (set(operand_rows) == {16}) if in_chunks else whole, operand_rows
    else:
        assert not operand_rows
    for name, g in grads_ref.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("act", [torch.nn.SiLU(), torch.nn.GELU("tanh"), torch.nn.Identity()], ids=str)
def test_the_deferred_products_operand_gradients_are_autograds(act):
    """transformers' `act(gate) * up` deferred: the operands' gradients from autograd through the activation
    alone, written over gate and up, equal autograd's through the whole op, in bf16, also for row slices of a
    larger tensor (the chunks) and an activation that returns its input; rows outside the slice stay."""
    torch.manual_seed(0)
    mlp = torch.nn.Module()
    mlp.act_fn = act
    gate, up, dh = (torch.randn(37, 24, dtype=torch.bfloat16) for _ in range(3))
    g, u = gate.clone().requires_grad_(True), up.clone().requires_grad_(True)
    ref = torch.autograd.grad(act(g) * u, (g, u), dh)
    rest = gate[32:].clone(), up[32:].clone()
    gated_mlp._operand_grads_into(gated_mlp._act_mul, mlp, gate[16:32], up[16:32], dh[16:32])
    gated_mlp._operand_grads_into(gated_mlp._act_mul, mlp, gate[:16], up[:16], dh[:16])
    assert gate.dtype == up.dtype == torch.bfloat16
    assert torch.equal(gate[:32], ref[0][:32]) and torch.equal(up[:32], ref[1][:32])
    assert torch.equal(gate[32:], rest[0]) and torch.equal(up[32:], rest[1])


@pytest.mark.parametrize("rows", [0, 1, 16, 17, 100, 130])
def test_a_gradient_in_chunks_matches_one_product(rows):
    torch.manual_seed(rows)
    gate, up, gu = torch.randn(rows, 24), torch.randn(rows, 24), torch.randn(rows, 5)
    op = lambda g, u: torch.nn.functional.silu(g) * u  # noqa: E731
    got, none = recomputed_input.grads(gu, gate, up, op)
    assert got.dtype == torch.float32 and got.shape == (5, 24) and none is None
    assert torch.allclose(got, gu.t() @ op(gate, up), atol=1e-5, rtol=1e-5)
    g, a = torch.randn(rows, 7), torch.randn(5, 24)  # the output's gradient, A (rank 5)
    _, gb = recomputed_input.grads(gu, gate, up, op, g, a, 0.5)
    assert gb.shape == (7, 5) and torch.allclose(gb, 0.5 * g.t() @ (op(gate, up) @ a.t()), atol=1e-4, rtol=1e-5)
    # with the input's gradient per chunk and the operands' written over gate and up: ragged last chunks too
    dx = torch.randn(rows, 24)
    g2, u2 = gate.clone().requires_grad_(True), up.clone().requires_grad_(True)
    ref = torch.autograd.grad(op(g2, u2), (g2, u2), dx) if rows else (gate, up)
    seen = []

    def into(gc, uc, dxc):  # silu(g) * u's gradients, written over the chunk's rows
        seen.append(gc.shape[0])
        s = torch.sigmoid(gc)
        du = dxc * gc * s
        gc.copy_(dxc * uc * (s + gc * s * (1 - s)))
        uc.copy_(du)

    ga, _ = recomputed_input.grads(gu, gate, up, op, input_grad=lambda s: dx[s], operand_grads_into=into)
    assert torch.allclose(
        ga, gu.t() @ op(g2.detach(), u2.detach()), atol=1e-5, rtol=1e-5
    )  # before they were overwritten
    assert sum(seen) == rows and all(n % 16 == 0 for n in seen[:-1])
    assert torch.allclose(gate, ref[0], atol=1e-5, rtol=1e-5) and torch.allclose(up, ref[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fp8_on", [False, True, "joined"], ids=["bf16", "fp8", "fp8-joined"])
@pytest.mark.parametrize("hook", [False, True], ids=["saved-as-is", "saved-copies"])
def test_a_deferred_products_gradients_in_chunks_match_the_product_made(fp8_on, hook):
    """One gated MLP under autocast, its down projection's output unread as in the graphs' recompute (the product
    deferred): the gradients in row chunks (22 tokens: 16 + 6; FP8 GEMMs with 32) equal those of the product made
    whole, also with FP8 base GEMMs (the adapter's delta added after them, or joined inside them) and under a
    saved-tensor hook that copies what autograd saves (the operands' gradients are written over the stand-in's own
    gate and up, not the down projection's saved copies)."""
    import contextlib

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    torch.manual_seed(0)
    wrap = torch.nn.Module()
    wrap.mlp = LlamaMLP(LlamaConfig(hidden_size=64, intermediate_size=96, hidden_act="silu"))
    wrap.forward = lambda x: wrap.mlp(x)
    model = get_peft_model(
        wrap,
        LoraConfig(r=4, lora_alpha=8, target_modules=["gate_proj", "up_proj", "down_proj"], init_lora_weights=False),
    ).train()
    unfuse = lora_fused.install(model)
    if fp8_on:
        for m in lora_fused.fused_modules(model):
            lora_fused.enable_fp8(m, joined=fp8_on == "joined")
    ungate = gated_mlp.install(model)
    mlp = model.base_model.model.mlp
    params = [p for p in model.parameters() if p.requires_grad]
    rows = 32 if fp8_on else 22

    def grads(unread):
        torch.manual_seed(1)
        x, gout = torch.randn(rows, 64).requires_grad_(True), torch.randn(rows, 64)
        with contextlib.ExitStack() as st:
            st.enter_context(torch.autocast("cpu", torch.bfloat16))
            if hook and unread:
                st.enter_context(torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t))
            if unread:
                st.enter_context(lora_fused.unread_outputs([mlp.down_proj], float("nan")))
            st.enter_context(lora_fused.keep_dequantized())
            return torch.autograd.grad(mlp(x), [x, *params], gout)

    written = []
    real = gated_mlp._operand_grads_into
    try:
        ref = grads(unread=False)
        gated_mlp._operand_grads_into = lambda *a: written.append(a[-1].shape[0]) or real(*a)
        got = grads(unread=True)
    finally:
        gated_mlp._operand_grads_into = real
        ungate()
        unfuse()
    assert written == ([16, 16] if fp8_on else [16, 6])  # the chunks, not the whole product's gradient
    for a, b in zip(got, ref):
        assert ((a.float() - b.float()).norm() / b.float().norm()).item() < 1e-2


def test_only_mlps_of_the_gated_form(peft_model):
    mlp = decoder_layers(peft_model)[0].mlp
    assert gated_mlp.gating_op(mlp) is gated_mlp._act_mul

    class Other(type(mlp)):  # a forward of its own: not known to be down(op(gate, up))
        def forward(self, x):
            return self.down_proj(self.up_proj(x))

    mlp.__class__ = Other
    try:
        assert gated_mlp.gating_op(mlp) is None
    finally:
        mlp.__class__ = Other.__mro__[1]
    assert gated_mlp.gating_op(decoder_layers(peft_model)[0].self_attn) is None


def test_a_forward_bound_in_place_is_read_and_put_back(peft_model):
    """Liger patches a built model's MLPs by binding its forward to each instance: that function is the one read
    (here Llama's own, bound the same way), run without grad, and bound again on uninstall; any other wrapper is
    left alone."""
    mlps = [layer.mlp for layer in decoder_layers(peft_model)]
    bound = type(mlps[0]).forward.__get__(mlps[0])
    mlps[0].forward = bound
    mlps[1].forward = lambda x: x  # a wrapper of someone else's
    unfuse = lora_fused.install(peft_model)
    ungate = gated_mlp.install(peft_model)
    try:
        assert ungate.count == 1 and vars(mlps[0])["forward"].func is gated_mlp._forward
        x = torch.randn(1, 3, mlps[0].hidden_size)
        with torch.no_grad():
            assert torch.equal(mlps[0](x), type(mlps[0]).forward(mlps[0], x))
    finally:
        ungate()
        unfuse()
    assert vars(mlps[0])["forward"] is bound and vars(mlps[1])["forward"](5) == 5


def test_without_grad_the_mlp_runs_its_own_forward(peft_model):
    unfuse = lora_fused.install(peft_model)
    ungate = gated_mlp.install(peft_model)
    try:
        mlp = decoder_layers(peft_model)[0].mlp
        x = torch.randn(2, 5, mlp.hidden_size)
        with torch.no_grad():
            assert torch.equal(mlp(x), type(mlp).forward(mlp, x))
    finally:
        ungate()
        unfuse()


def test_put_back_when_training_starts_after_the_trainer_binds_its_own(peft_model):
    """transformers' Trainer binds Liger's MLP forward in train(), over the gated one (here Llama's own, bound the
    same way): the run's callback installs it again at train begin, and the run's undo leaves the trainer's."""
    from finetune.accel import decide
    from finetune.accel.apply import Applied
    from finetune.config import TrainConfig

    unfuse = lora_fused.install(peft_model)
    ungate = gated_mlp.install(peft_model)
    applied = Applied(plan=decide(TrainConfig(domain="t"), "cpu"), gated_mlps=ungate.count, _undo=[unfuse, ungate])
    mlps = [layer.mlp for layer in decoder_layers(peft_model)]
    bound = [type(m).forward.__get__(m) for m in mlps]
    for m, b in zip(mlps, bound):
        m.forward = b  # what the trainer does when train() starts
    assert gated_mlp.installed(peft_model) == 0
    applied.callback().on_train_begin(None, None, None, model=peft_model)
    assert all(vars(m)["forward"].func is gated_mlp._forward for m in mlps)
    assert gated_mlp.installed(peft_model) == len(mlps)
    report = applied()
    assert report["gated_mlps_recomputed"] == len(mlps)
    assert all(vars(m)["forward"] is b for m, b in zip(mlps, bound))
    assert not any("forward" in vars(m) for m in peft_model.modules() if m not in mlps)
