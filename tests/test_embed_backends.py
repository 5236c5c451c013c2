"""Embedder backends: the float32 and int8 ONNX exports (made once, in the manifest), onnxruntime's float32 vectors
equal to torch's and its / OpenVINO's int8 vectors close to them, the index record's probe check across backends,
models.embedder_backend's choice, and the clear errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from assistant import index_record
from assistant.errors import LoragError
from assistant.models import backends
from assistant.models.cache import ModelCache
from assistant.models.loading import embedder_for, load_embedder
from assistant.settings import Settings
from tests.helpers.tiny_embedder import build_tiny_embedder

TEXTS = [
    "Staff get 27 days of annual leave.",
    "Visitors wear a red badge",
    "reset the password from account settings",
    "a hotel up to 140 euros per night " * 5,
    "parking permit",
]


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    return build_tiny_embedder(tmp_path_factory.mktemp("tiny-emb"))


@pytest.fixture(scope="module")
def int8_sensitive_embedder(tmp_path_factory):
    """Weights at a trained model's scale with outliers: int8 moves the vectors on any CPU (build_tiny_embedder)."""
    return build_tiny_embedder(tmp_path_factory.mktemp("tiny-emb-sharp"), init_std=0.2, int8_outliers=True)


def _cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_export_is_made_once_recorded_and_close_to_torch(tmp_path, tiny_embedder, monkeypatch):
    pytest.importorskip("onnxruntime")
    cache = ModelCache(tmp_path / "cache")
    ref = load_embedder(str(tiny_embedder), cache, device="cpu")
    emb = load_embedder(str(tiny_embedder), cache, device="cpu", backend="onnx")
    assert emb.backend == "onnx:cpu:int8" and ref.backend == "torch:cpu:float32" and emb.dim == ref.dim == 32
    got, want = emb.embed_documents(TEXTS), ref.embed_documents(TEXTS)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert _cos(got, want).min() > 0.98, _cos(got, want)
    assert emb.token_length("parking permit") == ref.token_length("parking permit")
    entries = {k: v for k, v in cache.manifest().items() if k.endswith("@onnx-int8")}
    ((key, entry),) = entries.items()
    assert entry["kind"] == "onnx-int8" and entry["source"] == str(tiny_embedder)
    assert entry["inputs"] == ["input_ids", "attention_mask", "token_type_ids"] and len(entry["sha256"]) == 64
    # quantized from the float32 export, which is kept beside it with its own entry
    fp32 = cache.manifest()[key.replace("@onnx-int8", "@onnx-fp32")]
    assert entry["from_sha256"] == fp32["sha256"] and Path(fp32["file"]).name == "model.onnx"
    import assistant.models.onnx_export as ox

    monkeypatch.setattr(ox, "export_fp32", lambda *a, **k: pytest.fail("exported twice"))
    monkeypatch.setattr(ox, "quantize_int8", lambda *a, **k: pytest.fail("quantized twice"))
    again = load_embedder(str(tiny_embedder), cache, device="cpu", backend="onnx")
    assert np.allclose(again.embed_documents(TEXTS), got, atol=1e-6)


def test_the_fp32_onnx_export_gives_torchs_vectors_and_is_kept_once(tmp_path, int8_sensitive_embedder, monkeypatch):
    pytest.importorskip("onnxruntime")
    cache, model = ModelCache(tmp_path / "cache"), str(int8_sensitive_embedder)  # int8 gives it cosines ~0.98
    ref = load_embedder(model, cache, device="cpu")
    emb = load_embedder(model, cache, device="cpu", backend="onnx-fp32")
    assert emb.backend == "onnx:cpu:float32" and emb.dim == ref.dim == 32
    got, want = emb.embed_documents(TEXTS), ref.embed_documents(TEXTS)
    assert _cos(got, want).min() > 0.9999, _cos(got, want)
    assert np.allclose(emb.embed_query(TEXTS[1]), ref.embed_query(TEXTS[1]), atol=1e-4)
    ((key, entry),) = ((k, v) for k, v in cache.manifest().items() if k.endswith("@onnx-fp32"))
    path = Path(entry["file"])
    assert entry["kind"] == "onnx-fp32" and path.name == "model.onnx" and path.parent.name == key.split("@")[0]
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not any(k.endswith("@onnx-int8") for k in cache.manifest())  # int8 is made only when asked for
    import assistant.models.onnx_export as ox

    monkeypatch.setattr(ox, "export_fp32", lambda *a, **k: pytest.fail("exported twice"))
    again = load_embedder(model, cache, device="cpu", backend="onnx-fp32")
    assert np.allclose(again.embed_documents(TEXTS), got, atol=1e-6)


