"""The app's APIs on a live server: OpenAI-compatible /v1/chat/completions (openai client and raw
HTTP, streaming and not, citations), the Gradio API through gradio_client, auth, 20 concurrent
users under the generation limit, chat answering while an upload is being ingested."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.test_ui_core import CORPUS, LiveApp

Q = "How do I clean the Aurora 3 optical window?"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    app = LiveApp(tmp_path_factory.mktemp("ui-api"), preload=("manual",), delay=0.005)
    yield app
    app.close()


def test_openai_client_non_streaming_carries_citations(live):
    from openai import OpenAI

    client = OpenAI(base_url=live.url + "/v1", api_key="unused")
    r = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": Q}], extra_body={"domain": "manual"}
    )
    assert r.choices[0].message.content.endswith("[1].") and r.choices[0].finish_reason == "stop"
    extra = r.model_extra
    assert extra["citations"][0]["n"] == 1 and extra["citations"][0]["source"].endswith(
        (".md", ".csv", ".txt", ".html", ".json", ".pdf", ".docx")
    )
    assert extra["lorag"]["adapter"] == "base" and extra["lorag"]["relevant"] and extra["lorag"]["passages"][0]["text"]
    assert [m.id for m in client.models.list().data][:2] == ["auto", "base"]


def test_openai_client_streaming_and_adapter_choice(live):
    from openai import OpenAI

    client = OpenAI(base_url=live.url + "/v1", api_key="unused")
    chunks = list(
        client.chat.completions.create(model="handbook-v2", messages=[{"role": "user", "content": Q}], stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 5 and text.startswith("(handbook-v2)")
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.model_extra["citations"][0]["n"] == 1
    assert last.model_extra["lorag"]["route"]["reason"] == "explicit choice: handbook-v2"


def test_max_tokens_cuts_the_answer_and_usage_counts_both_sides(live):
    from openai import OpenAI

    client = OpenAI(base_url=live.url + "/v1", api_key="unused")
    msgs = [{"role": "user", "content": Q}]
    r = client.chat.completions.create(model="base", messages=msgs, max_tokens=3, extra_body={"domain": "manual"})
    assert len(r.choices[0].message.content.split()) == 3 and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3 and r.usage.prompt_tokens > 20
    assert r.usage.total_tokens == r.usage.prompt_tokens + 3
    full = client.chat.completions.create(model="base", messages=msgs, extra_body={"domain": "manual"})
    assert full.choices[0].finish_reason == "stop" and full.usage.completion_tokens > 3
    chunks = list(
        client.chat.completions.create(
            model="base", messages=msgs, max_completion_tokens=2, stream=True, extra_body={"domain": "manual"}
        )
    )
    assert len("".join(c.choices[0].delta.content or "" for c in chunks).split()) == 2
    assert chunks[-1].choices[0].finish_reason == "length"
    for bad in (0, -1, "10", 2.5, True):
        e = httpx.post(
            live.url + "/v1/chat/completions", json={"model": "base", "messages": msgs, "max_tokens": bad}, timeout=30
        )
        assert e.status_code == 400 and e.json()["error"]["code"] == "invalid_max_tokens", bad
        assert "max_tokens must be a positive integer" in e.json()["error"]["message"]


def test_raw_http_history_errors_and_sse_format(live):
    url = live.url + "/v1/chat/completions"
    msgs = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": Q},
        {"role": "assistant", "content": "Wipe it with a lint-free cloth."},
        {"role": "user", "content": "And how often?"},
    ]
    r = httpx.post(url, json={"model": "auto", "messages": msgs}, timeout=30)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].startswith("Following up:")
    sent, _ = live.generator.calls[-1]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"] and sent[2][
        "content"
    ] == "Wipe it with a lint-free cloth."
    r = httpx.post(url, json={"model": "nope-v9", "messages": msgs}, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert r.json()["error"]["message"].endswith("use auto, base or one of: handbook-v1, handbook-v2")
    r = httpx.post(url, json={"model": "auto", "messages": [{"role": "assistant", "content": "hi"}]}, timeout=30)
    assert r.status_code == 400 and "user message" in r.json()["error"]["message"]
    r = httpx.post(
        url, json={"model": "auto", "messages": [{"role": "user", "content": Q}], "domain": "nosuch"}, timeout=30
    )
    assert r.status_code == 400 and "unknown domain" in r.json()["error"]["message"]
    with httpx.stream(
        "POST", url, json={"model": "auto", "stream": True, "messages": [{"role": "user", "content": Q}]}, timeout=30
    ) as s:
        lines = [ln for ln in s.iter_lines() if ln]
    assert s.headers["content-type"].startswith("text/event-stream") and lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2][len("data: ") :])
    assert final["object"] == "chat.completion.chunk" and final["citations"]


def test_gradio_client_scripting(live, tmp_path):
    from gradio_client import Client, handle_file

    c = Client(live.url, verbose=False)
    assert "handbook-v1" in c.predict(api_name="/adapters")["chat"]
    out = c.predict(Q, "manual", "auto", api_name="/ask")
    assert out["citations"] and out["relevant"] and out["route"]["adapter"] == "base"
    cmp = c.predict(Q, "manual", "base", "handbook-v1", api_name="/compare")
    assert (
        cmp["done"]
        and cmp["left"]["answer"] != cmp["right"]["answer"]
        and cmp["right"]["answer"].startswith("(handbook-v1)")
    )
    vote = c.predict(cmp, "left", api_name="/vote")
    assert vote["vote"] == "left"
    tie = c.predict({**cmp, "reference": "Wipe it with a dry lint-free cloth."}, "tie", api_name="/vote")
    assert (
        tie["reference"] == "Wipe it with a dry lint-free cloth."
    )  # a tie becomes a test case with its edited reference
    assert "comparing an arm with itself" in c.predict(Q, "manual", "base", "base", api_name="/compare")["error"]
    exported = c.predict("manual", api_name="/export_votes")
    assert (
        exported["cases"] == 1
        and exported["tie_skipped"] == 0
        and exported["rows"][0]["question"] == Q
        and exported["saved_to"] == "votes/manual-testset.jsonl"
    )
    f = tmp_path / "kiosk.md"
    f.write_text("# Kiosk\n\nThe lobby kiosk prints visitor badges with a red lanyard.\n")
    started = c.predict(domain="visitors", files=[handle_file(str(f))], api_name="/upload")  # readable names
    assert started["title"] == "upload of kiosk.md into visitors"
    deadline = time.time() + 20
    while time.time() < deadline and c.predict(started["job"], api_name="/job")["status"] == "running":
        time.sleep(0.2)
    job = c.predict(started["job"], api_name="/job")  # the job id polls to the per-file result
    assert job["status"] == "done" and job["result"]["results"][0]["status"] == "added"
    assert any(d["domain"] == "visitors" and d["display"] == "kiosk.md" for d in c.predict(api_name="/documents"))
    assert "⚠" not in str(c.predict(domain="visitors", files=[], api_name="/upload"))  # an error is data, not markup
    assert c.predict(domain="visitors", files=[], api_name="/upload") == {
        "error": "choose files (or a zip of a folder) to upload first"
    }
    params = {
        p["parameter_name"]
        for e in ("/evaluate", "/synth", "/train", "/promote")
        for p in c.view_api(print_info=False, return_format="dict")["named_endpoints"][e]["parameters"]
    }
    assert {
        "domain",
        "arms",
        "testset",
        "limit",
        "qa_file",
        "writers",
        "max_chunks",
        "max_steps",
        "resume",
        "adapter",
        "force",
    } <= params


def test_twenty_simultaneous_users_all_get_answers(live):
    from gradio_client import Client

    live.generator.peak = 0

    def api_user(i: int) -> str:
        r = httpx.post(
            live.url + "/v1/chat/completions",
            timeout=120,
            json={"model": "auto", "messages": [{"role": "user", "content": f"{Q} ({i})"}], "domain": "manual"},
        )
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    client = Client(live.url, verbose=False)
    with ThreadPoolExecutor(40) as pool:
        api = [pool.submit(api_user, i) for i in range(20)]
        ui = [client.submit(f"{Q} [{i}]", "manual", "base", api_name="/ask") for i in range(20)]
        answers = [f.result(120) for f in api] + [j.result(120)["answer"] for j in ui]
    assert len(answers) == 40 and all(a.endswith("[1].") for a in answers)
    assert live.generator.peak <= live.settings.ui.generation_concurrency  # the rest waited in the queue


def test_chat_answers_while_an_upload_is_ingesting(live):
    from ui.tab_docs import start_ingest

    dense = live.comps.dense
    gate = threading.Event()
    original = dense.embed_documents

    def slow_embed(texts):
        gate.wait(20)  # the ingest is stuck embedding until the question has been answered
        return original(texts)

    dense.embed_documents = slow_embed
    try:
        job = start_ingest(live.core, "itsupport", [(p.name, p) for p in sorted((CORPUS / "itsupport").glob("*.md"))])
        time.sleep(0.3)
        assert live.core.jobs.get(job)["status"] == "running"
        r = httpx.post(
            live.url + "/v1/chat/completions",
            timeout=30,
            json={"model": "base", "messages": [{"role": "user", "content": Q}], "domain": "manual"},
        )
        assert r.status_code == 200 and r.json()["citations"]
        assert live.core.jobs.get(job)["status"] == "running"
    finally:
        gate.set()
        dense.embed_documents = original
    assert live.core.jobs.wait(job, 30)["status"] == "done"


def test_auth_on_api_and_gradio(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    app = LiveApp(tmp_path, auth=("ann", "s3cret"), preload=("manual",), delay=0.0)
    try:
        url = app.url + "/v1/chat/completions"
        body = {"model": "base", "messages": [{"role": "user", "content": Q}]}
        assert httpx.post(url, json=body).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(url, json=body, auth=("ann", "nope")).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.post(url, json=body, auth=("ann", "s3cret")).status_code == 200
        assert httpx.get(app.url + "/v1/models").status_code == 401
        with pytest.raises(AuthenticationError):
            Client(app.url, verbose=False)
        c = Client(app.url, auth=("ann", "s3cret"), verbose=False)
        assert c.predict(Q, "manual", "base", api_name="/ask")["citations"]
    finally:
        app.close()


def test_report_files_cannot_escape(live):
    assert httpx.get(live.url + "/reports/..%2F..%2Fetc/passwd").status_code == 404
    assert httpx.get(live.url + "/reports/x/../../jobs").status_code == 404


def test_the_response_model_names_what_answered(live):
    from openai import OpenAI

    client = OpenAI(base_url=live.url + "/v1", api_key="unused")

    def ask(model, q, **kw):
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": q}], **kw)

    assert ask("auto", Q).model == "base"  # routed: no adapter serves the manual domain
    assert ask("handbook-v2", Q).model == "handbook-v2"
    none = ask("auto", "xylophone quantum zebra sonata?")
    assert none.model == "none"  # nothing relevant: no model ran
    assert none.model_extra["lorag"]["adapter"] is None and not none.model_extra["lorag"]["relevant"]  # as the CLI
    assert none.model_extra["lorag"]["similarity"] < 0.25 <= ask("auto", Q).model_extra["lorag"]["similarity"]
    chunks = list(ask("handbook-v2", Q, stream=True))
    assert {c.model for c in chunks} == {"handbook-v2"} and chunks[-1].usage.completion_tokens > 0


def test_unknown_model_message_names_the_choices():
    from ui.api import unknown_model

    assert unknown_model("x", ["auto", "base", "hr-v1"]) == "model 'x' does not exist; use auto, base or one of: hr-v1"
    assert (
        unknown_model("x", ["auto", "base"])
        == "model 'x' does not exist; use auto, base (no adapter is registered yet)"
    )
