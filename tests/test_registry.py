"""The adapter registry (assistant/registry.py): versions, promotion, removal, staleness, the card for people."""

import json

import pytest

from assistant.errors import LoragError, NoPromotedAdapterError
from assistant.registry import AdapterCard, Registry, check_base, is_stale


def _card(reg, domain, fp="base1", corpus="c1"):
    version, folder = reg.next_folder(domain)
    staged = folder.parent / f".staged-{version}"
    staged.mkdir(parents=True)
    (staged / "adapter_config.json").write_text("{}")
    card = AdapterCard(
        name=f"{domain}-v{version}",
        domain=domain,
        version=version,
        base_model="tiny",
        base_fingerprint=fp,
        data_hash="d",
        corpus_fingerprint=corpus,
    )
    return reg.register(staged, card)


def test_registry_versions_promotion_and_removal(tmp_path):
    reg = Registry(tmp_path / "adapters")
    with pytest.raises(LoragError, match="no adapter named 'hr-v1'") as e:
        reg.get("hr-v1")
    assert e.value.hint.startswith("no adapter is registered yet: lorag synth")  # not "known adapters: none"
    _card(reg, "hr"), _card(reg, "hr")
    assert [c.name for c in reg.versions("hr")] == ["hr-v1", "hr-v2"]
    with pytest.raises(NoPromotedAdapterError) as e:  # the domain's name stands for its promoted version: none yet
        reg.get("hr")
    assert e.value.args[0] == "domain 'hr' has no promoted adapter for its name to pick; its versions: hr-v1, hr-v2"
    assert e.value.hint == "name a version (hr-v2), or promote one: lorag adapters promote hr-v2"
    reg.promote("hr-v1")
    assert reg.get("hr").name == "hr-v1" and reg.promoted()["hr"].name == "hr-v1"
    reg.promote("hr-v2")
    assert [c.promoted for c in reg.versions("hr")] == [False, True]
    with pytest.raises(LoragError, match="refused: worse"):
        reg.promote("hr-v1", gate=lambda c: {"ok": False, "reason": "worse"})
    forced = reg.promote("hr-v1", force=True, gate=lambda c: {"ok": False, "reason": "worse"})
    assert forced.promotion["forced"] and forced.promotion["reason"] == "worse"
    assert json.loads((reg.folder(forced) / "card.json").read_text())["promotion"]["forced"] is True
    reg.remove("hr-v2")
    assert [c.name for c in reg.versions("hr")] == ["hr-v1"]
    with pytest.raises(LoragError, match="no adapter named 'hr-v9'"):
        reg.get("hr-v9")
    assert _card(reg, "hr").version == 3  # versions are never reused


def test_card_text_shows_lineage_figures_and_the_gate_record(tmp_path):
    from assistant.registry import card_text

    reg = Registry(tmp_path)
    card = _card(reg, "hr", corpus="c1")
    text = card_text(card, stale=False)
    assert (
        "hr-v1" in text
        and "not promoted" in text
        and "evaluations    none yet: lorag eval --domain hr --ab base,hr-v1" in text
    )
    card.hyperparameters = {
        "lora_r": 16,
        "lora_alpha": 32,
        "epochs": 2,
        "runtime": {"device": "cuda", "quantization": "nf4"},
    }
    card.metrics = {"train_loss": 1.25, "eval_loss": 1.5, "steps": 32, "train_rows": 128, "tokens_per_s": 3896.2}
    card.reports = [
        {
            "run_id": "r1",
            "means": {"answer_f1": 0.103},
            "report": "/x/report.html",
            "vs": {"base": {"answer_f1": {"diff": 0.0492, "ci_low": -0.0064, "ci_high": 0.109}}},
        }
    ]
    text = card_text(card, stale=True)
    assert "STALE" in text and "r 16, alpha 32" in text and "(cuda, nf4)" in text and "3,896 tokens/s" in text
    assert "train 1.2500, held-out 1.5000" in text
    assert "answer_f1 0.1030; vs base: +0.0492 [-0.0064, +0.1090]" in text and "/x/report.html" in text
    card.hyperparameters = {"epochs": 3, "max_steps": 2, "runtime": {"device": "cpu", "quantization": "none"}}
    text = card_text(card)
    assert "(cpu, no quantization)" in text and "max_steps 2" in text and "peak GPU memory" not in text
    assert "32 steps on 128 rows" in text
    card.metrics, card.reports = {"steps": 1, "train_rows": 57}, []
    text = card_text(card, heldout=False)  # synth without curated --qa: nothing held out for eval to default to
    assert "1 step on 57 rows" in text
    assert "none yet: lorag eval --domain hr --testset FILE.jsonl --ab base,hr-v1" in text


def test_stale_and_base_checks(tmp_path):
    reg = Registry(tmp_path)
    card = _card(reg, "hr", fp="aaa", corpus="c1")
    assert not is_stale(card, "c1") and is_stale(card, "c2") and is_stale(card, None)
    check_base(card, "aaa")
    with pytest.raises(LoragError, match="trained on base model 'tiny'"):
        check_base(card, "bbb")


def test_stale_detection_follows_the_corpus(components, corpus):
    from assistant.store.base import corpus_fingerprint

    components.ingestor().run([corpus], "hr")
    before = corpus_fingerprint(components.store, "hr")
    components.ingestor().run([corpus], "hr")
    assert corpus_fingerprint(components.store, "hr") == before  # unchanged corpus, same fingerprint
    (corpus / "parking.txt").write_text("Parking is free now.\n")
    components.ingestor().run([corpus], "hr")
    assert corpus_fingerprint(components.store, "hr") != before
