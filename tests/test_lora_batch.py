"""Gathered mixed-adapter batches: the same logits as peft's per-adapter split, whatever the mix."""

import pytest
import torch

from assistant.adapters import BASE, attach_adapters
from assistant.lora_batch import disable_gathered_lora, enable_gathered_lora


@pytest.fixture(scope="module")
def two_adapters(tiny_lm, tmp_path_factory):
    """Random non-zero adapters of different ranks and targets (rank padding and missing layers)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    tmp = tmp_path_factory.mktemp("adapters")
    specs = {
        "a": LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
        "b": LoraConfig(r=8, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    }
    for i, (name, spec) in enumerate(specs.items()):
        torch.manual_seed(i)
        get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm), spec).save_pretrained(tmp / name)
    return {n: tmp / n for n in specs}


def _logits(model, ids, names):
    with torch.no_grad():
        return model(input_ids=ids, adapter_names=names).logits


def test_gathered_equals_peft_split_for_every_mix(tiny_lm, two_adapters):
    from transformers import AutoModelForCausalLM

    model, _ = attach_adapters(AutoModelForCausalLM.from_pretrained(tiny_lm).eval(), two_adapters)
    torch.manual_seed(0)
    ids = torch.randint(3, 200, (4, 9))
    mixes = [["a", "b", BASE, "a"], ["b"] * 4, [BASE] * 4, ["a", "a", "b", "b"]]
    gathered = [_logits(model, ids, m) for m in mixes]
    disable_gathered_lora(model)
    split = [_logits(model, ids, m) for m in mixes]
    for mix, g, s in zip(mixes, gathered, split):
        assert torch.allclose(g, s, atol=1e-5), mix
    # the adapters really differ from each other and from the base (the comparison is not vacuous)
    assert not torch.allclose(split[0][0], split[0][1], atol=1e-3)
    assert not torch.allclose(split[0][0], split[2][0], atol=1e-3)


def test_gathered_stack_follows_adapter_changes_and_is_never_saved(tiny_lm, two_adapters, tmp_path):
    from transformers import AutoModelForCausalLM

    model, _ = attach_adapters(AutoModelForCausalLM.from_pretrained(tiny_lm).eval(), {"a": two_adapters["a"]})
    ids = torch.randint(3, 200, (2, 5))
    before = _logits(model, ids, [BASE, "a"])
    model.load_adapter(str(two_adapters["b"]), adapter_name="b", is_trainable=False)
    assert enable_gathered_lora(model) > 0
    after = _logits(model, ids, ["b", "a"])  # the stacks are rebuilt with the new adapter
    assert torch.allclose(after[1], before[1], atol=1e-5)
    layer = next(m for m in model.modules() if hasattr(m, "lora_A") and "a" in m.lora_A)
    with torch.no_grad():
        layer.lora_B["a"].weight.add_(1.0)  # an in-place edit invalidates the stacked copy
    edited = _logits(model, ids, ["b", "a"])
    assert not torch.allclose(edited[1], after[1], atol=1e-3)
    model.save_pretrained(tmp_path / "saved")
    from safetensors.torch import load_file

    files = sorted((tmp_path / "saved").rglob("adapter_model.safetensors"))  # one folder per adapter
    assert len(files) == 2
    for f in files:
        keys = list(load_file(str(f)))
        assert keys and all("lora_A" in k or "lora_B" in k for k in keys), keys[:3]


def test_attaching_adapters_shows_no_library_deprecation_warnings(tiny_lm, two_adapters):
    """`lorag ask --adapter` must not print peft/transformers FutureWarnings on every run."""
    import warnings

    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        attach_adapters(base, two_adapters)
    assert not [w for w in seen if issubclass(w.category, FutureWarning)], [str(w.message) for w in seen]
