"""finetune/accel/lora_fused.py: LoRA's delta added inside the GEMM gives peft's logits and gradients."""

import torch

from finetune.accel import lora_fused, lora_node


def _batch():
    torch.manual_seed(3)
    ids = torch.randint(3, 200, (2, 11))
    return {"input_ids": ids, "labels": ids.clone()}


def _run(model):
    model.zero_grad(set_to_none=True)
    out = model(**_batch())
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.detach(), grads


def test_fused_forward_matches_peft(peft_model):
    logits_ref, grads_ref = _run(peft_model)
    keys = set(peft_model.state_dict())
    uninstall = lora_fused.install(peft_model)
    assert uninstall.count > 0
    fused = []
    orig = lora_fused._fast_path

    def counting(layer, kw):
        name = orig(layer, kw)
        fused.append(name is not None)
        return name

    lora_fused._fast_path = counting
    try:
        logits, grads = _run(peft_model)
    finally:
        lora_fused._fast_path = orig
        uninstall()
    assert all(fused) and len(fused) == n_lora_linears(peft_model)  # the fused path ran for every adapted linear
    assert torch.allclose(logits, logits_ref, atol=1e-5, rtol=1e-4)
    assert grads.keys() == grads_ref.keys()
    for name, g in grads_ref.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name
    assert set(peft_model.state_dict()) == keys
    assert not any("forward" in vars(m) for m in peft_model.modules())  # uninstalled


def n_lora_linears(model):
    from peft.tuners.lora import LoraLayer

    return sum(isinstance(m, LoraLayer) for m in model.modules())


def test_cases_peft_must_handle_fall_back(peft_model):
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in peft_model.modules() if isinstance(m, LoraLayer))
    assert lora_fused._fast_path(layer, {}) == "default"
    assert lora_fused._fast_path(layer, {"adapter_names": ["default"]}) is None  # a mixed batch
    layer.lora_dropout["default"] = torch.nn.Dropout(0.1)
    assert lora_fused._fast_path(layer, {}) is None  # dropout: peft's forward draws the mask
    layer.lora_dropout["default"] = torch.nn.Identity()
    with peft_model.disable_adapter():
        assert lora_fused._fast_path(layer, {}) is None
    layer.lora_B["default"].weight.data = layer.lora_B["default"].weight.data.double()
    assert lora_fused._compute_dtype(layer, "default", torch.zeros(1)) is None  # mixed dtypes: peft casts
    with torch.autocast("cpu", dtype=torch.bfloat16):  # under autocast every GEMM runs in its dtype, as peft's do
        assert lora_fused._compute_dtype(layer, "default", torch.zeros(1)) is torch.bfloat16


def test_fused_backward_inside_checkpointed_graphed_layers(peft_model):
    """Under the graphs' recompute (finetune/accel/graphs.py) the fused node gives the same gradients too."""
    from finetune.accel.graphs import LayerGraphs
    from finetune.accel.layers import decoder_layers

    peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peft_model.enable_input_require_grads()
    _, grads_ref = _run(peft_model)
    uninstall = lora_fused.install(peft_model)
    graphs = LayerGraphs(decoder_layers(peft_model), max_tokens=2 * 11, capture=False).install()
    try:
        _, grads = _run(peft_model)
        assert graphs.stats["replayed"] > 0 and graphs.stats["eager"] == 0
        # the recompute skips the one output nothing reads (it only reaches the layer output through the residual
        # sum); q/k/v/o, gate and up feed attention, norms and the activation, so NaN in them is caught
        assert graphs.stats["unread"] == ["mlp.down_proj"]
    finally:
        graphs.uninstall()
        uninstall()
    for name, g in grads_ref.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def test_fused_over_4bit_base_matches_peft(qlora_model):
    """QLoRA: over bitsandbytes' NF4 Linear the fused node gives peft's logits and gradients, with the base
    dequantized inside the node."""
    import bitsandbytes as bnb

    model = qlora_model
    four = [m for m in model.modules() if hasattr(m, "base_layer") and type(m.base_layer) is bnb.nn.Linear4bit]
    assert four
    logits_ref, grads_ref = _run(model)
    uninstall = lora_fused.install(model)
    calls = []
    real = lora_node._dequantized
    lora_node._dequantized = lambda *a: calls.append(1) or real(*a)
    try:
        assert all(lora_fused._fast_path(m, {}) == "default" for m in four)
        logits, grads = _run(model)
        first = len(calls)
        assert first > len(four)  # forward dequantizes, and backward again (where an input gradient is needed)
        with lora_fused.keep_dequantized():  # as in the graphs' recompute: backward reuses forward's weight
            logits_kept, grads_kept = _run(model)
        assert len(calls) - first == len(four)
    finally:
        lora_node._dequantized = real
        uninstall()
    for got_logits, got in ((logits, grads), (logits_kept, grads_kept)):
        assert torch.allclose(got_logits, logits_ref, atol=1e-5, rtol=1e-4)
        for name, g in grads_ref.items():
            assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name


def test_4bit_layers_share_graphs_from_packed_buffers(qlora_model):
    """QLoRA under shared graphs: each layer's frozen tensors (4-bit weights and their quantization state)
    are packed into one buffer, copied into the stand-in in one go; the gradients stay checkpointing's."""
    from finetune.accel.graph_sharing import layer_tensors
    from finetune.accel.graphs import LayerGraphs
    from finetune.accel.layers import decoder_layers

    model = qlora_model
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    uninstall = lora_fused.install(model)
    logits_ref, grads_ref = _run(model)
    layers = decoder_layers(model)
    graphs = LayerGraphs(layers, max_tokens=2 * 11, capture=False).install()
    try:
        logits, grads = _run(model)
        _, grads_again = _run(model)  # the packed layers, loaded a second time
        assert (
            graphs.stats["shared"] == len(layers) and graphs.stats["eager"] == 0
        )  # one shape: every layer the stand-in
    finally:
        graphs.uninstall()
        uninstall()
    for layer in layers:
        frozen = [t for t in layer_tensors(layer) if not t.requires_grad]
        assert any(t.dtype == torch.uint8 for t in frozen) and len(frozen) > 10  # packed weights and quantization state
        assert len({t.untyped_storage().data_ptr() for t in frozen}) == 1
        assert all(
            t.untyped_storage().data_ptr() != p.untyped_storage().data_ptr()
            for t in frozen[:1]
            for p in layer_tensors(layer)
            if p.requires_grad
        )
    assert torch.allclose(logits, logits_ref, atol=1e-5, rtol=1e-4)
    for got in (grads, grads_again):
        for name, g in grads_ref.items():
            assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name
