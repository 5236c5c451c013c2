"""finetune/accel/fp8.py and the fused LoRA node's FP8 base GEMMs (torch's CPU FP8 GEMM here; the Triton
quantization kernels on CUDA only)."""

import pytest
import torch

from finetune.accel import fp8, lora_fused, lora_node


def _rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def test_rowwise_scales_each_row_to_e4m3_range():
    torch.manual_seed(0)
    x = torch.randn(6, 48) * torch.tensor([1e-3, 1.0, 50.0, 1.0, 1.0, 1.0])[:, None]
    x[3] = 0.0  # an all-zero row stays zero (no division by zero)
    q, s = fp8.rowwise(x)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (6, 1) and s.dtype == torch.float32
    back = q.float() * s
    assert torch.equal(back[3], torch.zeros(48))
    assert q.float().abs().amax(dim=1)[[0, 1, 2, 4, 5]].eq(448.0).all()  # each row's largest value uses the full range
    for r in (0, 1, 2, 4, 5):  # e4m3 keeps 3 mantissa bits: every row, whatever its magnitude, within ~2^-4
        assert _rel(back[r], x[r]) < 0.04


def test_colwise_transposed_is_rowwise_of_the_transpose():
    torch.manual_seed(1)
    w = torch.randn(32, 80)
    row, col = fp8.weight_scales(w)
    q = fp8.colwise_transposed(w, col)
    qt, st = fp8.rowwise(w.t().contiguous())
    assert q.shape == (80, 32) and q.is_contiguous() and col.shape == (80, 1) and row.shape == (32, 1)
    assert torch.equal(q.float(), qt.float()) and torch.allclose(col, st)
    assert torch.allclose(row, fp8.rowwise(w)[1])  # the per-row scales rowwise would find
    assert torch.equal(fp8.rowwise(w, row)[0].float(), fp8.rowwise(w)[0].float())  # given them, the same values


def test_matmuls_match_the_full_precision_products():
    torch.manual_seed(2)
    x, w, g = torch.randn(64, 96), torch.randn(48, 96) * 0.02, torch.randn(64, 48)
    scales = fp8.weight_scales(w)
    assert _rel(fp8.matmul(x, w, scales, torch.float32), x @ w.t()) < 0.05
    assert _rel(fp8.matmul_transposed(g, w, scales, torch.float32), g @ w) < 0.05


def test_eligible_takes_large_linears_with_sides_multiple_of_16():
    assert fp8.eligible(2048, 8192) and fp8.eligible(8192, 2048)  # a 1B Llama's MLP
    assert fp8.eligible(2048, 2048) and fp8.eligible(4096, 1024)  # its q and o; an 8B Llama's k and v
    assert not fp8.eligible(2048, 512) and not fp8.eligible(1024, 2048)  # a 1B Llama's k and v (1M elements)
    assert not fp8.eligible(4104, 8192)  # not a multiple of 16


def _run(model, rows=2, cols=8):
    torch.manual_seed(3)
    ids = torch.randint(3, 200, (rows, cols))  # 16 token rows: the FP8 GEMM's multiple
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids.clone())
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _force_fp8(model):
    from peft.tuners.lora import LoraLayer

    mods = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for m in mods:
        lora_fused.enable_fp8(m)  # every adapted Linear, whatever its size (install picks large ones)
    return mods


