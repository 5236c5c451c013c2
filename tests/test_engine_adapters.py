"""Adapters on an engine: llama.cpp's server (adapters from GET /lora-adapters, chosen by the request's `lora`
field), and a promoted adapter the engine does not serve refused with the command that loads it, for the engine
it is (vLLM, llama.cpp, Ollama), in `lorag ask` and `lorag config --check`. Against the stub engine."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from assistant.errors import LoragError
from tests.test_engine_openai import (  # noqa: F401  (fixtures)
    Q,
    _fresh,
    comps,
    endpoint,
    no_local_model,
    settings_for,
    stub,
)
from tests.test_ui_core import register_fake_adapter

LORAS = [
    {"id": 0, "path": "/srv/loras/hr-v1.gguf", "scale": 0.0},
    {"id": 1, "path": "/srv/loras/it-v2.gguf", "scale": 0.0},
]


@pytest.fixture
def llamacpp(settings_for, stub, store, bm25, corpus, no_local_model):  # noqa: F811
    from tests.fakes import HashingEmbedder
    from ui.components import Components

    stub.loras = [dict(x) for x in LORAS]
    c = Components(
        settings_for(stub.url, adapter_api="llamacpp", repetition_penalty_field="repeat_penalty"),
        store=store,
        dense=HashingEmbedder(2048),
        sparse=bm25,
    )
    assert c.ingestor().run([corpus], "hr").ok
    return c


def test_llama_cpp_adapters_are_its_lora_files_turned_on_per_request(llamacpp, stub):  # noqa: F811
    gen = llamacpp.generator
    assert gen.adapters() == ["hr-v1", "it-v2"]
    gen.generate_batch([[{"role": "user", "content": "q"}]] * 3, adapters=["it-v2", None, "hr-v1"])
    bodies = sorted(stub.chat_requests(), key=lambda b: b["lora"][1]["scale"] * 2 + b["lora"][0]["scale"])
    assert all(b["model"] == "base-m" and b["repeat_penalty"] == 1.1 for b in bodies)  # the model is always the base
    assert [b["lora"] for b in bodies] == [
        [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}],  # base: every adapter off, whatever the server's defaults
        [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}],
        [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}],
    ]
    final = llamacpp.ask_service.ask(Q, "hr", adapter=llamacpp.attach(["hr-v1"])[0])
    assert final.route["adapter"] == "hr-v1" and stub.chat_requests()[-1]["lora"][0] == {"id": 0, "scale": 1.0}


def test_llama_cpp_without_adapters_sends_no_lora_field(llamacpp, stub):  # noqa: F811
    stub.loras = []
    llamacpp.generator.generate_batch([[{"role": "user", "content": "q"}]])
    assert "lora" not in stub.chat_requests()[-1]


def test_an_adapter_llama_cpp_lacks_names_its_gguf_or_the_export_first(llamacpp, stub, tmp_path):  # noqa: F811
    reg = llamacpp.registry
    card = register_fake_adapter(reg, llamacpp.store, "hr", 3)
    with pytest.raises(LoragError) as e:
        llamacpp.attach(["hr-v3"])
    assert f"adapter 'hr-v3' is not served by the engine at {stub.url} (it serves: hr-v1, it-v2)" in str(e.value)
    assert e.value.hint.startswith(
        "llama.cpp: lorag adapters export hr-v3 --format gguf --out .lorag/exports/hr-v3-gguf, then "
        "restart llama-server with --lora .lorag/exports/hr-v3-gguf/hr-v3.gguf"
    )
    gguf = tmp_path / "hr-v3.gguf"
    gguf.write_bytes(b"GGUF")
    reg.record_export(card.name, {"format": "gguf", "path": str(tmp_path), "file": str(gguf)})
    reg.promote(card.name)
    with pytest.raises(LoragError) as e:
        llamacpp.attach(["hr"])  # the domain's promoted version
    assert e.value.hint.startswith(
        f"llama.cpp: restart llama-server with --lora {gguf} (it loads adapters only at start"
    )
    assert "vLLM" not in e.value.hint and "serve-config --engine llamacpp" in e.value.hint


@pytest.mark.parametrize(
    "owner, says",
    [
        (
            "vllm",
            "vLLM: start it with --enable-lora --lora-modules hr-v2={folder}, or load it into the running "
            "server: POST {url}/load_lora_adapter",
        ),
        (
            "library",
            "Ollama: lorag adapters export hr-v2 --format gguf --out .lorag/exports/hr-v2-gguf, then `ollama "
            "create hr-v2 -f Modelfile.hr-v2`",
        ),
    ],
)
def test_a_promoted_adapter_the_engine_lacks_is_refused_when_routed_to(comps, stub, owner, says):  # noqa: F811
    for m in stub.models:
        m["owned_by"] = owner
    card = register_fake_adapter(comps.registry, comps.store, "hr", 2, promoted=True)  # the engine serves hr-v1 only
    with pytest.raises(LoragError) as e:
        comps.ask_service.ask(Q, "hr")  # the domain's promoted adapter answers: hr-v2
    assert f"adapter 'hr-v2' is not served by the engine at {stub.url} (it serves: hr-v1)" in str(e.value)
    assert says.format(folder=comps.registry.folder(card).resolve(), url=stub.url) in e.value.hint
    assert not stub.chat_requests()  # refused before anything was sent


def test_config_check_lists_promoted_adapters_the_engine_lacks(tmp_path, monkeypatch, stub):  # noqa: F811
    from ui import cli

    monkeypatch.chdir(tmp_path)
    for k, v in {
        "PATHS__DATA_DIR": tmp_path / "data",
        "MODELS__ENDPOINT__BASE_URL": stub.url,
        "MODELS__ENDPOINT__MODEL": "base-m",
    }.items():
        monkeypatch.setenv(f"LORAG_{k}", str(v))
    from assistant.registry import Registry

    reg = Registry(tmp_path / "data" / "adapters")

    class NoStore:
        def has_domain(self, d):
            return False

    register_fake_adapter(reg, NoStore(), "hr", 1, promoted=True)
    register_fake_adapter(reg, NoStore(), "it", 4, promoted=True)
    r = CliRunner().invoke(cli.app, ["config", "--check"])
    assert r.exit_code == 1, r.output
    assert f"ok engine: {stub.url}/models serves base-m; adapters: hr-v1" in r.output
    assert (
        "error adapter: promoted adapter it-v4 is not served by the engine; vLLM: start it with --enable-lora "
        "--lora-modules it-v4="
        in r.output
        and "hr-v1 is not served" not in r.output
    )
