"""`lorag adapters serve-config --engine vllm|llamacpp|ollama`: the exact command line (or Modelfiles) that serves
the base with every promoted adapter of the registry, and the lorag settings that go with it."""

from __future__ import annotations

import json
import shlex

import pytest
from typer.testing import CliRunner

from assistant.errors import LoragError
from assistant.models.cache import ModelCache
from assistant.registry import AdapterCard, Registry, now
from assistant.settings import Settings
from finetune.serve_config import build
from tests.helpers.loras import random_lora, register_lora


@pytest.fixture
def setup(tiny_lm, tmp_path):
    settings = Settings(
        paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"}, models={"generator": str(tiny_lm)}
    )
    reg = Registry(settings.adapters_dir)
    register_lora(reg, random_lora(tiny_lm, tmp_path / "a", r=4), tiny_lm, "hr", 1, promoted=True)
    register_lora(reg, random_lora(tiny_lm, tmp_path / "b", r=4), tiny_lm, "hr", 2)  # not promoted
    register_lora(reg, random_lora(tiny_lm, tmp_path / "c", r=20), tiny_lm, "it", 2, promoted=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "adapter_config.json").write_text("{}")
    reg.register(
        other,
        AdapterCard(
            name="legal-v1",
            domain="legal",
            version=1,
            base_model="Qwen/Qwen2.5-0.5B-Instruct",
            base_fingerprint="another",
            data_hash="",
            corpus_fingerprint="",
            created_at=now(),
        ),
    )
    reg.promote("legal-v1")
    return settings, reg, ModelCache(settings.paths.model_cache)


def cfg(setup, engine, **kw):
    settings, reg, cache = setup
    return build(engine, settings=settings, registry=reg, model_cache=cache, **kw)


def test_vllm_serves_every_promoted_adapter_by_its_registry_name(setup, tiny_lm):
    _, reg, _ = setup
    c = cfg(setup, "vllm")
    hr, it = (reg.folder(reg.get(n)).resolve() for n in ("hr-v1", "it-v2"))
    assert c.commands == [
        f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve {tiny_lm} --served-model-name {tiny_lm} --port 8000 "
        f"--enable-lora --max-loras 2 --max-lora-rank 32 --lora-modules hr-v1={hr} it-v2={it}"
    ]
    assert c.adapters == ["hr-v1", "it-v2"] and c.skipped == [
        "legal-v1: trained on another base model (Qwen/Qwen2.5-0.5B-Instruct)"
    ]
    assert c.settings == {
        "base_url": "http://localhost:8000/v1",
        "model": str(tiny_lm),
        "adapter_api": "model",
        "repetition_penalty_field": "repetition_penalty",
    }
    text = c.text()
    assert "# skipped legal-v1: trained on another base model" in text
    assert (
        "export LORAG_MODELS__ENDPOINT__BASE_URL=http://localhost:8000/v1\nexport "
        f"LORAG_MODELS__ENDPOINT__MODEL={tiny_lm}" in text
    )
    arms = cfg(setup, "vllm", names=["hr-v2"], port=9000)  # an A/B arm that is not promoted, served too
    words = shlex.split(arms.commands[0])
    assert words[words.index("--max-loras") + 1] == "3" and f"hr-v2={reg.folder(reg.get('hr-v2')).resolve()}" in words
    assert arms.settings["base_url"] == "http://localhost:9000/v1"


def test_llamacpp_and_ollama_need_gguf_exports_and_say_how_to_make_them(setup, tmp_path):
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    with pytest.raises(LoragError) as e:
        cfg(setup, "llamacpp", base_gguf=base)
    assert str(e.value).startswith("llamacpp loads GGUF adapters, and hr-v1, it-v2 have no GGUF export yet")
    assert e.value.hint == (
        "lorag adapters export hr-v1 --format gguf --out .lorag/exports/hr-v1-gguf; "
        "lorag adapters export it-v2 --format gguf --out .lorag/exports/it-v2-gguf"
    )
    with pytest.raises(LoragError, match="llamacpp serves GGUF models, and the base model has no GGUF file here") as e:
        cfg(setup, "llamacpp")  # the tiny model is a folder: no GGUF
    assert "--base-gguf FILE" in e.value.hint
    with pytest.raises(LoragError, match="--base-gguf .*nope.gguf: no such file"):
        cfg(setup, "ollama", base_gguf=tmp_path / "nope.gguf")


