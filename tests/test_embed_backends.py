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

TEXTS = ["Staff get 27 days of annual leave.", "Visitors wear a red badge", "reset the password from account settings",
         "a hotel up to 140 euros per night " * 5, "parking permit"]  # fmt: skip


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
    (key, entry), = entries.items()
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


def test_choose_follows_the_index_then_the_gpu_then_the_measured_speed():
    never = lambda: pytest.fail("measured without need")  # noqa: E731
    have = ["torch", "onnx", "openvino"]
    assert backends.choose("openvino", cuda=True, recorded=["torch:cpu:float32"], have=have, measured=never) == "openvino"
    assert backends.choose("auto", cuda=True, recorded=["onnx:cpu:int8", "onnx:cpu:int8"], have=have, measured=never) == "onnx"
    assert backends.choose("auto", cuda=True, recorded=[], have=have, measured=never) == "torch"
    assert backends.choose("auto", cuda=False, recorded=[], have=["torch"], measured=never) == "torch"
    speeds = lambda: {"torch": 10.0, "onnx": 31.0, "openvino": 25.0}  # noqa: E731
    assert backends.choose("auto", cuda=False, recorded=[], have=have, measured=speeds) == "onnx"
    # domains of two backends: no single one to follow, so the measured speed decides
    assert backends.choose("auto", cuda=False, recorded=["torch:legacy", "onnx:cpu:int8"], have=have, measured=speeds) == "onnx"
    # the recorded backend is not installed here: the measured speed decides among those that are
    assert backends.choose("auto", cuda=False, recorded=["openvino:cpu:int8"], have=["torch", "onnx"], measured=speeds) == "onnx"


def _settings(tmp_path, model, backend="auto"):
    return Settings(paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
                    models={"embedder": str(model), "embedder_backend": backend, "device": "cpu"})  # fmt: skip


def test_auto_measures_once_per_cpu_and_remembers_it(tmp_path, tiny_embedder, monkeypatch):
    monkeypatch.setattr(backends, "available", lambda: ["torch", "onnx"])
    calls = []

    def fake_measure(build, names, n=48):
        calls.append(list(names))
        return {"torch": 5.0, "onnx": 20.0}

    monkeypatch.setattr(backends, "measure", fake_measure)
    s = _settings(tmp_path, tiny_embedder)
    cache = ModelCache(s.paths.model_cache)
    pytest.importorskip("onnxruntime")
    first = embedder_for(s, cache)
    second = embedder_for(s, cache)
    assert first.backend == second.backend == "onnx:cpu:int8"
    assert calls == [["torch", "onnx"]]  # measured once; the second load read the memo
    memo = json.loads((cache.root / backends.SPEED_FILE).read_text())
    (key, entry), = memo.items()
    assert key == f"{tiny_embedder}|{backends.cpu_id()}" and entry["best"] == "onnx"
    # an index built by torch keeps auto on torch, without measuring
    assert embedder_for(s, cache, recorded=["torch:cpu:float32"]).backend == "torch:cpu:float32"


def test_measure_times_each_backend_on_the_same_texts():
    seen = {}

    class Fake:
        def __init__(self, name):
            self.name = name

        def embed_documents(self, texts):
            seen.setdefault(self.name, []).append(len(texts))
            return np.zeros((len(texts), 4))

    out = backends.measure(Fake, ["torch", "onnx"], n=12)
    assert set(out) == {"torch", "onnx"} and all(v > 0 for v in out.values())
    assert seen == {"torch": [4, 12], "onnx": [4, 12]}  # a warm-up batch, then the timed one


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
