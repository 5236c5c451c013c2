"""Answers from an OpenAI-compatible engine (models.endpoint), against a live stub engine
(tests/helpers/engine_stub.py): the request carries the serving prompt and the adapter's name,
tokens stream in order, usage and finish reasons reach the Answer, the CLI and the API; failures
(down, slow, 4xx/5xx, malformed) are clear errors with 502/504 in the API; retries; concurrency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from typer.testing import CliRunner

from assistant.answer import Answer
from assistant.embedding import Bm25SparseEncoder
from assistant.errors import EngineError, LoragError
from assistant.prompt import build_messages
from assistant.settings import Settings
from tests.fakes import HashingEmbedder
from tests.helpers.engine_stub import EngineStub, free_port
from ui import cli
from ui.components import Components

Q = "How many days of annual leave do full-time staff receive?"
MSGS = [{"role": "user", "content": "Say something."}]
runner = CliRunner()


@pytest.fixture(scope="module")
def stub():
    s = EngineStub().start()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fresh(stub, monkeypatch):
    stub.reset()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def endpoint(url: str, **kw):
    return {"base_url": url, "model": EngineStub.BASE, "retry_backoff_s": 0.01, "read_timeout_s": 1.5, **kw}


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


@pytest.fixture
def settings_for(tmp_path):
    def make(url: str, **kw) -> Settings:
        return Settings(
            paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
            ingest={"chunk_tokens": 60, "chunk_overlap": 10},
            retrieval={"min_relevance": 0.2},
            models={"endpoint": endpoint(url, **kw)},
        )

    return make


def generator(settings_for, url: str, **kw):
    from assistant.engines.openai_generator import OpenAIGenerator

    return OpenAIGenerator(settings_for(url, **kw).models)


@pytest.fixture
def no_local_model(monkeypatch):
    import assistant.models.loading as loading

    def refuse(*a, **k):
        raise AssertionError("a local generator was loaded although an engine is configured")

    monkeypatch.setattr(loading, "load_causal_lm", refuse)


@pytest.fixture
def comps(settings_for, stub, store, bm25, corpus, no_local_model):
    c = Components(settings_for(stub.url), store=store, dense=HashingEmbedder(2048), sparse=bm25)
    assert c.ingestor().run([corpus], "hr").ok
    return c


# -- the generator ----------------------------------------------------------------------------------
def test_answer_streams_from_the_engine_with_the_prompt_passages_and_adapter(comps, stub, monkeypatch):
    from assistant.engines.openai_generator import OpenAIGenerator

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")  # read when the request goes out, not when settings load
    stub.delay = 0.15
    pieces, arrivals, final = [], [], None
    for item in comps.ask_service.stream(Q, "hr", adapter="hr-v1"):
        if isinstance(item, Answer):
            final = item
        else:
            pieces.append(item)
            arrivals.append(time.perf_counter())
    assert isinstance(comps.generator, OpenAIGenerator)
    [req] = [r for r in stub.requests if r["path"] == "/v1/chat/completions"]
    body = req["body"]
    assert body["model"] == "hr-v1" and req["auth"] == "Bearer sk-from-env"
    assert body["messages"] == build_messages(Q, final.passages)  # assistant/prompt.py's messages, as served locally
    assert "[1] (leave.md#Leave policy > Annual leave)\n" in body["messages"][-1]["content"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["repetition_penalty"]) == (192, 0.0, 1.1)
    assert not {"frequency_penalty", "presence_penalty", "repeat_penalty"} & set(body)
    words = stub.reply.split(" ")
    assert pieces == [words[0], *(" " + w for w in words[1:])]  # every token, in order
    assert arrivals[-1] - arrivals[0] > 0.15 * (len(words) - 3)  # shown as they came, not all at the end
    assert final.answer == stub.reply and final.route["adapter"] == "hr-v1"
    assert [(c.n, c.source, c.how) for c in final.citations] == [(1, "leave.md", "marker")]
    assert (final.prompt_tokens, final.tokens, final.finish_reason) == (321, 17, "stop")  # the engine's usage
    assert final.timings_ms["first_token_ms"] > 0


def test_a_cut_answer_without_a_usage_chunk(comps, stub):
    stub.usage = False
    final = comps.ask_service.ask(Q, "hr", adapter="base", max_new_tokens=3)
    body = stub.chat_requests()[-1]
    assert body["model"] == "base-m" and body["max_tokens"] == 3
    assert final.answer == "Full-time staff receive" and final.finish_reason == "length"
    assert (final.tokens, final.prompt_tokens) == (3, 0)  # no usage: one token per streamed piece


def test_repetition_penalty_goes_in_the_engines_own_field_or_not_at_all(settings_for, stub):
    for field, sent in (("repeat_penalty", {"repeat_penalty": 1.1}), ("none", {})):
        gen = generator(settings_for, stub.url, repetition_penalty_field=field)
        gen.generate_batch([MSGS])
        body = stub.chat_requests()[-1]
        assert {k: body[k] for k in body if "penalty" in k} == sent


def test_batch_is_concurrent_within_max_concurrency_with_one_adapter_per_row(settings_for, stub):
    gen = generator(settings_for, stub.url, max_concurrency=3)
    stub.delay = 0.3
    stub.reply = lambda body: f"{body['model']} answers {body['messages'][-1]['content']}"
    names = [None, "hr-v1"] * 4
    t0 = time.perf_counter()
    out = gen.generate_batch(
        [[{"role": "user", "content": f"q{i}"}] for i in range(8)], adapters=names, max_new_tokens=50
    )
    elapsed = time.perf_counter() - t0
    assert out == [f"{n or 'base-m'} answers q{i}" for i, n in enumerate(names)]
    assert stub.peak == 3 and elapsed < 8 * 0.3  # three at a time, never more
    assert all(b["stream"] is False and b["max_tokens"] == 50 for b in stub.chat_requests())
    assert (gen.last_stats.prompt_tokens, gen.last_stats.new_tokens) == (8 * 321, 8 * 17)


def test_a_batch_says_when_each_reply_came(settings_for, stub):
    """on_done(i) as each row's reply comes (on the caller's thread), not when the whole batch is back."""
    gen = generator(settings_for, stub.url, max_concurrency=2)
    stub.delay = 0.3
    told: list[tuple[int, float, threading.Thread]] = []
    t0 = time.perf_counter()
    gen.generate_batch(
        [[{"role": "user", "content": f"q{i}"}] for i in range(4)],
        on_done=lambda i: told.append((i, time.perf_counter() - t0, threading.current_thread())),
    )
    elapsed = time.perf_counter() - t0
    assert sorted(i for i, _, _ in told) == [0, 1, 2, 3]
    assert all(th is threading.current_thread() for _, _, th in told)
    firsts = sorted(at for _, at, _ in told)[:2]  # two at a time: the first two back after one delay
    assert firsts[-1] < elapsed - 0.2, (told, elapsed)


def test_streams_from_many_threads_share_the_concurrency_bound(settings_for, stub):
    gen = generator(settings_for, stub.url, max_concurrency=2)
    stub.delay = 0.05
    outs: list[str] = []
    threads = [threading.Thread(target=lambda: outs.append("".join(gen.stream(MSGS)))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outs == [stub.reply] * 5 and stub.peak == 2


def test_retries_503_and_429_then_succeeds_but_not_a_400_or_a_stream(settings_for, stub):
    gen = generator(settings_for, stub.url, max_retries=2)
    stub.fail = [503, 503]
    assert gen.generate_batch([MSGS]) == [stub.reply] and len(stub.chat_requests()) == 3
    stub.reset()
    stub.fail, stub.retry_after = [429], "0"
    assert gen.generate_batch([MSGS]) == [stub.reply] and len(stub.chat_requests()) == 2
    stub.reset()
    stub.fail = [503, 503, 503]
    with pytest.raises(EngineError) as e:
        gen.generate_batch([MSGS])
    assert e.value.status == 502 and len(stub.chat_requests()) == 3
    assert f"engine {stub.url}/chat/completions: HTTP 503: engine says 503 (after 2 retries)" in str(e.value)
    stub.reset()
    stub.fail = [400]
    with pytest.raises(EngineError, match="HTTP 400: engine says 400"):
        gen.generate_batch([MSGS])
    assert len(stub.chat_requests()) == 1
    stub.reset()
    stub.fail = [503]  # a stream may already have shown tokens: never retried
    with pytest.raises(EngineError, match="HTTP 503"):
        list(gen.stream(MSGS))
    assert len(stub.chat_requests()) == 1


def test_a_slow_engine_is_a_504_never_a_hang(settings_for, stub):
    gen = generator(settings_for, stub.url, read_timeout_s=0.5, total_timeout_s=1.5)
    stub.behaviour = "hang"
    for call in (lambda: gen.generate_batch([MSGS]), lambda: list(gen.stream(MSGS))):
        t0 = time.perf_counter()
        with pytest.raises(EngineError) as e:
            call()
        assert time.perf_counter() - t0 < 3
        assert (e.value.status, e.value.code) == (504, "engine_timeout")
        assert f"{stub.url}/chat/completions: no reply within 0.5 s (models.endpoint.read_timeout_s)" in str(e.value)
    stub.behaviour = "stall"  # the first token, then nothing
    pieces = []
    with pytest.raises(EngineError) as e:
        for p in gen.stream(MSGS):
            pieces.append(p)
    assert pieces == ["Full-time"] and e.value.status == 504
    stub.behaviour = "trickle"  # keep-alives forever: the total deadline ends it
    t0 = time.perf_counter()
    with pytest.raises(EngineError, match=r"took longer than 1.5 s \(models.endpoint.total_timeout_s\)") as e:
        list(gen.stream(MSGS))
    assert e.value.status == 504 and time.perf_counter() - t0 < 4


@pytest.mark.parametrize(
    "behaviour, says",
    [
        ("malformed", "malformed reply: a stream chunk is not JSON"),
        ("cut", "the stream ended before the answer finished"),
        ("error_event", "error in the stream: CUDA out of memory"),
    ],
)
def test_a_broken_stream_is_a_clear_502(settings_for, stub, behaviour, says):
    gen = generator(settings_for, stub.url)
    stub.behaviour = behaviour
    with pytest.raises(EngineError) as e:
        list(gen.stream(MSGS))
    assert e.value.status == 502 and f"engine {stub.url}/chat/completions: {says}" in str(e.value)


def test_malformed_replies_and_an_engine_that_is_down(settings_for, stub):
    gen = generator(settings_for, stub.url)
    stub.behaviour = "not_json"
    with pytest.raises(EngineError, match="malformed reply: not JSON"):
        gen.generate_batch([MSGS])
    stub.behaviour = "malformed"
    with pytest.raises(EngineError, match=r"malformed reply: no choices\[0\].message"):
        gen.generate_batch([MSGS])
    url = dead_url()
    down = generator(settings_for, url, max_retries=1)
    with pytest.raises(EngineError) as e:
        down.generate_batch([MSGS])
    assert e.value.status == 502 and f"engine {url}/chat/completions: cannot connect" in str(e.value)
    assert "(after 1 retry)" in str(e.value) and "models.endpoint.base_url" in e.value.hint
    with pytest.raises(EngineError, match=f"engine {url}/models: cannot connect"):
        down.health()


def test_adapters_are_the_engines_models_for_this_base_cached_briefly(settings_for, stub):
    gen = generator(settings_for, stub.url)
    assert gen.adapters() == ["hr-v1"]  # other-lora belongs to another base
    stub.models.append({"id": "hr-v2", "object": "model", "parent": "base-m"})
    assert gen.adapters() == ["hr-v1"]  # reused for a few seconds
    assert gen.adapters(refresh=True) == ["hr-v1", "hr-v2"]
    assert len([r for r in stub.requests if r["path"] == "/v1/models"]) == 2
    h = gen.health()
    assert h.model_listed and h.adapters == ["hr-v1", "hr-v2"] and h.url == f"{stub.url}/models"
    stub.models = [{"id": "base-m"}, {"id": "hr-lora"}]  # Ollama/llama.cpp list no parent: every other model
    assert gen.adapters(refresh=True) == ["hr-lora"]


def test_attaching_an_adapter_checks_the_engine_serves_it(comps, stub, tmp_path):
    from tests.test_eval_support import make_adapter

    make_adapter(comps.registry, tmp_path, "hr", 1)
    card = make_adapter(comps.registry, tmp_path, "hr", 2)
    assert comps.attach(["hr-v1"]) == ["hr-v1"]
    with pytest.raises(LoragError, match="domain 'hr' has no promoted adapter for its name to pick"):
        comps.attach(["hr"])  # a domain's name is its promoted version: none yet (not taken as the engine's name)
    comps.registry.promote("hr-v2")
    with pytest.raises(LoragError) as e:
        comps.attach(["hr"])  # the domain's promoted version, hr-v2, which the engine does not serve
    msg = str(e.value)
    folder = str(comps.registry.folder(card).resolve())
    assert f"adapter 'hr-v2' is not served by the engine at {stub.url} (it serves: hr-v1)" in msg
    assert f"--enable-lora --lora-modules hr-v2={folder}" in msg and f"POST {stub.url}/load_lora_adapter" in msg
    stub.models.append({"id": "legal-lora", "parent": "base-m"})  # only the engine knows it: served, so usable
    assert comps.attach(["legal-lora"]) == ["legal-lora"]


def _teacher_json(body):
    q, a = (
        "How many days of annual leave do full-time staff receive?",
        "Full-time staff receive 27 days of annual leave each year.",
    )
    if "27 days" not in body["messages"][-1]["content"]:
        return "I cannot help with that."
    return json.dumps({"pairs": [{"question": q, "answer": a, "type": "what-is"}]})


def test_synthetic_qa_is_written_by_the_served_engine(comps, stub):
    """With models.endpoint set and no synth.teacher, the teacher is the served engine."""
    from finetune.config import SynthConfig
    from finetune.synth import synthesize

    stub.reply = _teacher_json
    chunks = comps.store.scroll_chunks("hr")
    pairs, report = synthesize(
        chunks, SynthConfig(writer="teacher", max_chunks=50, model_probe=0), teacher=comps.generator
    )
    bodies = stub.chat_requests()
    assert len(bodies) == len(chunks) and all(b["stream"] is False and b["model"] == "base-m" for b in bodies)
    assert any(
        "Passage:\n" in b["messages"][-1]["content"] and '"pairs"' in b["messages"][0]["content"] for b in bodies
    )
    assert [(p.question, p.source) for p in pairs] == [
        ("How many days of annual leave do full-time staff receive?", "leave.md")
    ]
    assert report.dropped["teacher: reply is neither JSON pairs nor Question:/Answer: lines"] == len(chunks) - 1


def test_synth_teacher_on_its_own_endpoint_end_to_end(tmp_path, stub, store, bm25, corpus, no_local_model):
    """`synth.teacher` + `synth.teacher_url`: the training set's questions come from that endpoint's model
    (no local model, the served generator untouched); an endpoint that is down stops the build with
    its URL, and the earlier training set stays whole."""
    from finetune.config import load_train_config
    from finetune.jobs import build_training_set

    settings = Settings(
        paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
        ingest={"chunk_tokens": 60, "chunk_overlap": 10},
        retrieval={"min_relevance": 0.2},
    )
    c = Components(settings, store=store, dense=HashingEmbedder(2048), sparse=bm25)
    assert c.ingestor().run([corpus], "hr").ok
    stub.reply = _teacher_json
    stub.models.append({"id": "teacher-m", "object": "model", "parent": None})
    cfg = load_train_config(
        domain="hr", overrides={"synth": {"teacher": "teacher-m", "teacher_url": stub.url, "model_probe": 0}}
    )
    served = []
    summary = build_training_set(
        cfg,
        settings=settings,
        store=store,
        retriever=c.retriever,
        served_generator=lambda: served.append(1),
        model_cache=c.model_cache,
        count_tokens=lambda m: 0,
    )
    assert not served and {b["model"] for b in stub.chat_requests()} == {"teacher-m"}
    s = summary["synthetic"]
    assert s["teacher"] == f"teacher-m@{stub.url}" and summary["report"]["writers"].get("teacher") == 1
    assert summary["synth_config"]["writer"] == "auto" and "teacher_api_key" not in summary["synth_config"]
    out = settings.datasets_dir / "hr"
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    down = load_train_config(domain="hr", overrides={"synth": {"teacher": "teacher-m", "teacher_url": dead_url()}})
    with pytest.raises(
        LoragError,
        match="(?s)the teacher .* failed on every request so far: .*cannot connect.*check synth.teacher_url; "
        "nothing was written",
    ):
        build_training_set(
            down,
            settings=settings,
            store=store,
            retriever=c.retriever,
            served_generator=lambda: None,
            model_cache=c.model_cache,
            count_tokens=lambda m: 0,
        )
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


# -- the CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def lorag(tmp_path, monkeypatch, bm25, stub, no_local_model):
    monkeypatch.chdir(tmp_path)
    for k, v in {
        "PATHS__DATA_DIR": tmp_path / "data",
        "PATHS__MODEL_CACHE": tmp_path / "cache",
        "RETRIEVAL__MIN_RELEVANCE": 0.2,
        "MODELS__ENDPOINT__BASE_URL": stub.url,
        "MODELS__ENDPOINT__MODEL": "base-m",
        "MODELS__ENDPOINT__RETRY_BACKOFF_S": 0.01,
    }.items():
        monkeypatch.setenv(f"LORAG_{k}", str(v))
    # the real wiring builds the generator from the settings; only the embedder is a fake
    monkeypatch.setattr(cli.state, "factory", lambda s: Components(s, dense=HashingEmbedder(2048), sparse=bm25))

    def run(*args):
        return runner.invoke(cli.app, list(args))

    yield run
    if cli.state._components is not None:
        cli.state._components.close()


def test_lorag_ask_answers_from_the_engine_with_citations(lorag, corpus, stub):
    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    r = lorag("ask", Q, "--domain", "hr")
    assert r.exit_code == 0, r.output
    assert stub.reply in r.output and "Sources:\n  [1] leave.md › Annual leave" in r.output
    body = stub.chat_requests()[-1]
    assert body["model"] == "base-m" and "[1] (leave.md#Leave policy > Annual leave)" in body["messages"][-1]["content"]
    r = lorag("ask", Q, "--domain", "hr", "--adapter", "hr-v1", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["adapter"] == "hr-v1" and stub.chat_requests()[-1]["model"] == "hr-v1"
    assert (out["tokens"], out["prompt_tokens"], out["finish_reason"]) == (17, 321, "stop")
    assert out["citations"][0]["source"] == "leave.md"


def test_cli_engine_errors_are_clean_messages_with_exit_code_1(lorag, corpus, stub, monkeypatch, capsys):
    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    capsys.readouterr()

    def main(*argv):
        monkeypatch.setattr("sys.argv", ["lorag", *argv])
        with pytest.raises(SystemExit) as e:
            cli.main()
        cli.state._components.close()  # a real `lorag` process would have exited, releasing the store
        return e.value.code, capsys.readouterr().err

    stub.fail = [500]
    code, err = main("ask", Q, "--domain", "hr")
    assert code == 1 and f"error: engine {stub.url}/chat/completions: HTTP 500: engine says 500" in err
    assert "Traceback" not in err
    url = dead_url()
    monkeypatch.setenv("LORAG_MODELS__ENDPOINT__BASE_URL", url)
    code, err = main("ask", Q, "--domain", "hr")
    assert code == 1 and f"error: engine {url}/chat/completions: cannot connect" in err and "Traceback" not in err


def test_config_check_probes_the_engine_and_the_judge(lorag, stub, monkeypatch):
    r = lorag("config", "--check")
    assert r.exit_code == 0, r.output
    assert f"ok engine: {stub.url}/models serves base-m; adapters: hr-v1" in r.output
    assert len([x for x in stub.requests if x["path"] == "/v1/models"]) == 1
    monkeypatch.setenv("LORAG_MODELS__ENDPOINT__MODEL", "typo-m")
    r = lorag("config", "--check")
    assert (
        r.exit_code == 1
        and "does not list models.endpoint.model 'typo-m' (it lists: base-m, hr-v1, other-lora)" in r.output
    )
    monkeypatch.setenv("LORAG_MODELS__ENDPOINT__MODEL", "base-m")
    url = dead_url()
    monkeypatch.setenv("LORAG_JUDGE__BASE_URL", url)
    monkeypatch.setenv("LORAG_JUDGE__MODEL", "judge-m")
    r = lorag("config", "--check")
    assert (
        r.exit_code == 1
        and "ok engine" in r.output
        and f"error judge: judge endpoint {url}/models: cannot connect" in r.output
    )
    monkeypatch.setenv("LORAG_MODELS__ENDPOINT__BASE_URL", url)
    r = lorag("config", "--check", "--json")
    assert r.exit_code == 1 and [x["ok"] for x in json.loads(r.output)] == [False]  # one endpoint: checked once


def test_eval_arms_go_to_the_engine_and_a_model_arm_stays_local(lorag, corpus, stub, tmp_path, monkeypatch):
    from eval.cache import EvalCache
    from eval.metrics import MetricSuite
    from eval.runner import run_ab
    from services.evaluation import arm_generators, generation_settings, plan_eval
    from tests.test_eval_support import ArmGenerator, make_adapter, write_testset
    from ui import cli_eval

    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    make_adapter(cli.state.components.registry, tmp_path)  # hr-v1: an adapter arm is a registry version
    local = ArmGenerator(lambda q, a: "the local model says hi")
    monkeypatch.setattr(cli_eval, "model_loader", lambda spec: local)
    comps = cli.state.components
    plan = plan_eval(comps, "hr", "base,hr-v1,model:tiny", write_testset(tmp_path / "t.jsonl", 2, unanswerable=False))
    assert [a.identity["model"] for a in plan.arms] == [f"endpoint:base-m@{stub.url}"] * 2 + [
        "tiny"
    ]  # the eval cache's key
    result = run_ab(
        plan.items,
        plan.arms,
        retriever=comps.retriever,
        domain="hr",
        generator_for=arm_generators(comps, plan.arms, cli_eval._Models(comps)),
        suite=MetricSuite(use_ragas=False),
        cache=EvalCache(None),
        top_k=4,
        generation=generation_settings(comps.settings),
    )
    bodies = stub.chat_requests()
    assert sorted(b["model"] for b in bodies) == ["base-m", "base-m", "hr-v1", "hr-v1"]
    assert all(b["stream"] is False and "Passages:\n[1] (" in b["messages"][-1]["content"] for b in bodies)
    assert local.n_generated == 2 and len(result.questions) == 2


def test_the_judge_uses_the_engine_client(settings_for, stub, monkeypatch):
    from eval.judge import check_judge, judge_endpoint, openai_judge

    s = settings_for(stub.url, api_key="sk-engine")
    assert judge_endpoint(s)[0] == stub.url and judge_endpoint(s)[1].get_secret_value() == "sk-engine"
    stub.fail = [503]  # retried like any non-streaming request
    judge = openai_judge(stub.url, "base-m", "sk-judge", max_tokens=64, limits=s.models.endpoint)
    check_judge(judge)
    req = [r for r in stub.requests if r["path"] == "/v1/chat/completions"]
    assert len(req) == 2 and req[-1]["auth"] == "Bearer sk-judge"
    assert (req[-1]["body"]["temperature"], req[-1]["body"]["max_tokens"]) == (0, 64)
    stub.behaviour = "hang"
    slow = openai_judge(stub.url, "base-m", limits=settings_for(stub.url, read_timeout_s=0.3).models.endpoint)
    with pytest.raises(EngineError, match=f"judge endpoint {stub.url}/chat/completions: no reply within 0.3 s"):
        check_judge(slow)


# -- the web app and its API --------------------------------------------------------------------------
class EngineApp:
    """The web app answering from the stub engine; ui.generation_concurrency is 1, so only the engine's
    max_concurrency (4) can let answers run side by side."""

    def __init__(self, root, stub):
        import uvicorn

        from assistant.store.edge import EdgeStore
        from ui.app import build_app

        self.settings = Settings(
            paths={"data_dir": root / "data", "model_cache": root / "cache"},
            retrieval={"min_relevance": 0.2},
            ingest={"chunk_tokens": 60, "chunk_overlap": 10},
            ui={"generation_concurrency": 1},
            models={"endpoint": endpoint(stub.url, max_concurrency=4, read_timeout_s=1.0)},
        )
        docs = root / "docs"
        docs.mkdir()
        (docs / "leave.md").write_text(
            "# Leave policy\n\n## Annual leave\nFull-time staff receive 27 days of annual leave each year.\n"
        )
        self.store = EdgeStore(self.settings.store_path)
        self.comps = Components(
            self.settings, store=self.store, dense=HashingEmbedder(2048), sparse=Bm25SparseEncoder()
        )
        assert self.comps.ingestor().run([docs], "hr").ok
        self.app, self.blocks, self.core = build_app(self.comps)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "the app did not start"
            time.sleep(0.05)

    def post(self, **body):
        body = {"messages": [{"role": "user", "content": Q}], "domain": "hr", **body}
        return httpx.post(self.url + "/v1/chat/completions", json=body, timeout=30)

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.store.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory, stub):
    a = EngineApp(tmp_path_factory.mktemp("engine-app"), stub)
    yield a
    a.close()


def test_api_answers_from_the_engine_with_its_usage_and_citations(app, stub):
    from openai import OpenAI

    r = app.post(model="hr-v1")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["choices"][0]["message"]["content"] == stub.reply and j["choices"][0]["finish_reason"] == "stop"
    assert j["usage"] == {"prompt_tokens": 321, "completion_tokens": 17, "total_tokens": 338}
    assert (
        j["citations"][0]["n"] == 1 and j["citations"][0]["source"] == "leave.md" and j["lorag"]["adapter"] == "hr-v1"
    )
    assert stub.chat_requests()[-1]["model"] == "hr-v1"
    client = OpenAI(base_url=app.url + "/v1", api_key="unused")
    chunks = list(
        client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": Q}],
            stream=True,
            max_tokens=3,
            extra_body={"domain": "hr"},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Full-time staff receive"
    assert chunks[-1].choices[0].finish_reason == "length" and chunks[-1].model_extra["citations"] is not None
    assert stub.chat_requests()[-1]["model"] == "base-m" and "hr-v1" in [m.id for m in client.models.list().data]


@pytest.mark.parametrize("stream", [False, True])
def test_api_engine_failures_are_502_and_504_with_openai_error_bodies(app, stub, stream):
    stub.fail = [500]
    r = app.post(model="base", stream=stream)
    err = r.json()["error"]
    assert r.status_code == 502 and (err["type"], err["code"]) == ("server_error", "engine_error")
    assert f"engine {stub.url}/chat/completions: HTTP 500: engine says 500" in err["message"]
    stub.behaviour = "hang"
    t0 = time.perf_counter()
    r = app.post(model="hr-v1", stream=stream)
    err = r.json()["error"]
    assert r.status_code == 504 and err["code"] == "engine_timeout" and "no reply within 1 s" in err["message"]
    assert time.perf_counter() - t0 < 5
    assert app.core.gate.busy == 0  # every slot came back


def test_api_stream_broken_mid_answer_ends_with_an_error_event(app, stub):
    stub.behaviour = "malformed"
    with httpx.stream(
        "POST",
        app.url + "/v1/chat/completions",
        timeout=30,
        json={"model": "base", "stream": True, "domain": "hr", "messages": [{"role": "user", "content": Q}]},
    ) as r:
        assert r.status_code == 200
        events = [line[len("data: ") :] for line in r.iter_lines() if line.startswith("data: ")]
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == "Full-time"
    err = json.loads(events[-2])["error"]
    assert events[-1] == "[DONE]" and (err["type"], err["code"]) == ("server_error", "engine_error")
    assert f"engine {stub.url}/chat/completions: malformed reply" in err["message"]


def test_api_requests_for_different_adapters_reach_the_engine_together(app, stub):
    stub.delay = 0.1
    stub.peak = stub.active  # an earlier test's hanging request may still be open
    with ThreadPoolExecutor(4) as pool:
        rs = list(pool.map(lambda m: app.post(model=m), ["base", "hr-v1", "base", "hr-v1"]))
    assert [r.status_code for r in rs] == [200] * 4
    assert app.core.gate.slots == 4 and stub.peak >= 4  # not ui.generation_concurrency (1): no global lock
    assert sorted(b["model"] for b in stub.chat_requests()) == ["base-m", "base-m", "hr-v1", "hr-v1"]
    # the chat and side-by-side events share the same limit: the engine's slots, not the in-process model's
    limits = {fn.concurrency_limit for fn in app.blocks.fns.values() if fn.concurrency_id == "generation"}
    assert limits == {4}


def test_chat_tab_shows_engine_errors_after_what_came(app, stub):
    from ui.tab_chat import chat_turn

    stub.fail = [503]
    *_, (history, turns, _) = chat_turn(app.core, Q, [], [], "hr", "hr-v1")
    assert history[-1]["content"].startswith(f"⚠ engine {stub.url}/chat/completions: HTTP 503") and turns == []
    stub.behaviour = "stall"
    *_, (history, _, _) = chat_turn(app.core, Q, [], [], "hr", "base")
    assert (
        history[-1]["content"].startswith("Full-time\n\n⚠ engine ") and "no reply within 1 s" in history[-1]["content"]
    )