@pytest.mark.parametrize("joined", [False, True], ids=["addmm", "joined"])
def test_fp8_base_gemms_train_close_to_full_precision(peft_model, monkeypatch, joined):
    """Joined, the delta shares the base's scales: exact to e4m3 while its terms are under the base's, as in
    training from B = 0 (the fixture's random B, 3x scaled, is far over: here 1% of it)."""
    if joined:
        from peft.tuners.lora import LoraLayer

        with torch.no_grad():
            for m in peft_model.modules():
                if isinstance(m, LoraLayer):
                    m.lora_B["default"].weight.mul_(0.01)
    logits_ref, grads_ref = _run(peft_model)
    uninstall = lora_fused.install(peft_model)
    for m in _force_fp8(peft_model):
        lora_fused.enable_fp8(m, joined=joined)
    calls = []
    fwd, bwd = ("matmul_lora", "matmul_transposed_lora") if joined else ("matmul", "matmul_transposed")
    real_mm, real_t = getattr(fp8, fwd), getattr(fp8, bwd)
    monkeypatch.setattr(fp8, fwd, lambda *a, **k: calls.append("fwd") or real_mm(*a, **k))
    monkeypatch.setattr(fp8, bwd, lambda *a, **k: calls.append("bwd") or real_t(*a, **k))
    try:
        logits, grads = _run(peft_model)
        n = len(calls)
        assert calls.count("fwd") == n_lora(peft_model) and calls.count("bwd") > 0  # every base GEMM in FP8
        logits_odd, _ = _run(peft_model, rows=1, cols=7)  # 7 token rows: no FP8 GEMM takes them, bf16 runs
        assert len(calls) == n
        peft_model.eval()
        with torch.no_grad():
            ids = torch.randint(3, 200, (2, 8))
            eval_logits = peft_model(input_ids=ids).logits
        assert len(calls) == n  # evaluation (and generation) keep the compute dtype
    finally:
        uninstall()
    with torch.no_grad():
        assert torch.allclose(eval_logits, peft_model(input_ids=ids).logits, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(logits, logits_ref, atol=1e-5)  # FP8 really ran...
    assert _rel(logits, logits_ref) < 0.05  # ...within e4m3's precision
    for name, g in grads_ref.items():
        cos = torch.nn.functional.cosine_similarity(grads[name].flatten(), g.flatten(), dim=0).item()
        assert cos > 0.99, (name, cos)


def n_lora(model):
    from peft.tuners.lora import LoraLayer

    return sum(isinstance(m, LoraLayer) for m in model.modules())


def test_fp8_node_is_the_scaled_gemms_plus_the_adapter():
    """One fused node in FP8: out = FP8(x·Wᵀ) + s·(x·Aᵀ)·Bᵀ and dx = FP8(g·W) + s·(g·B)·A exactly."""
    torch.manual_seed(4)
    x = torch.randn(16, 32, requires_grad=True)
    w, a, b = torch.randn(48, 32) * 0.1, torch.randn(4, 32, requires_grad=True), torch.randn(48, 4, requires_grad=True)
    scales = fp8.weight_scales(w)
    out = lora_fused._lora_linear_fn().apply(x, w, None, None, a, b, 0.5, None, scales)
    assert torch.equal(
        out, fp8.matmul(x.detach(), w, scales, x.dtype) + 0.5 * (x.detach() @ a.detach().t()) @ b.detach().t()
    )
    g = torch.randn(16, 48)
    out.backward(g)
    want = fp8.matmul_transposed(g, w, scales, x.dtype) + 0.5 * (g @ b.detach()) @ a.detach()
    assert torch.allclose(x.grad, want, atol=1e-6, rtol=1e-5)
    assert torch.allclose(
        b.grad, 0.5 * g.t() @ (x.detach() @ a.detach().t()), atol=1e-5
    )  # adapter grads: full precision


def test_a_tail_joins_the_rows_and_shares_their_scale():
    """rowwise(x, tail=u): [x | u | 0] with u's columns rounded up to JOIN_MULTIPLE, each row scaled over x and u
    together."""
    torch.manual_seed(8)
    x, u = torch.randn(5, 32), torch.randn(5, 3)
    u[2] *= 100.0  # a row whose largest value is in the tail
    q, s = fp8.rowwise(x, tail=u)
    m = fp8.JOIN_MULTIPLE
    assert m % 16 == 0 and fp8.joined_width(3) == m and fp8.joined_width(m) == m and fp8.joined_width(m + 1) == 2 * m
    assert q.shape == (5, 32 + m)
    assert torch.equal(q[:, 35:].float(), torch.zeros(5, m - 3))
    assert torch.allclose(s, torch.cat([x, u], 1).abs().amax(1, keepdim=True) / fp8.E4M3_MAX)
    assert q[2, 32:35].float().abs().max() == 448.0  # the tail's largest value sets row 2's scale
    assert _rel(q[:, 32:35].float() * s, u) < 0.04 and _rel(q[:, :32].float() * s, x) < 0.04


@pytest.mark.parametrize("big_b", [False, True])
def test_the_adapter_joined_into_the_fp8_gemms(big_b):
    """With joined operands one FP8 GEMM gives x·Wᵀ + s·(x·Aᵀ)·Bᵀ, another g·W + s·(g·B)·A, within e4m3's
    precision, also where B outgrows W's per-row scale (the excess moves to the activations' side), and where a
    row and a column of W are zeros (their scales clamped near 0 must not blow the tokens' scales up)."""
    torch.manual_seed(9)
    x, g = torch.randn(32, 64), torch.randn(32, 48)
    w = torch.randn(48, 64) * 0.05
    a, b = torch.randn(5, 64) * 0.1, torch.randn(48, 5) * (5.0 if big_b else 0.01)
    w[7], w[:, 9] = 0.0, 0.0
    scales = fp8.weight_scales(w)
    u, sb = x @ a.t(), 2.0 * b
    want = x @ w.t() + u @ sb.t()
    got = fp8.matmul_lora(x, w, scales, u, sb, torch.float32)
    assert torch.isfinite(got).all() and _rel(got, want) < 0.05
    gu = 2.0 * g @ b
    assert _rel(fp8.matmul_transposed_lora(g, w, scales, gu, a, torch.float32), g @ w + gu @ a) < 0.05
    if not big_b:  # the delta really is inside: without it the product is measurably off
        delta = torch.randn(48, 5) * 0.2
        assert _rel(fp8.matmul_lora(x, w, scales, u, 2.0 * delta, torch.float32), x @ w.t()) > 0.05


def test_the_joined_node_is_the_joined_gemms_with_full_precision_adapter_gradients():
    torch.manual_seed(10)
    x = torch.randn(16, 32, requires_grad=True)
    w, a, b = torch.randn(48, 32) * 0.1, torch.randn(4, 32, requires_grad=True), torch.randn(48, 4, requires_grad=True)
    scales = fp8.weight_scales(w)
    out = lora_fused._lora_linear_fn().apply(x, w, None, None, a, b, 0.5, None, scales, False, None, True)
    xd, ad, bd = x.detach(), a.detach(), b.detach()
    assert torch.equal(out, fp8.matmul_lora(xd, w, scales, xd @ ad.t(), bd * 0.5, x.dtype))
    g = torch.randn(16, 48)
    out.backward(g)
    assert torch.allclose(x.grad, fp8.matmul_transposed_lora(g, w, scales, 0.5 * (g @ bd), ad, x.dtype), atol=1e-6)
    assert torch.allclose(b.grad, 0.5 * g.t() @ (xd @ ad.t()), atol=1e-5)
    assert torch.allclose(a.grad, (0.5 * g @ bd).t() @ xd, atol=1e-5)


def test_install_marks_only_eligible_linears(peft_model):
    uninstall = lora_fused.install(peft_model, fp8=True)
    try:  # the tiny model's Linears are all far below the size FP8 pays off at
        assert uninstall.count > 0 and uninstall.fp8_count == 0
    finally:
        uninstall()
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in peft_model.modules() if isinstance(m, LoraLayer))
    base = layer.base_layer
    big = torch.nn.Linear(2048, 4096, bias=False)  # a base as large as a 1B model's MLP
    layer.base_layer = big
    try:
        uninstall = lora_fused.install(peft_model, fp8=True)
        assert uninstall.fp8_count == 1 and layer.lorag_fp8_row_scale.shape == (4096, 1)
        assert not any("fp8" in k for k in peft_model.state_dict())  # nothing of it is saved with the adapter
        uninstall()
        assert not any("fp8" in name for name, _ in layer.named_buffers())
    finally:
        layer.base_layer = base


