"""`lorag ask --adapter NAME` against a real llama.cpp server on the CPU, end to end.

The built-in SmolLM2-135M's GGUF (from the model cache) is served with a GGUF LoRA that `lorag adapters export
--format gguf` wrote from a small adapter registered in the project (random LoRA weights: tests/helpers/loras.py).
A recording proxy between lorag and the server keeps each request, so the test sees the numbered passages and
the adapter in what reached the engine, and the answer with its citations in what reached the user.

Two servers, each skipped when it is not here:
- `llama-server` (llama.cpp's own; $LORAG_LLAMA_SERVER or on PATH), started with the command line
  `lorag adapters serve-config --engine llamacpp` prints: adapters chosen per request by the `lora` field;
- `python -m llama_cpp.server` (the `llama-cpp` extra, llama-cpp-python), with a config file serving the base
  and the adapter under their own names: the adapter chosen by the request's `model`.

Marked slow; skipped when the built-in models are not in the cache (LORAG_TEST_MODEL_CACHE or ~/.cache/lorag;
`lorag models pull`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assistant.errors import LoragError
from tests.conftest import SAMPLES
from tests.helpers.engine_stub import free_port
from tests.helpers.recording_proxy import RecordingProxy

pytestmark = pytest.mark.slow

GEN = "smollm2-135m-instruct"
Q = "How many days of paid annual leave does a full-time employee with under five years of service get?"
ADAPTER = "handbook-v1"
LORA_B_STD = 0.15  # the random adapter's B weights: small enough to leave answers, large enough to change them
runner = CliRunner()


def model_cache_dir() -> Path:
    return Path(os.environ.get("LORAG_TEST_MODEL_CACHE", "~/.cache/lorag")).expanduser()


def llama_server_binary() -> str | None:
    return os.environ.get("LORAG_LLAMA_SERVER") or shutil.which("llama-server")


def lorag(*args: str):
    """One `lorag` command in this process (the real CLI and wiring), its components closed after it."""
    from ui import cli

    try:
        return runner.invoke(cli.app, list(args))
    finally:
        if cli.state._components is not None:
            cli.state._components.close()
            cli.state._components = None


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project on the built-in models: the handbook sample ingested, adapter handbook-v1 registered and
    exported by `lorag adapters export --format gguf`; the environment points lorag at it."""
    from assistant.models.cache import ModelCache
    from assistant.registry import Registry
    from tests.helpers.loras import random_lora, register_lora

    cache = ModelCache(model_cache_dir())
    if not (cache.is_pulled(GEN) and cache.is_pulled("all-minilm-l6-v2")):
        pytest.skip(f"the built-in models are not in {cache.root} (lorag models pull)")
    try:
        base_gguf = cache.gguf_file(GEN)
    except LoragError as e:
        pytest.skip(f"no GGUF of {GEN}: {e}")
    root = tmp_path_factory.mktemp("llamacpp")
    env = {
        f"LORAG_{k}": str(v)
        for k, v in {
            "PATHS__DATA_DIR": root / "data",
            "PATHS__MODEL_CACHE": cache.root,
            "MODELS__MAX_NEW_TOKENS": 48,
        }.items()
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for k, v in env.items():
            mp.setenv(k, v)
        r = lorag("ingest", str(SAMPLES / "corpus" / "handbook"), "--domain", "handbook")
        assert r.exit_code == 0, r.output
        # small random weights: the answers change, and stay answers (r 8 on the attention projections)
        folder = random_lora(
            Path(cache.resolve(GEN)),
            root / "stage",
            seed=3,
            r=8,
            alpha=16,
            b_std=LORA_B_STD,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        )
        register_lora(Registry(root / "data" / "adapters"), folder, cache.resolve(GEN), "handbook", 1, base_model=GEN)
        r = lorag("adapters", "export", ADAPTER, "--format", "gguf", "--out", str(root / "gguf"), "--json")
        assert r.exit_code == 0, r.output
        record = json.loads(r.stdout)
        assert record["check"]["ok"], record["check"]
        yield {
            "root": root,
            "base_gguf": base_gguf,
            "lora": Path(record["file"]),
            "record": record,
            "mp": mp,
            "env": env,
        }


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the server did not answer {url} within {timeout:g} s:\n{log.read_text()[-3000:]}")


def start_llama_server(project, port: int) -> tuple[subprocess.Popen, dict[str, str]]:
    """llama-server with the command line `lorag adapters serve-config --engine llamacpp` prints."""
    binary = llama_server_binary()
    r = lorag("adapters", "serve-config", "--engine", "llamacpp", "--adapter", ADAPTER, "--port", str(port), "--json")
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    argv = shlex.split(cfg["commands"][0])
    assert argv[0] == "llama-server" and argv[argv.index("--lora") + 1] == str(project["lora"])
    argv = [binary, *argv[1:], "--host", "127.0.0.1", "--threads", "2", "--ctx-size", "8192"]
    log = project["root"] / "llama-server.log"
    proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_ready(proc, f"http://127.0.0.1:{port}/health", log)
    return proc, {k: str(v) for k, v in cfg["settings"].items() if k != "base_url"}


def start_llama_cpp_python(project, port: int) -> tuple[subprocess.Popen, dict[str, str]]:
    """llama-cpp-python's server: the base and the adapter (the base GGUF with --lora) under their own names."""
    common = {"model": str(project["base_gguf"]), "n_ctx": 4096, "n_threads": 2, "verbose": False}
    config = {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {**common, "model_alias": GEN},
            {**common, "model_alias": ADAPTER, "lora_path": str(project["lora"])},
        ],
    }
    path = project["root"] / "llama_cpp_server.json"
    path.write_text(json.dumps(config))
    log = project["root"] / "llama_cpp_server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--config_file", str(path)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(proc, f"http://127.0.0.1:{port}/v1/models", log)
    return proc, {"model": GEN, "adapter_api": "model", "repetition_penalty_field": "repeat_penalty"}