def _exported(setup, tmp_path):
    _, reg, _ = setup
    files = {}
    for name in ("hr-v1", "it-v2"):
        f = tmp_path / "exports" / f"{name}.gguf"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"GGUF")
        reg.record_export(name, {"format": "gguf", "path": str(f.parent), "file": str(f)})
        files[name] = f
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    return base, files


def test_llamacpp_command_loads_every_gguf_off_until_a_request_turns_one_on(setup, tmp_path, tiny_lm):
    base, files = _exported(setup, tmp_path)
    c = cfg(setup, "llamacpp", base_gguf=base)
    assert c.commands == [
        f"llama-server -m {base.resolve()} --alias {tiny_lm} --port 8080 --lora-init-without-apply "
        f"--lora {files['hr-v1']} --lora {files['it-v2']}"
    ]
    assert c.settings["adapter_api"] == "llamacpp" and c.settings["repetition_penalty_field"] == "repeat_penalty"
    files["it-v2"].unlink()  # an export deleted since: it counts as missing
    with pytest.raises(LoragError, match="it-v2 has no GGUF export yet"):
        cfg(setup, "llamacpp", base_gguf=base)


def test_ollama_gets_one_modelfile_per_adapter_named_as_the_adapter(setup, tmp_path, tiny_lm):
    base, files = _exported(setup, tmp_path)
    c = cfg(setup, "ollama", base_gguf=base)
    assert c.files[f"Modelfile.{tiny_lm}"] == f"FROM {base.resolve()}\n"
    assert c.files["Modelfile.hr-v1"] == f"FROM {base.resolve()}\nADAPTER {files['hr-v1']}\n"
    assert c.commands[1:] == ["ollama create hr-v1 -f Modelfile.hr-v1", "ollama create it-v2 -f Modelfile.it-v2"]
    assert c.settings == {
        "base_url": "http://localhost:11434/v1",
        "model": str(tiny_lm),
        "adapter_api": "model",
        "repetition_penalty_field": "none",
    }
    assert f"cat > Modelfile.hr-v1 <<'EOF'\nFROM {base.resolve()}\nADAPTER {files['hr-v1']}\nEOF" in c.text()


def test_unknown_engine_and_a_rank_vllm_cannot_take(setup):
    from finetune.serve_config import vllm_rank

    with pytest.raises(LoragError, match=r"unknown engine 'tgi' \(--engine\): use vllm, llamacpp, ollama"):
        cfg(setup, "tgi")
    assert [vllm_rank(r) for r in (1, 2, 16, 17, 300, 512)] == [1, 8, 16, 32, 320, 512]
    with pytest.raises(LoragError, match="above vLLM's largest --max-lora-rank"):
        vllm_rank(600)


def test_cli_serve_config_json(setup, tiny_lm, tmp_path, monkeypatch):
    from ui import cli

    settings, reg, _ = setup
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(settings.paths.data_dir))
    monkeypatch.setenv("LORAG_PATHS__MODEL_CACHE", str(settings.paths.model_cache))
    monkeypatch.setenv("LORAG_MODELS__GENERATOR", str(tiny_lm))
    r = CliRunner().invoke(cli.app, ["adapters", "serve-config", "--engine", "vllm", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["adapters"] == ["hr-v1", "it-v2"] and "--lora-modules" in out["commands"][0]
    r = CliRunner().invoke(cli.app, ["adapters", "serve-config", "--engine", "ollama"])
    assert r.exit_code == 1 and "ollama serves GGUF models" in str(r.exception)