def test_fast_accumulation_reaches_the_forward_gemms_only(peft_model, monkeypatch):
    """install(fp8_fast_accum=True): every forward FP8 GEMM asks scaled_mm for fast accumulation, no input
    gradient's does; without it none does; uninstall forgets the choice."""
    seen = []
    real_mm, real_t = fp8.matmul, fp8.matmul_transposed
    monkeypatch.setattr(fp8, "matmul", lambda *a, **k: seen.append(("fwd", k.get("fast_accum"))) or real_mm(*a, **k))
    monkeypatch.setattr(
        fp8, "matmul_transposed", lambda *a, **k: seen.append(("bwd", "fast_accum" in k)) or real_t(*a, **k)
    )
    for fast in (True, False):
        seen.clear()
        uninstall = lora_fused.install(peft_model, fp8=True, fp8_fast_accum=fast)
        for m in _force_fp8(peft_model):
            lora_fused.enable_fp8(m, fast)
        try:
            _run(peft_model)
        finally:
            uninstall()
        assert seen.count(("fwd", fast)) == n_lora(peft_model) and ("bwd", False) in seen
        assert {s for s in seen if s[0] == "fwd"} == {("fwd", fast)} and ("bwd", True) not in seen
    assert not any(lora_fused._FP8_FAST in vars(m) for m in peft_model.modules())


