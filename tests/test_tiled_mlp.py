"""finetune/accel/tiled_mlp.py: a checkpointed layer's MLP over token tiles gives checkpointing's gradients.

On this CPU the graphed programs run eagerly (capture=False); the memory it saves is measured on a GPU
(benchmarks/bench_train_gpu.py, `memory at train end` by pool)."""

import pytest
import torch

from finetune.accel import fp8, lora_fused, lora_node, tiled_mlp
from finetune.accel.graphs import LayerGraphs
from finetune.accel.layers import decoder_layers


@pytest.fixture()
def peft_model(peft_model):
    """conftest's LoRA model, gradient-checkpointed."""
    return _checkpointed(peft_model)


def _checkpointed(model):
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return model


def _run(model, rows=3, cols=16):
    torch.manual_seed(3)
    ids = torch.randint(3, 200, (rows, cols))  # 48 tokens: three 16-row tiles, or 32 + 16
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids.clone())
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _graphed(model, tiles, rows=3, cols=16):
    graphs = LayerGraphs(decoder_layers(model), max_tokens=rows * cols, capture=False, mlp_tiles=tiles).install()
    try:
        logits, grads = _run(model, rows, cols)
        _, again = _run(model, rows, cols)  # the programs replayed a second time
        return logits, grads, again, graphs.summary()
    finally:
        graphs.uninstall()


def test_tiles_are_multiples_of_16_rows_and_cover_every_token():
    assert tiled_mlp.tiles_of(48, 3) == [slice(0, 16), slice(16, 32), slice(32, 48)]
    assert tiled_mlp.tiles_of(100, 3) == [slice(0, 48), slice(48, 96), slice(96, 100)]
    assert tiled_mlp.tiles_of(12864, 4) == [slice(0, 3216), slice(3216, 6432), slice(6432, 9648), slice(9648, 12864)]
    assert tiled_mlp.tiles_of(16, 4) == [slice(0, 16)]  # never a tile under 16 rows but the last
    assert tiled_mlp.tiles_of(0, 4) == []


def test_auto_tiles_only_where_layer_inputs_are_offloaded():
    assert tiled_mlp.tile_count("auto", offloaded=True, max_tokens=12864, hidden=4096) == 4  # 8B shapes
    assert tiled_mlp.tile_count("auto", offloaded=False, max_tokens=12160, hidden=2048) == 1  # 1B: no press
    assert tiled_mlp.tile_count(3, offloaded=False, max_tokens=48, hidden=64) == 3
    assert tiled_mlp.tile_count(1, offloaded=True, max_tokens=12864, hidden=4096) == 1


def test_tiled_mlp_gives_checkpointing_gradients(peft_model):
    """Fused LoRA under graphed layers, the MLP in 3 tiles (and in 2 uneven ones): the gradients of plain
    checkpointing; the recompute runs no MLP (its output is unread), the backward runs it once per tile."""
    logits_ref, grads_ref = _run(peft_model)
    uninstall = lora_fused.install(peft_model)
    mlp = decoder_layers(peft_model)[0].mlp
    calls = []
    real = type(mlp).forward
    type(mlp).forward = lambda self, x: calls.append(x.shape[0]) or real(self, x)
    try:
        logits, grads, again, summary = _graphed(peft_model, 3)
        logits2, grads2, _, _ = _graphed(peft_model, 2)
    finally:
        type(mlp).forward = real
        uninstall()
    assert summary["mlp_tiles"] == 3 and summary["unread"] == ["mlp.down_proj"] and summary["eager"] == 0
    layers = len(decoder_layers(peft_model))
    # two steps at 3 tiles then two at 2: forward (no grad) + backward, per layer, one call per tile; the probe
    # that finds unread outputs runs whole MLPs on the first step (not tiled)
    assert calls.count(16) == 2 * 2 * 3 * layers + 2 * 2 * layers and calls.count(32) == 2 * 2 * layers
    for got_logits, got in ((logits, grads), (logits, again), (logits2, grads2)):
        assert torch.allclose(got_logits, logits_ref, atol=1e-5, rtol=1e-4)
        for name, g in grads_ref.items():
            assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name