def test_a_cache_with_only_the_int8_file_gets_the_fp32_file_on_first_need(tmp_path, tiny_embedder, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    cache = ModelCache(tmp_path / "cache")
    int8 = cache.onnx_int8(str(tiny_embedder))
    # as a cache made before the float32 file was kept: the int8 file and its entry alone
    (int8.parent / "model.onnx").unlink()
    manifest = cache.manifest()
    del manifest[next(k for k in manifest if k.endswith("@onnx-fp32"))]
    cache.manifest_path.write_text(json.dumps(manifest))
    import assistant.models.onnx_export as ox

    real = ox.export_fp32
    monkeypatch.setattr(ox, "quantize_int8", lambda *a, **k: pytest.fail("the int8 file was valid"))
    monkeypatch.setattr(ox, "export_fp32", lambda *a, **k: pytest.fail("int8 needs no new fp32 file"))
    assert cache.onnx_int8(str(tiny_embedder)) == int8
    monkeypatch.setattr(ox, "export_fp32", real)
    fp32 = cache.onnx_fp32(str(tiny_embedder))
    assert fp32 == int8.parent / "model.onnx" and fp32.is_file() and int8.is_file()
    assert sum(k.endswith("@onnx-fp32") for k in cache.manifest()) == 1


def test_the_probe_check_lets_torch_and_fp32_onnx_share_an_index_but_not_int8(tmp_path, int8_sensitive_embedder):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    cache, model = ModelCache(tmp_path / "cache"), str(int8_sensitive_embedder)
    torch_cpu = load_embedder(model, cache, device="cpu")
    fp32 = load_embedder(model, cache, device="cpu", backend="onnx-fp32")
    int8 = load_embedder(model, cache, device="cpu", backend="onnx")
    assert _cos(fp32.embed_documents(TEXTS), torch_cpu.embed_documents(TEXTS)).min() > 0.9999
    by_torch, by_fp32 = index_record.record_for(torch_cpu), index_record.record_for(fp32)
    assert by_fp32["backend"] == "onnx:cpu:float32" != by_torch["backend"]
    assert index_record.mismatch(by_torch, fp32) is None and index_record.mismatch(by_fp32, torch_cpu) is None
    assert index_record.mismatch(None, fp32) is None  # a domain from before records: torch's
    for rec in (by_torch, by_fp32):
        assert "whose vectors differ" in index_record.mismatch(rec, int8)
    assert "whose vectors differ" in index_record.mismatch(index_record.record_for(int8), fp32)


def test_openvino_runs_the_same_int8_file(tmp_path, tiny_embedder):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    cache = ModelCache(tmp_path / "cache")
    ort_vecs = load_embedder(str(tiny_embedder), cache, device="cpu", backend="onnx").embed_documents(TEXTS)
    ov = load_embedder(str(tiny_embedder), cache, device="cpu", backend="openvino")
    assert ov.backend == "openvino:cpu:int8"
    assert _cos(ov.embed_documents(TEXTS), ort_vecs).min() > 0.99


def test_choose_follows_the_setting_then_the_index_and_never_picks_int8_itself():
    have = ["torch", "onnx-fp32", "onnx", "openvino"]
    assert backends.choose("openvino", recorded=["torch:cpu:float32"], have=have) == "openvino"
    assert backends.choose("torch", recorded=[], have=have) == "torch"
    assert backends.choose("auto", recorded=["onnx:cpu:int8", "onnx:cpu:int8"], have=have) == "onnx"
    # float32 vectors (torch's, on a CPU or a GPU, or the fp32 export's), or no index yet: fp32 ONNX on a CPU
    for recorded in ([], ["torch:cpu:float32"], ["torch:legacy", "torch:cuda:float16", "onnx:cpu:float32"]):
        assert backends.choose("auto", recorded=recorded, have=have) == "onnx-fp32"
        assert backends.choose("auto", recorded=recorded, have=have, on_cpu=False) == "torch"  # a GPU: torch
        assert backends.choose("auto", recorded=recorded, have=["torch"]) == "torch"  # no onnxruntime
    # domains of two backends whose vectors differ: no single one to follow
    assert backends.choose("auto", recorded=["torch:legacy", "onnx:cpu:int8"], have=have) == "torch"
    # the recorded backend is not installed here
    assert backends.choose("auto", recorded=["openvino:cpu:int8"], have=["torch", "onnx"]) == "torch"
    assert backends.setting_of("onnx:cpu:float32") == "onnx-fp32" and backends.setting_of("onnx:cpu:int8") == "onnx"
    assert (
        backends.setting_of("openvino:cpu:bfloat16") == "openvino-bf16" == backends.setting_of("openvino:cpu:float32")
    )
    assert backends.setting_of("openvino:cpu:int8") == "openvino"


def test_auto_picks_openvino_bf16_on_a_bfloat16_cpu_for_torchs_vectors_only():
    have = ["torch", "onnx-fp32", "onnx", "openvino", "openvino-bf16"]
    for recorded in ([], ["torch:cpu:float32", "torch:cpu:bfloat16"], ["onnx:cpu:float32", "openvino:cpu:bfloat16"]):
        assert backends.choose("auto", recorded=recorded, have=have, bf16=True) == "openvino-bf16"
        assert backends.choose("auto", recorded=recorded, have=have, bf16=False) == "onnx-fp32"  # no bfloat16
        assert backends.choose("auto", recorded=recorded, have=have, bf16=True, on_cpu=False) == "torch"  # a GPU
        assert backends.choose("auto", recorded=recorded, have=have[:4], bf16=True) == "onnx-fp32"  # no OpenVINO
    # an int8 index keeps its backend; an index by openvino-bf16 is torch's vectors wherever OpenVINO is missing
    assert backends.choose("auto", recorded=["openvino:cpu:int8"], have=have, bf16=True) == "openvino"
    assert backends.choose("auto", recorded=["openvino:cpu:bfloat16"], have=["torch", "onnx-fp32"]) == "onnx-fp32"
    assert backends.torch_equivalent("openvino:cpu:bfloat16") and not backends.torch_equivalent("openvino:cpu:int8")


def _settings(tmp_path, model, backend="auto", cpu_bf16="off"):
    return Settings(
        paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
        models={"embedder": str(model), "embedder_backend": backend, "device": "cpu", "embedder_cpu_bf16": cpu_bf16},
    )


def test_native_bfloat16_is_read_from_the_cpus_flags():
    assert backends.cpu_bf16("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert backends.cpu_bf16("flags\t\t: fpu avx2 amx_bf16 amx_tile\n")
    assert not backends.cpu_bf16("flags : fpu sse avx2 fma avx512_vnni\nbugs : spectre\n")
    assert not backends.cpu_bf16("")


def test_documents_in_bfloat16_on_a_bfloat16_cpu_share_the_float32_index(tmp_path, tiny_embedder, monkeypatch):
    """embedder_cpu_bf16 auto, on a CPU with native bfloat16 and without OpenVINO (with it, auto picks
    openvino-bf16): auto's documents are embedded by torch with bfloat16 matrix products, at cosine > 0.999 to
    float32's, so an index recorded by either passes the other's probe check; off, another CPU, or the torch backend
    named keep float32; on forces it."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(backends, "cpu_bf16", lambda cpuinfo=None: True)
    real_installed = backends.installed_module
    monkeypatch.setattr(backends, "installed_module", lambda name: name != "openvino" and real_installed(name))
    cache = ModelCache(tmp_path / "cache")
    fp32 = load_embedder(str(tiny_embedder), cache, device="cpu")
    emb = embedder_for(_settings(tmp_path, tiny_embedder, cpu_bf16="auto"), cache)
    assert emb.backend == "torch:cpu:bfloat16"
    docs = emb.embed_documents(TEXTS)
    bf16 = emb.documents  # auto with lorag[fast]: queries by the float32 ONNX file, documents by torch in bfloat16
    assert bf16.backend == "torch:cpu:bfloat16" and bf16.autocast
    cos = _cos(docs, fp32.embed_documents(TEXTS))
    assert cos.min() > 0.999 and not np.allclose(docs, fp32.embed_documents(TEXTS), atol=1e-7), cos
    # the probe check between the bfloat16 model itself and float32, both ways
    assert index_record.mismatch(index_record.record_for(fp32), bf16) is None
    assert index_record.mismatch(index_record.record_for(bf16), fp32) is None
    # without onnxruntime, auto's torch embeds documents (and queries) in bfloat16
    real = backends.installed_module
    monkeypatch.setattr(backends, "installed_module", lambda name: name != "onnxruntime" and real(name))
    alone = embedder_for(_settings(tmp_path, tiny_embedder, cpu_bf16="auto"), cache)
    assert alone.backend == "torch:cpu:bfloat16" and alone.autocast
    monkeypatch.setattr(backends, "installed_module", real)
    assert embedder_for(_settings(tmp_path, tiny_embedder, cpu_bf16="off"), cache).backend == "torch:cpu:float32"
    assert embedder_for(_settings(tmp_path, tiny_embedder, "torch", "auto"), cache).backend == "torch:cpu:float32"
    assert embedder_for(_settings(tmp_path, tiny_embedder, "torch", "on"), cache).backend == "torch:cpu:bfloat16"
    monkeypatch.setattr(backends, "cpu_bf16", lambda cpuinfo=None: False)
    assert embedder_for(_settings(tmp_path, tiny_embedder, cpu_bf16="auto"), cache).backend == "torch:cpu:float32"


def test_auto_on_a_cpu_embeds_queries_with_fp32_onnx_and_loads_torch_only_for_documents(
    tmp_path, int8_sensitive_embedder, monkeypatch
):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import transformers

    s = _settings(tmp_path, int8_sensitive_embedder)
    cache = ModelCache(s.paths.model_cache)
    cache.onnx_int8(str(int8_sensitive_embedder))  # the exports exist (making them loads the model once)
    real = transformers.AutoModel.from_pretrained
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", lambda *a, **k: pytest.fail("torch model loaded"))
    for recorded in (None, ["torch:cpu:float32", "torch:legacy"], ["onnx:cpu:float32"]):
        emb = embedder_for(s, cache, recorded=recorded)
        assert emb.backend == "torch:cpu:float32" and emb.queries.backend == "onnx:cpu:float32"
    # a search (the record's check, the query) needs no torch model
    rec = index_record.record_for(emb)
    assert rec["backend"] == "torch:cpu:float32" and index_record.mismatch(rec, emb) is None
    q = emb.embed_query(TEXTS[0])
    assert emb.token_length("parking permit") > 0
    # documents: torch float32, loaded on first need, with the query path's vectors
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", real)
    docs = emb.embed_documents(TEXTS)
    assert emb.documents.backend == "torch:cpu:float32" and float(docs[0] @ q) > 0.9999
    assert embedder_for(s, cache, recorded=["onnx:cpu:int8"]).backend == "onnx:cpu:int8"
    # the setting named: the fp32 export does everything
    assert embedder_for(_settings(tmp_path, int8_sensitive_embedder, "onnx-fp32"), cache).backend == "onnx:cpu:float32"


@pytest.mark.parametrize("missing", ["onnxruntime", "onnx"])  # onnx: torch's exporter needs it
def test_auto_without_onnxruntime_keeps_torch(tmp_path, tiny_embedder, monkeypatch, missing):
    real = backends.installed_module
    monkeypatch.setattr(backends, "installed_module", lambda name: name != missing and real(name))
    assert backends.available() == ["torch"]
    s = _settings(tmp_path, tiny_embedder)
    cache = ModelCache(s.paths.model_cache)
    assert embedder_for(s, cache).backend == "torch:cpu:float32"
    assert embedder_for(s, cache, recorded=["onnx:cpu:int8"]).backend == "torch:cpu:float32"
    with pytest.raises(LoragError) as e:
        embedder_for(_settings(tmp_path, tiny_embedder, "onnx-fp32"), cache)
    assert f"{missing} is not installed" in str(e.value)


def test_a_missing_runtime_is_a_clear_error(tmp_path, tiny_embedder, monkeypatch):
    real = backends.installed_module
    monkeypatch.setattr(backends, "installed_module", lambda name: name != "openvino" and real(name))
    with pytest.raises(LoragError) as e:
        embedder_for(_settings(tmp_path, tiny_embedder, "openvino"), ModelCache(tmp_path / "cache"))
    assert "openvino is not installed" in str(e.value) and "lorag[fast]" in e.value.hint


def test_a_model_that_is_not_a_plain_layout_cannot_use_onnx(tmp_path, tiny_embedder):
    import shutil

    odd = tmp_path / "odd"
    shutil.copytree(tiny_embedder, odd)
    (odd / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "x.Custom"}]))
    with pytest.raises(LoragError) as e:
        load_embedder(str(odd), ModelCache(tmp_path / "cache"), device="cpu", backend="onnx")
    assert "plain sentence-transformers" in str(e.value) and "embedder_backend: torch" in e.value.hint


def test_the_setting_is_validated(tmp_path):
    from assistant.errors import ConfigError

    with pytest.raises((ConfigError, ValueError)):
        Settings(models={"embedder_backend": "tensorrt"})
    assert Settings(models={"embedder_backend": "onnx-fp32"}).models.embedder_backend == "onnx-fp32"
    assert Settings(models={"embedder_backend": "openvino-bf16"}).models.embedder_backend == "openvino-bf16"


def test_auto_ingests_with_torch_and_searches_with_fp32_onnx_one_index(
    tmp_path, int8_sensitive_embedder, corpus, monkeypatch
):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import transformers

    from ui.components import Components

    def settings(backend="auto"):
        return Settings(
            paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
            models={"embedder": str(int8_sensitive_embedder), "embedder_backend": backend, "device": "cpu"},
            ingest={"chunk_tokens": 60, "chunk_overlap": 10},
            retrieval={"min_relevance": -1.0},
        )

    ingest = Components(settings())
    ingest.ingestor().run([corpus], "hr")
    assert ingest.dense.documents.backend == "torch:cpu:float32"
    assert ingest.store.embedder_record("hr")["backend"] == "torch:cpu:float32"
    ingest.close()
    # a later process that only searches: the fp32 ONNX file embeds the question, torch's model is never loaded
    real = transformers.AutoModel.from_pretrained
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", lambda *a, **k: pytest.fail("torch model loaded"))
    ask = Components(settings())
    found = ask.retriever.retrieve("annual leave days", "hr")
    assert found.passages and ask.dense._documents is None
    ask.close()
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", real)
    for backend in ("torch", "onnx-fp32"):  # either float32 backend named outright uses the index as it is
        named = Components(settings(backend))
        assert named.retriever.retrieve("annual leave days", "hr").passages
        named.close()
    int8 = Components(settings("onnx"))
    with pytest.raises(LoragError, match="whose vectors differ"):
        int8.retriever.retrieve("annual leave days", "hr")
    int8.close()


def test_a_split_embedder_refuses_documents_of_another_backend():
    from assistant.embedding_split import SplitEmbedder
    from tests.fakes import HashingEmbedder

    other = HashingEmbedder(dim=64)
    split = SplitEmbedder(HashingEmbedder(dim=64), lambda: other, backend="torch:cpu:float32")
    assert split.embed_query("leave").shape == (64,) and split._documents is None
    with pytest.raises(LoragError, match="documents embed with hashing"):
        split.embed_documents(["leave"])


# -- OpenVINO in bfloat16 (openvino-bf16) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    """The shared model cache (LORAG_TEST_MODEL_CACHE or ~/.cache/lorag) with the real all-MiniLM-L6-v2 pulled."""
    import os

    root = Path(os.environ.get("LORAG_TEST_MODEL_CACHE", "~/.cache/lorag")).expanduser()
    if not (root / "models" / "all-minilm-l6-v2").is_dir():
        pytest.skip("all-minilm-l6-v2 is not in the shared model cache (lorag models pull)")
    return ModelCache(root)


def _real_texts() -> list[str]:
    """The sample corpus's paragraphs (Markdown and text files): real text, from a few words to a few hundred."""
    from tests.conftest import SAMPLES

    paras = []
    for f in sorted((SAMPLES / "corpus").rglob("*")):
        if f.suffix in (".md", ".txt"):
            paras += [p.strip() for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return paras


def test_openvino_bf16_gives_torch_float32s_vectors_on_real_text(minilm):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    torch32 = load_embedder("all-minilm-l6-v2", minilm, device="cpu")
    emb = load_embedder("all-minilm-l6-v2", minilm, device="cpu", backend="openvino-bf16")
    texts = _real_texts()
    assert len(texts) > 20
    got, want = emb.embed_documents(texts), torch32.embed_documents(texts)
    cos = _cos(got, want)
    assert cos.min() > 0.999, cos.min()
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    if backends.cpu_bf16():  # OpenVINO computed in bfloat16: close to float32, not equal to it
        assert emb.backend == "openvino:cpu:bfloat16"
        assert not np.allclose(got, want, atol=1e-5)
    queries = np.stack([emb.embed_query(t) for t in texts[:5]])
    assert _cos(queries, want[:5]).min() > 0.999


def test_openvino_bf16_documents_come_back_in_their_order(minilm):
    """Sorted longest first, mini-batches of DOC_BATCH in flight on several streams at once, pooled in callbacks:
    each row is still its own text's vector."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from assistant.embedding_onnx import DOC_BATCH

    emb = load_embedder("all-minilm-l6-v2", minilm, device="cpu", backend="openvino-bf16")
    paras = sorted(_real_texts(), key=len)
    # very different lengths, mixed: shortest, longest, second shortest, ...; several mini-batches
    texts = [t for pair in zip(paras[:12], paras[::-1][:12]) for t in pair] + ["Leave.", " ".join(paras[-4:])]
    assert len(texts) > 3 * DOC_BATCH and max(map(len, texts)) > 20 * min(map(len, texts))
    docs = emb.embed_documents(texts)
    alone = np.stack([emb.embed_query(t) for t in texts])  # one at a time, on the latency compile
    sim = docs @ alone.T
    assert (sim.argmax(1) == np.arange(len(texts))).all()
    assert np.diag(sim).min() > 0.999, np.diag(sim)
    again = emb.embed_documents(texts[::-1])[::-1]
    assert _cos(again, docs).min() > 0.999


def test_openvino_bf16_embeds_a_query_on_the_latency_compile(tmp_path, tiny_embedder):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    emb = load_embedder(str(tiny_embedder), ModelCache(tmp_path / "cache"), device="cpu", backend="openvino-bf16")
    ov = emb._ov
    assert ov.latency_model.get_property("PERFORMANCE_HINT") == "LATENCY"
    calls = []
    latency = emb._run
    emb._run = lambda feed: calls.append(len(feed["input_ids"])) or latency(feed)
    q = emb.embed_query(TEXTS[0])
    # a query: the latency compile, one text; the throughput compile is not made for it
    assert calls == [1] and ov.throughput_model is None
    docs = emb.embed_documents(TEXTS)
    assert calls == [1]  # documents: the throughput compile alone
    assert ov.throughput_model.get_property("PERFORMANCE_HINT") == "THROUGHPUT"
    assert ov.throughput_model.get_property("INFERENCE_PRECISION_HINT") == ov.latency_model.get_property(
        "INFERENCE_PRECISION_HINT"
    )
    assert float(q @ docs[0]) > 0.999


def test_openvino_bf16_documents_raise_a_failed_batchs_error_and_then_work_again(tmp_path, tiny_embedder, monkeypatch):
    """A batch's vectors are pooled in the async queue's callback, on OpenVINO's threads: an error there is raised
    to the caller once every batch is done, and the next call works."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from assistant import embedding_onnx

    emb = load_embedder(str(tiny_embedder), ModelCache(tmp_path / "cache"), device="cpu", backend="openvino-bf16")
    want = emb.embed_documents(TEXTS)
    with monkeypatch.context() as m:
        m.setattr(embedding_onnx, "pool", lambda *a: (_ for _ in ()).throw(ValueError("pooling failed")))
        with pytest.raises(ValueError, match="pooling failed"):
            emb.embed_documents(TEXTS)
    assert np.allclose(emb.embed_documents(TEXTS), want, atol=1e-6)


def test_an_openvino_bf16_embedder_is_freed_after_embedding_documents(tmp_path, tiny_embedder):
    """The async queue outlives a document call: the callback it keeps must hold neither the embedder (its two
    compiled models) nor the call's vectors. Nor may OpenVINO's thread that releases the callback be left to
    destroy the embedder, whose compiled models can't be torn down from one of their own threads (an abort)."""
    import gc
    import weakref

    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    cache = ModelCache(tmp_path / "cache")
    for _ in range(5):
        emb = load_embedder(str(tiny_embedder), cache, device="cpu", backend="openvino-bf16")
        emb.embed_documents(TEXTS * 4)
        gone = weakref.ref(emb)
        del emb
        gc.collect()
        assert gone() is None


def test_openvino_bf16_is_recorded_and_shares_torchs_index_but_not_int8s(tmp_path, int8_sensitive_embedder):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    cache, model = ModelCache(tmp_path / "cache"), str(int8_sensitive_embedder)
    torch32 = load_embedder(model, cache, device="cpu")
    emb = load_embedder(model, cache, device="cpu", backend="openvino-bf16")
    int8 = load_embedder(model, cache, device="cpu", backend="onnx")
    rec = index_record.record_for(emb)
    assert rec["backend"] == emb.backend == ("openvino:cpu:bfloat16" if backends.cpu_bf16() else "openvino:cpu:float32")
    by_torch = index_record.record_for(torch32)
    assert index_record.mismatch(by_torch, emb) is None and index_record.mismatch(rec, torch32) is None
    assert index_record.mismatch(None, emb) is None  # a domain from before records: torch's
    assert "whose vectors differ" in index_record.mismatch(index_record.record_for(int8), emb)
    assert "whose vectors differ" in index_record.mismatch(rec, int8)
    assert backends.setting_of(rec["backend"]) == "openvino-bf16"


def test_auto_picks_openvino_bf16_from_the_cpus_flags(tmp_path, tiny_embedder, monkeypatch):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from assistant.models.loading import embedder_backend

    real = backends.cpu_bf16
    flags = {"now": "processor : 0\nflags : fpu avx2 avx512f avx512_vnni avx512_bf16\n"}
    monkeypatch.setattr(backends, "cpu_bf16", lambda cpuinfo=None: real(flags["now"]))
    s = _settings(tmp_path, tiny_embedder, cpu_bf16="auto")
    cache = ModelCache(s.paths.model_cache)
    assert embedder_backend(s, cache) == "openvino-bf16"
    emb = embedder_for(s, cache)
    assert emb.backend in ("openvino:cpu:bfloat16", "openvino:cpu:float32") and emb._ov is not None
    assert embedder_backend(s, cache, recorded=["torch:cpu:float32", "onnx:cpu:float32"]) == "openvino-bf16"
    assert embedder_backend(s, cache, recorded=["onnx:cpu:int8"]) == "onnx"  # an int8 index keeps its backend
    # bfloat16 turned off, or a CPU without it: auto's split (onnx-fp32 queries, torch documents) as before
    assert embedder_backend(_settings(tmp_path, tiny_embedder, cpu_bf16="off"), cache) == "onnx-fp32"
    flags["now"] = "processor : 0\nflags : fpu avx2 avx512f avx512_vnni\n"
    assert embedder_backend(s, cache) == "onnx-fp32"
    # without OpenVINO: the same fallback
    flags["now"] = "flags : fpu amx_bf16 amx_tile\n"
    assert embedder_backend(s, cache) == "openvino-bf16"
    installed = backends.installed_module
    monkeypatch.setattr(backends, "installed_module", lambda name: name != "openvino" and installed(name))
    assert embedder_backend(s, cache) == "onnx-fp32"


def test_openvino_bf16_without_openvino_is_a_clear_error(tmp_path, tiny_embedder, monkeypatch):
    import sys

    from assistant.embedding_onnx import OnnxEmbedder

    real = backends.installed_module
    monkeypatch.setattr(backends, "installed_module", lambda name: name != "openvino" and real(name))
    with pytest.raises(LoragError) as e:
        embedder_for(_settings(tmp_path, tiny_embedder, "openvino-bf16"), ModelCache(tmp_path / "cache"))
    assert "'openvino-bf16' but openvino is not installed" in str(e.value) and "lorag[fast]" in e.value.hint
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino fails
    with pytest.raises(LoragError, match="needs the 'openvino' package"):
        OnnxEmbedder(tmp_path / "m.onnx", None, "x", runtime="openvino", precision="bfloat16", dim=32)
    with pytest.raises(LoragError, match="openvino runtime only"):
        OnnxEmbedder(tmp_path / "m.onnx", None, "x", runtime="onnx", precision="bfloat16", dim=32)


def test_config_shows_what_auto_picks_here_without_loading_the_model(tmp_path, tiny_embedder, monkeypatch):
    """`lorag config` names the backend `embedder_backend: auto` resolves to on this machine (the CPU's flags, the
    packages installed, the domains' records), as a YAML comment (and under "resolved" in --json), without
    loading the embedder or opening the store (the app may hold it)."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    import json

    from typer.testing import CliRunner

    from assistant.errors import StoreLockedError
    from assistant.models import loading
    from ui import cli

    def refuse(*a, **k):
        raise AssertionError("config loaded a model or opened the store")

    monkeypatch.setattr(loading, "load_embedder", refuse)
    monkeypatch.setattr(loading, "embedder_for", refuse)

    def locked(settings):
        raise StoreLockedError("the embedded store is in use by another lorag process")

    monkeypatch.setattr("assistant.store.open_store", locked)
    real = backends.cpu_bf16
    flags = {"now": "flags : fpu avx2 avx512f avx512_bf16\n"}
    monkeypatch.setattr(backends, "cpu_bf16", lambda cpuinfo=None: real(flags["now"]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_PATHS__MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LORAG_MODELS__EMBEDDER", str(tiny_embedder))
    monkeypatch.setenv("LORAG_MODELS__DEVICE", "cpu")
    monkeypatch.setenv("LORAG_MODELS__EMBEDDER_CPU_BF16", "auto")

    def config(*args):
        r = CliRunner().invoke(cli.app, ["config", *args])
        assert r.exit_code == 0, r.output
        return r.stdout

    assert "\n  embedder_backend: auto  # openvino-bf16 on this machine\n" in config()
    flags["now"] = "flags : fpu avx2 avx512f\n"
    assert "  embedder_backend: auto  # onnx-fp32 for queries, torch for documents on this machine\n" in config()
    # a domain embedded by an int8 backend keeps it: its record is read from the store's folder
    from ui.cli_state import state

    shard = state.settings.store_path / "manuals"
    shard.mkdir(parents=True)
    (shard / "edge_config.json").write_text("{}")
    (shard / "lorag_embedder.json").write_text(json.dumps({"backend": "onnx:cpu:int8"}))
    assert "  embedder_backend: auto  # onnx on this machine\n" in config()
    assert json.loads(config("--json"))["resolved"] == {
        "embedder_backend": "onnx",
        "embedder_backend_note": "onnx on this machine",
    }
    monkeypatch.setenv("LORAG_MODELS__EMBEDDER_BACKEND", "torch")  # not auto: nothing to resolve
    assert "  embedder_backend: torch\n" in config() and "resolved" not in json.loads(config("--json"))