@pytest.mark.parametrize("public", [True, False])
def test_scaled_mm_gets_the_accumulation_asked_for(public, monkeypatch):
    got = {}
    if public:
        monkeypatch.setattr(torch.nn.functional, "ScalingType", type("S", (), {"RowWise": "row"}), raising=False)
        monkeypatch.setattr(torch.nn.functional, "scaled_mm", lambda *a, **k: got.update(k), raising=False)
    else:
        monkeypatch.delattr(torch.nn.functional, "scaled_mm", raising=False)
        monkeypatch.setattr(torch, "_scaled_mm", lambda *a, **k: got.update(k))
    for fast in (True, False):
        fp8._scaled_mm(None, None, None, None, torch.bfloat16, fast)
        assert got["use_fast_accum"] is fast


def test_the_plan_accumulates_fast_where_fp8_runs_unless_the_recipe_says_no(monkeypatch):
    from finetune.accel import decide
    from finetune.config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(fp8, "unsupported_reason", lambda device: None if device == "cuda" else "CUDA only")
    on = decide(TrainConfig(domain="t"), "cuda").record()
    assert on["fp8"] is True and on["fp8_fast_accum"] is True
    assert decide(TrainConfig(domain="t", fp8_fast_accum=False), "cuda").record()["fp8_fast_accum"] is False
    off = decide(TrainConfig(domain="t", fp8_matmuls=False), "cuda").record()
    assert off["fp8"] is False and off["fp8_fast_accum"] is False  # no FP8 GEMMs, so no fast accumulation
    assert decide(TrainConfig(domain="t"), "cpu").record()["fp8_fast_accum"] is False
    # the joined adapter: on by default where FP8 GEMMs run, off where the recipe says so, never without them
    assert on["fp8_lora_in_gemm"] is True
    assert decide(TrainConfig(domain="t", fp8_lora_in_gemm=False), "cuda").record()["fp8_lora_in_gemm"] is False
    both = TrainConfig(domain="t", fp8_lora_in_gemm=True, fp8_matmuls=False)
    assert decide(both, "cuda").record()["fp8_lora_in_gemm"] is False


def test_install_passes_the_joined_adapter_to_fp8_linears_only(peft_model):
    from peft.tuners.lora import LoraLayer

    uninstall = lora_fused.install(peft_model, fp8=True, fp8_lora_in_gemm=True)
    try:  # the tiny model's Linears are below FP8's size: none is joined
        assert not any(vars(m).get(lora_fused._FP8_JOINED) for m in peft_model.modules() if isinstance(m, LoraLayer))
    finally:
        uninstall()
    layer = next(m for m in peft_model.modules() if isinstance(m, LoraLayer))
    lora_fused.enable_fp8(layer, joined=True)
    assert vars(layer)[lora_fused._FP8_JOINED] is True
    lora_fused.disable_fp8(layer)
    assert lora_fused._FP8_JOINED not in vars(layer)


def test_runtime_says_why_fp8_is_off():
    from finetune.accel import decide
    from finetune.config import TrainConfig

    assert decide(TrainConfig(domain="t"), "cpu").record()["fp8_off"] == "CUDA only"
    assert decide(TrainConfig(domain="t", fp8_matmuls=False), "cpu").record()["fp8_off"] == "off in the config"
    assert decide(TrainConfig(domain="t", compile_layers=True), "cpu").record()["fp8_off"] == "not with compile_layers"


def _same_up_to_rounding(q, ref):
    """Two e4m3 tensors equal but for values a division's last bit rounded to the neighbouring e4m3 value
    (Triton's float32 division is not IEEE-exact): at most one step of e4m3 (1/8 relative, or 2^-9 near
    zero) apart, in at most 1 of 1000 elements."""
    a, b = q.float(), ref.float()
    diff = (a - b).abs()
    return bool(diff.le(b.abs() / 8 + 2.0**-9).all()) and diff.gt(0).float().mean().item() <= 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernels run on CUDA")
