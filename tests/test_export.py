"""`lorag adapters export`: the PEFT folder, a merged model and a GGUF LoRA, each loaded back and checked
against the unmerged adapter, recorded on the card; the GGUF file in llama.cpp's layout; bad input refused.
On the tiny random Llama model (tests/conftest.py) with random LoRA weights."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.errors import LoragError
from assistant.models.cache import ModelCache
from assistant.registry import Registry
from finetune.export import export_adapter
from tests.helpers.loras import random_lora, register_lora


@pytest.fixture(scope="module")
def reg(tiny_lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    registry = Registry(root / "adapters")
    register_lora(registry, random_lora(tiny_lm, root / "stage1", seed=1), tiny_lm, "hr", 1)
    return registry


def resolve(spec: str) -> str:
    return ModelCache(__import__("pathlib").Path("/nonexistent-cache")).resolve(spec)


def greedy(model, tok, text="Passages: [1] leave.md Full-time staff receive 27 days.\nQuestion: How many days?", n=16):
    import torch

    ids = torch.tensor(
        [
            tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)[
                "input_ids"
            ]
        ]
    )
    with torch.inference_mode():
        return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n)[
            0
        ].tolist()


def unmerged(tiny_lm, folder):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm), str(folder)).eval()


def test_merged_export_is_a_plain_model_answering_as_the_adapter(reg, tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    rec = export_adapter(reg, "hr-v1", "merged", out, resolve=resolve)
    assert rec["check"]["ok"] and rec["check"]["same_text"] and rec["check"]["prompts"] == 3
    assert rec["check"]["max_logit_diff"] < 1e-3 and rec["dtype"] == "float32"
    assert not (out / "adapter_config.json").exists() and (out / "config.json").is_file()
    tok = AutoTokenizer.from_pretrained(out)  # the tokenizer travels with it
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    adapter = unmerged(tiny_lm, reg.folder(reg.get("hr-v1")))
    assert greedy(merged, tok) == greedy(adapter, tok) != greedy(base, tok)  # the adapter's answer, not the base's
    card = reg.get("hr-v1")
    assert card.exports[-1]["format"] == "merged" and card.exports[-1]["path"] == str(out.resolve())
    assert card.exports[-1]["check"]["same_text"]


def test_peft_export_is_the_folder_as_is(reg, tmp_path):
    out = tmp_path / "peft"
    rec = export_adapter(reg, "hr-v1", "peft", out, resolve=resolve)
    src = reg.folder(reg.get("hr-v1"))
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / f).read_bytes() == (src / f).read_bytes()
    assert json.loads((out / "card.json").read_text())["name"] == "hr-v1"
    assert rec["check"]["ok"] and rec["check"]["max_logit_diff"] == 0.0


def _field(reader, key):
    return reader.get_field(key).contents()


def test_gguf_export_is_llama_cpps_lora_layout(reg, tiny_lm, tmp_path):
    """Checked without lorag's reader: metadata, names, shapes, scale and the q/k row order llama.cpp uses."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file
    from transformers import AutoConfig

    out = tmp_path / "gguf"
    rec = export_adapter(reg, "hr-v1", "gguf", out, resolve=resolve)
    assert rec["check"]["ok"] and rec["check"]["same_text"] and rec["file"] == str((out / "hr-v1.gguf").resolve())
    r = gguf.GGUFReader(str(out / "hr-v1.gguf"))
    assert (_field(r, "general.architecture"), _field(r, "general.type"), _field(r, "adapter.type")) == (
        "llama",
        "adapter",
        "lora",
    )
    assert _field(r, "adapter.lora.alpha") == 8.0
    t = {x.name: np.array(x.data, dtype=np.float32).reshape([int(d) for d in reversed(x.shape)]) for x in r.tensors}
    shapes = {x.name: [int(d) for d in x.shape] for x in r.tensors}
    assert len(t) == 2 * 7 * 2  # 7 Linear layers a block, 2 blocks, A and B each
    cfg = AutoConfig.from_pretrained(tiny_lm)
    assert shapes["blk.0.attn_q.weight.lora_a"] == [cfg.hidden_size, 4]  # ggml's ne: [in_features, rank]
    assert shapes["blk.1.ffn_down.weight.lora_b"] == [4, cfg.hidden_size]  # [rank, out_features]
    peft = {
        k: v.float().numpy()
        for k, v in load_file(str(reg.folder(reg.get("hr-v1")) / "adapter_model.safetensors")).items()
    }
    p = "base_model.model.model.layers.{}.{}.lora_{}.weight"
    assert np.array_equal(t["blk.1.ffn_down.weight.lora_a"], peft[p.format(1, "mlp.down_proj", "A")])
    assert np.array_equal(t["blk.1.attn_v.weight.lora_b"], peft[p.format(1, "self_attn.v_proj", "B")])
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    for proj, heads in (("q", cfg.num_attention_heads), ("k", cfg.num_key_value_heads)):
        b = peft[p.format(0, f"self_attn.{proj}_proj", "B")]
        rows = []  # llama.cpp's rotary order: within each head, row i of each half side by side
        for h in range(heads):
            for i in range(head_dim // 2):
                rows += [h * head_dim + i, h * head_dim + head_dim // 2 + i]
        assert np.array_equal(t[f"blk.0.attn_{proj}.weight.lora_b"], b[rows])
        assert np.array_equal(t[f"blk.0.attn_{proj}.weight.lora_a"], peft[p.format(0, f"self_attn.{proj}_proj", "A")])


def test_rslora_scaling_is_carried_in_lora_b(tiny_lm, tmp_path):
    """llama.cpp scales by alpha / rank; rsLoRA's alpha / sqrt(rank) is folded into lora_b."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from finetune.gguf_lora import write_gguf_lora

    folder = random_lora(tiny_lm, tmp_path / "rs", r=4, alpha=8, use_rslora=True)
    write_gguf_lora(folder, AutoConfig.from_pretrained(tiny_lm), tmp_path / "rs.gguf")
    r = gguf.GGUFReader(str(tmp_path / "rs.gguf"))
    b = next(np.array(x.data) for x in r.tensors if x.name == "blk.0.ffn_up.weight.lora_b")
    peft_b = load_file(str(folder / "adapter_model.safetensors"))[
        "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"
    ].numpy()
    # alpha/rank * B' == alpha/sqrt(rank) * B  =>  B' = sqrt(rank) * B
    assert np.allclose(b, peft_b * 2.0, atol=1e-6)


def test_gguf_f16_is_checked_within_a_logit_tolerance(reg, tmp_path):
    rec = export_adapter(reg, "hr-v1", "gguf", tmp_path / "f16", resolve=resolve, gguf_dtype="f16")
    c = rec["check"]
    assert c["ok"] and c["tolerance"] == 0.05 and 0 < c["max_logit_diff"] <= 0.05 and rec["tensor_type"] == "f16"


def test_an_export_that_does_not_load_back_as_the_adapter_writes_nothing(reg, tmp_path, monkeypatch):
    import finetune.gguf_lora as gl

    before = len(reg.get("hr-v1").exports)
    monkeypatch.setattr(gl, "_rotary_rows", lambda w, heads: w)  # written in HF's row order, read back as llama.cpp's
    out = tmp_path / "broken"
    with pytest.raises(LoragError, match="export of hr-v1 as gguf failed its check: the answer to prompt 1 differs"):
        export_adapter(reg, "hr-v1", "gguf", out, resolve=resolve)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    assert len(reg.get("hr-v1").exports) == before


def test_bad_input_is_refused_with_the_field_and_the_reason(reg, tiny_lm, tmp_path):
    with pytest.raises(LoragError, match=r"unknown export format 'onnx' \(--format\): use peft, merged, gguf"):
        export_adapter(reg, "hr-v1", "onnx", tmp_path / "x", resolve=resolve)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(LoragError, match=r"--out .*full: the folder is not empty \(1 entry\)"):
        export_adapter(reg, "hr-v1", "merged", tmp_path / "full", resolve=resolve)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(LoragError, match=r"unknown GGUF tensor type 'q4' \(--gguf-type\)"):
        export_adapter(reg, "hr-v1", "gguf", tmp_path / "y", resolve=resolve, gguf_dtype="q4")
    with pytest.raises(LoragError, match="no adapter named 'hr-v9'"):
        export_adapter(reg, "hr-v9", "peft", tmp_path / "z", resolve=resolve)


def test_an_adapter_whose_base_model_is_not_here_is_refused(tiny_lm, tmp_path):
    registry = Registry(tmp_path / "adapters")
    register_lora(registry, random_lora(tiny_lm, tmp_path / "s"), tiny_lm, "it", 1, base_model="smollm2-135m-instruct")
    with pytest.raises(LoragError) as e:
        export_adapter(registry, "it-v1", "merged", tmp_path / "out", resolve=resolve)
    assert (
        "adapter it-v1: its base model 'smollm2-135m-instruct' is not available here: model "
        "'smollm2-135m-instruct' is not in the cache" in str(e.value)
    )
    assert "lorag models pull" in e.value.hint and not (tmp_path / "out").exists()
    gone = tmp_path / "gone-base"
    register_lora(registry, random_lora(tiny_lm, tmp_path / "s2"), tiny_lm, "it", 2, base_model=str(gone))
    with pytest.raises(LoragError, match=f"adapter it-v2: its base model '{gone}' is not available here"):
        export_adapter(registry, "it-v2", "gguf", tmp_path / "out", resolve=resolve)


def test_what_gguf_cannot_carry_is_refused_by_name(tiny_lm, tmp_path):
    from transformers import AutoConfig

    from finetune.gguf_lora import write_gguf_lora

    cfg = AutoConfig.from_pretrained(tiny_lm)
    dora = random_lora(tiny_lm, tmp_path / "dora", use_dora=True)
    with pytest.raises(LoragError, match="adapter_config.json: use_dora is true; a DoRA adapter has no GGUF LoRA form"):
        write_gguf_lora(dora, cfg, tmp_path / "d.gguf")
    saved = random_lora(tiny_lm, tmp_path / "mts", target_modules=["q_proj"], modules_to_save=["lm_head"])
    with pytest.raises(LoragError, match=r"modules_to_save \['lm_head'\] are whole trained layers"):
        write_gguf_lora(saved, cfg, tmp_path / "m.gguf")
    cfg.architectures = ["Phi3ForCausalLM"]
    with pytest.raises(
        LoragError,
        match="GGUF export supports LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM base "
        "models; this base is Phi3ForCausalLM",
    ):
        write_gguf_lora(tmp_path / "mts", cfg, tmp_path / "p.gguf")


def test_cli_export_and_show(tiny_lm, tmp_path, monkeypatch):
    from ui import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_PATHS__MODEL_CACHE", str(tmp_path / "cache"))
    register_lora(Registry(tmp_path / "data" / "adapters"), random_lora(tiny_lm, tmp_path / "s"), tiny_lm, "hr", 1)
    runner = CliRunner()
    r = runner.invoke(
        cli.app, ["adapters", "export", "hr-v1", "--format", "gguf", "--out", str(tmp_path / "g"), "--json"]
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["format"] == "gguf" and rec["check"]["ok"] and (tmp_path / "g" / "hr-v1.gguf").is_file()
    r = runner.invoke(cli.app, ["adapters", "show", "hr-v1"])
    assert f"export         gguf -> {rec['file']}" in r.output and "checked: same answers on 3 prompts" in r.output
    r = runner.invoke(cli.app, ["adapters", "export", "hr-v1", "--format", "gguf", "--out", str(tmp_path / "g")])
    assert r.exit_code == 1 and "the folder is not empty" in str(r.exception)  # cli.main() prints it as `error: ...`
    if cli.state._components is not None:
        cli.state._components.close()