def test_tiles_share_each_weights_fp8_operands(peft_model, monkeypatch):
    """With FP8 base GEMMs, the tiles of one MLP pass quantize each frozen weight once, not once per tile, each
    operand only where it is used (the no-grad forward makes no input-gradient operand), and the gradients are
    those of the untiled FP8 graphs."""
    uninstall = lora_fused.install(peft_model)
    from peft.tuners.lora import LoraLayer

    for m in peft_model.modules():
        if isinstance(m, LoraLayer):
            lora_fused.enable_fp8(m)  # every adapted Linear, whatever its size
    try:
        _, grads_ref, _, untiled = _graphed(peft_model, 1)
        made = []
        real = fp8.weight_operand

        def counted(w, s, *, transposed):
            made.append("input gradient" if transposed else "forward")
            return real(w, s, transposed=transposed)

        monkeypatch.setattr(fp8, "weight_operand", counted)
        _, grads, _, summary = _graphed(peft_model, 3)
    finally:
        uninstall()
    assert untiled["mlp_tiles"] == 1 and summary["mlp_tiles"] == 3
    layers = len(decoder_layers(peft_model))
    # per step and layer, for gate/up/down: the forward's tiles share a forward operand each, the backward's tiles
    # an input-gradient one each and a forward one for gate and up (down's output is unread there) (two steps)
    assert made.count("forward") == 2 * (3 + 2) * layers
    assert made.count("input gradient") == 2 * 3 * layers
    for name, g in grads_ref.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def test_tiles_dequantize_a_4bit_weight_once_per_pass(qlora_model):
    """QLoRA: the tiles share each 4-bit weight's dequantized copy; gradients as checkpointing's."""
    model = _checkpointed(qlora_model)
    uninstall = lora_fused.install(model)
    _, grads_ref = _run(model)
    seen = []
    real = lora_node._dequantized
    lora_node._dequantized = lambda b, dt: seen.append(1) or real(b, dt)
    per_step = {}
    try:
        for tiles in (1, 3):
            graphs = LayerGraphs(decoder_layers(model), max_tokens=48, capture=False, mlp_tiles=tiles).install()
            try:
                _run(model)  # the first step also finds the unread outputs
                seen.clear()
                _, grads = _run(model)
                per_step[tiles] = len(seen)
                assert graphs.summary()["mlp_tiles"] == tiles
            finally:
                graphs.uninstall()
            for name, g in grads_ref.items():
                assert torch.allclose(grads[name], g, atol=1e-4, rtol=1e-3), (tiles, name)
    finally:
        lora_node._dequantized = real
        uninstall()
    # per layer and step, untiled: forward 7, recompute 6 (kept for backward) + down's in backward 1; tiled: forward
    # 4 + MLP 3 (shared by the tiles), recompute 4, the backward's tiles 3 (shared): the same 14, not 4 + 9 + 4 + 15
    layers = len(decoder_layers(model))
    assert per_step == {1: 14 * layers, 3: 14 * layers}


def test_a_layer_that_reads_its_mlp_output_keeps_the_mlp_whole(tmp_path):
    """Gemma's layers normalise the MLP's output before the residual sum, so its backward reads that output: the
    probe finds the down projection read, tiles stay off (the reason in the stats), and the gradients are
    checkpointing's."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=128,
        sliding_window=64,
    )
    model = get_peft_model(
        Gemma3ForCausalLM(cfg),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False),
    ).train()
    uninstall = lora_fused.install(_checkpointed(model))
    try:
        _, grads_ref = _run(model)
        _, grads, _, summary = _graphed(model, 3)
    finally:
        uninstall()
    assert "mlp.down_proj" not in summary["unread"]
    assert summary["mlp_tiles"] == 1 and summary["mlp_tiles_off"] == "the recompute reads the MLP's output"
    for name, g in grads_ref.items():
        assert torch.isfinite(grads[name]).all() and torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def test_the_probe_counts_only_outputs_the_fused_node_skipped(tiny_lm):
    """Where peft's own forward runs instead of the fused node (LoRA weights in float32 over a bf16 base, no
    autocast), a NaN-filled output never reaches anything: nothing is reported unread and the MLP is not tiled."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.bfloat16)
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False)
    ).train()
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)  # peft's default
    uninstall = lora_fused.install(_checkpointed(model))
    try:
        _, _, _, summary = _graphed(model, 3)
    finally:
        uninstall()
    assert summary["unread"] == [] and summary["mlp_tiles"] == 1 and summary["eager"] == 0


def test_tiles_need_the_skipped_recompute(peft_model):
    uninstall = lora_fused.install(peft_model)
    try:
        graphs = LayerGraphs(
            decoder_layers(peft_model), max_tokens=48, capture=False, mlp_tiles=3, skip_unread=False
        ).install()
        try:
            _run(peft_model)
            summary = graphs.summary()
        finally:
            graphs.uninstall()
    finally:
        uninstall()
    assert summary["mlp_tiles"] == 1 and summary["mlp_tiles_off"] == "the recompute reads the MLP's output"


@pytest.mark.parametrize(
    ("given", "want"), [(4, 4), ("3", 3), (" 2 ", 2), ("auto", "auto"), ("Auto", "auto"), (" AUTO ", "auto")]
)
def test_recipe_takes_a_tile_count_or_auto(given, want):
    from finetune.config import TrainConfig

    assert TrainConfig(domain="d", recompute_mlp_tiles=given).recompute_mlp_tiles == want


@pytest.mark.parametrize("given", [0, -1, "0", True, 2.5, "²", "many", None])
def test_recipe_refuses_other_tile_counts(given):
    from finetune.config import TrainConfig

    with pytest.raises(Exception) as err:
        TrainConfig(domain="d", recompute_mlp_tiles=given)
    assert "recompute_mlp_tiles" in str(err.value) and "a whole number >= 1 or auto" in str(err.value)


def test_the_run_summary_says_how_the_mlp_ran():
    from finetune.runtime import describe_runtime

    on = {"cuda_graphs": {"shapes": 1, "mlp_tiles": 4}}
    off = {"cuda_graphs": {"shapes": 1, "mlp_tiles": 1, "mlp_tiles_off": "the recompute reads the MLP's output"}}
    plain = {"cuda_graphs": {"shapes": 1, "mlp_tiles": 1, "mlp_tiles_off": None}}
    rt = {"runtime": {"device": "cuda"}}
    assert describe_runtime(on, rt).endswith("CUDA graphs: 1 shapes, MLP in 4 token tiles")
    assert describe_runtime(off, rt).endswith("MLP tiles off (the recompute reads the MLP's output)")
    assert "MLP" not in describe_runtime(plain, rt)