def test_triton_kernels_match_the_torch_formula():  # pragma: no cover - CUDA only
    torch.manual_seed(5)
    x = torch.randn(300, 5000, device="cuda", dtype=torch.bfloat16)
    q, s = fp8.rowwise(x)
    qr, sr = fp8._torch_rowwise(x)
    assert torch.allclose(s, sr, rtol=1e-6), (s - sr).abs().max()
    assert _same_up_to_rounding(q, qr)
    q, _ = fp8.rowwise(x, s)  # with the scales given
    assert _same_up_to_rounding(q, qr)
    w = torch.randn(200, 96, device="cuda", dtype=torch.bfloat16)
    row, col = fp8.weight_scales(w)
    q = fp8.colwise_transposed(w, col)
    qr, sr = fp8._torch_rowwise(w.t())
    assert q.shape == (96, 200) and q.is_contiguous()
    assert torch.allclose(col, sr, rtol=1e-6), (col - sr).abs().max()
    assert _same_up_to_rounding(q, qr)
    wide = torch.randn(64, 20000, device="cuda", dtype=torch.bfloat16)  # rows longer than one block: two passes
    assert _same_up_to_rounding(fp8.rowwise(wide)[0], fp8._torch_rowwise(wide)[0])
    for shape in ((37, 2048), (301, 96)):  # rows that fit in registers, several per program (hidden size 2048)
        x = torch.randn(*shape, device="cuda", dtype=torch.bfloat16)
        q, s = fp8.rowwise(x)
        qr, sr = fp8._torch_rowwise(x)
        assert torch.allclose(s, sr, rtol=1e-6) and _same_up_to_rounding(q, qr)
        assert _same_up_to_rounding(fp8.rowwise(x, sr)[0], qr)  # with the scales given


def test_fp8_inside_shared_graphs_uses_each_layers_scales(peft_model):
    """Layers replaying one stand-in's programs (finetune/accel/graphs.py) bring their own FP8 scales with their
    weights: the gradients are checkpointing's with FP8, layer by layer."""
    from finetune.accel.graphs import LayerGraphs
    from finetune.accel.layers import decoder_layers

    peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peft_model.enable_input_require_grads()
    uninstall = lora_fused.install(peft_model)
    mods = _force_fp8(peft_model)
    scales = {id(m): m.lorag_fp8_row_scale for m in mods}
    assert len({tuple(s.flatten().tolist()) for s in scales.values()}) > len(decoder_layers(peft_model))  # they differ
    try:
        _, grads_ref = _run(peft_model)
        graphs = LayerGraphs(decoder_layers(peft_model), max_tokens=16, capture=False).install()
        try:
            _, grads = _run(peft_model)
            assert graphs.stats["replayed"] > 0 and graphs.stats["shared"] > 0 and graphs.stats["eager"] == 0
        finally:
            graphs.uninstall()
    finally:
        uninstall()
    for name, g in grads_ref.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def test_expandable_segments_on_cuda_unless_the_user_set_the_allocator(monkeypatch):
    from finetune.accel import decide
    from finetune.config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    assert decide(TrainConfig(domain="t"), "cuda").record()["expandable_segments"] is True
    assert decide(TrainConfig(domain="t", expandable_segments=False), "cuda").record()["expandable_segments"] is False
    assert decide(TrainConfig(domain="t"), "cpu").record()["expandable_segments"] is False
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    assert decide(TrainConfig(domain="t"), "cuda").record()["expandable_segments"] is False
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF")
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", "max_split_size_mb:128")  # the newer, device-generic name
    assert decide(TrainConfig(domain="t"), "cuda").record()["expandable_segments"] is False


def test_liger_is_used_only_where_its_transformers_integration_imports(monkeypatch):
    """The runtime imports what the trainer will apply (liger_kernel.transformers), so a Liger that is
    installed but does not import against this transformers is reported and left out, not a crash
    inside training."""
    import sys
    import types

    from finetune.accel import decide
    from finetune.config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", types.ModuleType("liger_kernel.transformers"))
    rt = decide(TrainConfig(domain="t"), "cuda").record()
    assert rt["liger"] is True and rt["liger_off"] is None
    off = decide(TrainConfig(domain="t", liger=False), "cuda").record()
    assert off["liger"] is False and off["liger_off"] == "off in the config"
    assert decide(TrainConfig(domain="t"), "cpu").record()["liger_off"] == "CUDA only"
    monkeypatch.setitem(
        sys.modules, "liger_kernel.transformers", None
    )  # installed, but its integration fails to import
    broken = decide(TrainConfig(domain="t"), "cuda").record()
    assert broken["liger"] is False and broken["liger_off"].startswith("liger_kernel.transformers does not import")


