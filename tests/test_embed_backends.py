"""Embedder backends: the int8 ONNX export (made once, in the manifest), onnxruntime / OpenVINO vectors close to
torch's, models.embedder_backend's choice, and the clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
    import assistant.models.onnx_export as ox

    monkeypatch.setattr(ox, "export_int8", lambda *a, **k: pytest.fail("exported twice"))
    again = load_embedder(str(tiny_embedder), cache, device="cpu", backend="onnx")
    assert np.allclose(again.embed_documents(TEXTS), got, atol=1e-6)


def test_openvino_runs_the_same_int8_file(tmp_path, tiny_embedder):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    cache = ModelCache(tmp_path / "cache")
    ort_vecs = load_embedder(str(tiny_embedder), cache, device="cpu", backend="onnx").embed_documents(TEXTS)
    ov = load_embedder(str(tiny_embedder), cache, device="cpu", backend="openvino")
    assert ov.backend == "openvino:cpu:int8"
    assert _cos(ov.embed_documents(TEXTS), ort_vecs).min() > 0.99


def test_choose_follows_the_setting_then_the_index_and_never_picks_int8_itself():
    have = ["torch", "onnx", "openvino"]
    assert backends.choose("openvino", recorded=["torch:cpu:float32"], have=have) == "openvino"
    assert backends.choose("auto", recorded=["onnx:cpu:int8", "onnx:cpu:int8"], have=have) == "onnx"
    assert backends.choose("auto", recorded=[], have=have) == "torch"
    # domains of two backends: no single one to follow
    assert backends.choose("auto", recorded=["torch:legacy", "onnx:cpu:int8"], have=have) == "torch"
    # the recorded backend is not installed here
    assert backends.choose("auto", recorded=["openvino:cpu:int8"], have=["torch", "onnx"]) == "torch"


def _settings(tmp_path, model, backend="auto"):
    return Settings(
        paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
        models={"embedder": str(model), "embedder_backend": backend, "device": "cpu"},
    )


def test_auto_follows_the_index_and_otherwise_keeps_torch(tmp_path, tiny_embedder, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(backends, "available", lambda: ["torch", "onnx"])
    s = _settings(tmp_path, tiny_embedder)
    cache = ModelCache(s.paths.model_cache)
    assert embedder_for(s, cache).backend == "torch:cpu:float32"
    assert embedder_for(s, cache, recorded=["onnx:cpu:int8"]).backend == "onnx:cpu:int8"


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