@pytest.fixture(scope="module", params=["llama-server", "llama_cpp.server"])
def server_kind(request) -> str:
    """The server to start; skipped (before the project is built) when it is not here."""
    if request.param == "llama-server" and llama_server_binary() is None:
        pytest.skip("llama-server is not here ($LORAG_LLAMA_SERVER or PATH)")
    if request.param == "llama_cpp.server" and (
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("sse_starlette") is None
    ):
        pytest.skip("llama-cpp-python[server] is not installed (the llama-cpp extra)")
    return request.param


@pytest.fixture(scope="module")
def engine(server_kind, project):
    port = free_port()
    start = start_llama_server if server_kind == "llama-server" else start_llama_cpp_python
    proc, settings = start(project, port)
    proxy = RecordingProxy(f"http://127.0.0.1:{port}").start()
    mp = project["mp"]
    mp.setenv("LORAG_MODELS__ENDPOINT__BASE_URL", proxy.url + "/v1")
    for k, v in settings.items():
        mp.setenv(f"LORAG_MODELS__ENDPOINT__{k.upper()}", v)
    try:
        env = {
            **project["env"],
            "LORAG_MODELS__ENDPOINT__BASE_URL": proxy.url + "/v1",
            **{f"LORAG_MODELS__ENDPOINT__{k.upper()}": v for k, v in settings.items()},
        }
        yield {"kind": server_kind, "proxy": proxy, "env": env, **settings}
    finally:
        for k in ("BASE_URL", *(k.upper() for k in settings)):
            mp.delenv(f"LORAG_MODELS__ENDPOINT__{k}", raising=False)
        proxy.close()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_lorag_ask_with_an_adapter_answers_from_llama_cpp(engine, project, monkeypatch):
    for k, v in engine["env"].items():  # conftest clears LORAG_* before each test
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(project["root"])
    lc = project["record"]["check_llama_cpp"]
    assert lc["ok"] and "skipped" not in lc  # the export was checked in llama.cpp itself
    proxy = engine["proxy"]
    r = lorag("ask", Q, "--domain", "handbook", "--adapter", ADAPTER)
    assert r.exit_code == 0, r.output
    body = proxy.bodies("/v1/chat/completions")[-1]
    prompt = body["messages"][-1]["content"]
    assert body["stream"] is True and "[1] (leave-policy.md" in prompt and "[2] (" in prompt  # numbered passages
    if engine["kind"] == "llama-server":  # the base model, with the adapter turned on by the `lora` field
        assert body["model"] == engine["model"] and body["lora"] == [{"id": 0, "scale": 1.0}]
    else:
        assert body["model"] == ADAPTER and "lora" not in body
    assert f"(adapter {ADAPTER}:" in r.output and "Sources:\n  [1] leave-policy.md" in r.output, r.output

    r = lorag("ask", Q, "--domain", "handbook", "--adapter", ADAPTER, "--json")
    assert r.exit_code == 0, r.output
    with_adapter = json.loads(r.stdout)
    assert with_adapter["adapter"] == ADAPTER and with_adapter["answer"].strip()
    assert with_adapter["tokens"] > 0 and with_adapter["finish_reason"] in ("stop", "length")
    assert with_adapter["citations"] and with_adapter["citations"][0]["source"] == "leave-policy.md"

    r = lorag("ask", Q, "--domain", "handbook", "--adapter", "base", "--json")
    assert r.exit_code == 0, r.output
    base = json.loads(r.stdout)
    body = proxy.bodies("/v1/chat/completions")[-1]
    assert body["model"] == engine["model"] and body["messages"] == proxy.bodies("/v1/chat/completions")[-2]["messages"]
    if engine["kind"] == "llama-server":
        assert body["lora"] == [{"id": 0, "scale": 0.0}]  # the adapter off for the base
    assert base["answer"] != with_adapter["answer"]  # the adapter answered, not the base under its name