def test_the_allocator_mode_lasts_for_the_run_only(monkeypatch):
    """Expandable segments are switched on for a run and back off after it, also when it fails: the rest
    of the process (the app, another run, a benchmark's next arm) allocates with PyTorch's default."""
    from finetune.accel.apply import cuda_allocator

    calls = []
    monkeypatch.setattr(torch.cuda.memory, "_set_allocator_settings", calls.append)
    with cuda_allocator(True):
        assert calls == ["expandable_segments:True"]
    assert calls == ["expandable_segments:True", "expandable_segments:False"]
    with pytest.raises(RuntimeError), cuda_allocator(True):
        raise RuntimeError("out of memory")
    assert calls[-1] == "expandable_segments:False" and len(calls) == 4
    with cuda_allocator(False):
        pass
    assert len(calls) == 4  # off in the runtime: the allocator is left alone


def test_a_patched_modeling_module_is_put_back():
    """What a kernel library replaces in a model's module (a class, a function) is put back after the run,
    also when it fails; a name added inside stays (a module's lazy cache)."""
    import types

    from finetune.accel.apply import module_restored

    class RMSNorm:
        pass

    def rope(x):
        return x

    module = types.ModuleType("modeling_toy")
    module.RMSNorm, module.rope = RMSNorm, rope
    for fail in (False, True):
        try:
            with module_restored(module):
                module.RMSNorm, module.rope, module.added = object, len, 1
                if fail:
                    raise RuntimeError("out of memory")
        except RuntimeError:
            assert fail
        assert module.RMSNorm is RMSNorm and module.rope is rope and module.added == 1


def test_probe_runs_both_products_and_reports_a_failure(monkeypatch):
    assert fp8.probe("cpu") is None  # torch's CPU FP8 GEMM takes per-row scales
    monkeypatch.setattr(
        fp8,
        "_scaled_mm",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("rowwise scaling is not supported on this GPU")),
    )
    assert fp8.probe("cpu") == "FP8 GEMMs fail here (RuntimeError: rowwise scaling is not supported on this GPU)"


def test_zero_rows_keep_the_compute_dtype(peft_model, monkeypatch):
    uninstall = lora_fused.install(peft_model)
    _force_fp8(peft_model)
    calls = []
    monkeypatch.setattr(fp8, "matmul", lambda *a: calls.append(1))
    try:
        from peft.tuners.lora import LoraLayer

        layer = next(m for m in peft_model.modules() if isinstance(m, LoraLayer))
        out = layer(torch.zeros(0, layer.base_layer.in_features))  # e.g. an expert that got no tokens
    finally:
        uninstall()
    assert out.shape == (0, layer.base_layer.out_features) and not calls


@pytest.mark.parametrize("joined", [False, True], ids=["addmm", "joined"])
def test_a_4bit_weight_kept_for_backward_is_its_fp8_input_gradient_operand(qlora_model, monkeypatch, joined):
    """Inside keep_dequantized (the graphs' recompute) a 4-bit base with FP8 GEMMs keeps, for its backward, the
    input gradient's e4m3 operand made from the weight it dequantized, not that weight: no weight-sized tensor
    is saved, backward dequantizes nothing, and the gradients are those of keeping the weight. With the adapter
    joined into the FP8 GEMMs the operand kept is the joined one, [W ; A]ᵀ."""
    import bitsandbytes as bnb

    model = qlora_model
    four = [m for m in model.modules() if hasattr(m, "base_layer") and type(m.base_layer) is bnb.nn.Linear4bit]
    shapes = {tuple(m.base_layer.weight.quant_state.shape) for m in four}
    assert not any(48 in s for s in shapes)
    uninstall = lora_fused.install(model)
    for m in four:
        lora_fused.enable_fp8(m, joined=joined)
    calls, saved = [], []
    real = lora_node._dequantized
    monkeypatch.setattr(lora_node, "_dequantized", lambda *a: calls.append(1) or real(*a))

    def pack(t):
        if tuple(t.shape) in shapes and t.dtype != torch.float8_e4m3fn:
            saved.append(tuple(t.shape))
        return t

    runs = {}
    try:
        for keep_fp8 in (False, True):
            monkeypatch.setattr(lora_node, "KEEP_FP8_OPERAND", keep_fp8)
            calls.clear(), saved.clear()
            with lora_fused.keep_dequantized(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                runs[keep_fp8] = (_run(model, rows=3, cols=16), len(calls), len(saved))  # 48 tokens: no weight side
    finally:
        uninstall()
    (ref, calls_w16, saved_w16), (got, calls_fp8, saved_fp8) = runs[False], runs[True]
    assert calls_w16 == calls_fp8 == len(four)  # forward's dequantizations only, either way
    assert saved_w16 == len(four) and saved_fp8 == 0
    assert torch.equal(got[0], ref[0])
    for name, g in ref[1].items():
        assert torch.equal(got[1][name], g), name
