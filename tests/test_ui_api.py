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


def test_openai_client_retrieves_one_model_as_the_list_shows_it(live):
    """GET /v1/models/{id} (OpenAI's models.retrieve): the model object of the list; a model not served is a 404 with
    OpenAI's error object, code model_not_found."""
    from openai import NotFoundError, OpenAI

    client = OpenAI(base_url=live.url + "/v1", api_key="unused")
    listed = {m.id: m for m in client.models.list().data}
    for name in ("auto", "base", "handbook-v1", "handbook-v2"):
        m = client.models.retrieve(name)
        assert (m.id, m.object, m.owned_by) == (name, "model", "lorag"), m
        assert abs(m.created - listed[name].created) < 60
    with pytest.raises(NotFoundError) as e:
        client.models.retrieve("handbok-v2")
    assert (e.value.code, e.value.param, e.value.type) == ("model_not_found", "model", "invalid_request_error")
    assert e.value.body["message"].startswith("model 'handbok-v2' does not exist; use auto, base or one of: ")
    assert httpx.head(live.url + "/v1/models/base", timeout=30).status_code == 200


def test_a_domains_name_as_model_is_its_promoted_adapter(live):
    """`model` takes a domain's name for the domain's promoted version (the rule of `lorag eval`'s arms): chat, the
    Gradio API's ask and GET /v1/models/{id}; the list names the versions only. A domain without a promoted version is
    a 404 model_not_found naming its versions."""
    from openai import NotFoundError, OpenAI

    from tests.test_ui_core import register_fake_adapter

    client = OpenAI(base_url=live.url + "/v1", api_key="unused")
    r = client.chat.completions.create(model="handbook", messages=[{"role": "user", "content": Q}])
    assert r.model == "handbook-v1" and r.choices[0].message.content.startswith("(handbook-v1)"), r
    assert r.model_extra["lorag"]["route"]["reason"] == "explicit choice: handbook-v1"
    chunks = list(
        client.chat.completions.create(model="handbook", messages=[{"role": "user", "content": Q}], stream=True)
    )
    assert {c.model for c in chunks} == {"handbook-v1"}
    assert client.models.retrieve("handbook").id == "handbook"
    assert "handbook" not in [m.id for m in client.models.list().data]
    assert live.core.ask(Q, "manual", adapter="handbook").route["adapter"] == "handbook-v1"  # the Gradio API's ask
    # a domain with nothing promoted (not one a later test trains: a removed version's number is never reused)
    card = register_fake_adapter(live.comps.registry, live.store, "legal", 1)
    try:
        for call in (
            lambda: client.chat.completions.create(model="legal", messages=[{"role": "user", "content": Q}]),
            lambda: client.models.retrieve("legal"),
        ):
            with pytest.raises(NotFoundError) as e:
                call()
            assert (e.value.code, e.value.param) == ("model_not_found", "model")
            assert e.value.body["message"].startswith(
                "domain 'legal' has no promoted adapter for its name to pick; its versions: legal-v1 — "
            ), e.value.body
            assert e.value.body["hint"] == "name a version (legal-v1), or promote one: lorag adapters promote legal-v1"
    finally:
        live.comps.registry.remove(card.name)


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
        err = e.json()["error"]
        assert e.status_code == 400 and err["param"] == "max_tokens", bad
        assert err["code"] == ("invalid_value" if type(bad) is int else "invalid_type"), bad
        assert err["message"].startswith("invalid 'max_tokens': input should be") and repr(bad) in err["message"]


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
    assert r.json()["error"]["param"] == "messages[0]" and "(messages[0] has role 'assistant')" in r.text
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
    assert vote["vote"] == "left" and vote["id"] == cmp["id"] and vote["replaced"] is None
    tie = c.predict({**cmp, "reference": "Wipe it with a dry lint-free cloth."}, "tie", api_name="/vote")
    assert (
        tie["reference"] == "Wipe it with a dry lint-free cloth."
    )  # a tie becomes a test case with its edited reference
    assert tie["id"] == cmp["id"] and tie["replaced"]["vote"] == "left"  # one vote per comparison: it replaced left
    assert "comparing an arm with itself" in c.predict(Q, "manual", "base", "base", api_name="/compare")["error"]
    exported = c.predict("manual", api_name="/export_votes")
    assert (
        exported["cases"] == 1
        and exported["votes"] == 1
        and exported["superseded"] == 0
        and exported["tie_skipped"] == 0
        and exported["rows"][0]["question"] == Q
        and exported["saved_to"] == "votes/manual-testset.jsonl"
        and exported["votes_file"] == "votes/manual.jsonl"  # relative to the data folder, as saved_to
        and exported["unreadable_lines"] == []
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
    from ui.docs_index import start_ingest

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
        r = httpx.post(url, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="lorag"'
        assert r.json() == {
            "error": {
                "message": "invalid or missing credentials",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(url, json=body, auth=("ann", "nope")).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.post(url, json=body, auth=("ann", "s3cret")).status_code == 200
        assert httpx.get(app.url + "/v1/models").status_code == 401
        assert httpx.post(app.url + "/v1/completions").status_code == 401  # a path not served: behind the login too
        r = httpx.post(app.url + "/v1/completions", auth=("ann", "s3cret"))
        assert r.status_code == 404 and r.json()["error"]["message"].startswith("/v1/completions is not served")
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


def test_a_request_without_model_is_answered_as_auto(live):
    """OpenAI's API requires `model`; lorag takes a request without one as `auto` (README: many clients leave it out)
    and names what answered, as for `auto`, streamed or not."""
    url = live.url + "/v1/chat/completions"
    msgs = [{"role": "user", "content": Q}]
    auto = httpx.post(url, json={"model": "auto", "messages": msgs}, timeout=60).json()
    r = httpx.post(url, json={"messages": msgs}, timeout=60)
    assert r.status_code == 200 and r.json()["model"] == auto["model"] == "base", r.text
    assert r.json()["lorag"]["route"] == auto["lorag"]["route"]
    with httpx.stream("POST", url, json={"messages": msgs, "stream": True}, timeout=60) as streamed:
        lines = [ln for ln in streamed.iter_lines() if ln.startswith("data: {")]
    assert streamed.status_code == 200 and json.loads(lines[-1][6:])["model"] == "base"


def test_unknown_model_message_names_the_choices():
    from ui.api_chat import unknown_model

    assert unknown_model("x", ["auto", "base", "hr-v1"]) == "model 'x' does not exist; use auto, base or one of: hr-v1"
    assert (
        unknown_model("x", ["auto", "base"])
        == "model 'x' does not exist; use auto, base (no adapter is registered yet)"
    )


def test_a_wrongly_typed_or_out_of_range_field_is_a_400_naming_it(live):
    url = live.url + "/v1/chat/completions"
    msgs = [{"role": "user", "content": Q}]
    cases = [  # (the body's fields beside model and messages, param, code, words in the message)
        ({"stream": "yes"}, "stream", "invalid_type", "valid boolean"),
        ({"temperature": "hot"}, "temperature", "invalid_type", "valid number"),
        ({"temperature": 2.5}, "temperature", "invalid_value", "less than or equal to 2"),
        ({"top_p": -0.1}, "top_p", "invalid_value", "greater than or equal to 0"),
        ({"n": 2}, "n", "invalid_value", "less than or equal to 1"),
        ({"n": "1"}, "n", "invalid_type", "valid integer"),
        ({"stop": 5}, "stop", "invalid_type", "valid string or a valid list"),
        ({"stop": ["END", 5]}, "stop[1]", "invalid_type", "valid string"),
        ({"top_k": 0}, "top_k", "invalid_value", "greater than or equal to 1"),
        ({"domain": 5}, "domain", "invalid_type", "valid string"),
        ({"model": ["base"]}, "model", "invalid_type", "valid string"),
        ({"messages": "hi"}, "messages", "invalid_type", "valid list"),
        ({"messages": []}, "messages", "invalid_value", "at least 1 item"),
        ({"messages": [{"content": Q}]}, "messages[0].role", "missing_required_parameter", "is required"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content", "invalid_type", "valid string"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]}, "messages[0].content[0].text",
         "invalid_type", "valid string"),
    ]  # fmt: skip
    for fields, param, code, words in cases:
        r = httpx.post(url, json={"model": "base", "messages": msgs, **fields}, timeout=30)
        err = r.json()["error"]
        assert r.status_code == 400 and err["type"] == "invalid_request_error", fields
        assert (err["param"], err["code"]) == (param, code), fields
        assert f"'{param}'" in err["message"] and words in err["message"], (fields, err["message"])
    r = httpx.post(url, json={"model": "base", "messages": [{"role": "wizard", "content": Q}]}, timeout=30)
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "messages[0].role" and "(got 'wizard')" in err["message"]
    assert all(f"'{role}'" in err["message"] for role in ("system", "developer", "user", "assistant", "tool"))
    for body, content_type in (("{not json", "application/json"), ("[1]", "application/json"), ("x=1", None)):
        headers = (
            {"content-type": content_type} if content_type else {"content-type": "application/x-www-form-urlencoded"}
        )
        r = httpx.post(url, content=body, headers=headers, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", body
        assert ("Content-Type: application/json" in r.json()["error"]["message"]) == (content_type is None), body
    extras = {"user": "ann", "seed": 1, "stream_options": {"include_usage": True}, "logprobs": None, "n": 1}
    r = httpx.post(url, json={"model": "base", "messages": msgs, "temperature": 0, "top_p": 1, **extras}, timeout=30)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]  # what OpenAI clients send


def test_a_wrong_method_is_a_405_in_openai_shape(live):
    r = httpx.get(live.url + "/v1/chat/completions", timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"] == {
        "message": "GET is not allowed here: use POST",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }
    r = httpx.delete(live.url + "/v1/documents", timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    assert httpx.get(live.url + "/v1/models", timeout=30).status_code == 200  # the allowed method still answers


def test_a_path_not_served_under_v1_is_a_404_in_openai_shape_naming_what_is_served(live):
    """OpenAI's other endpoints (and any other path under /v1/) are no web-app page: a 404 error object that names
    the path and the paths lorag serves, whatever the method; a path served keeps its 405 for another method."""
    for method, path in (
        ("POST", "/v1/completions"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/files"),
        ("DELETE", "/v1/"),
    ):
        r = httpx.request(method, live.url + path, json={"model": "base", "input": "x"}, timeout=30)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", (path, r.text)
        err = r.json()["error"]
        assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", None, "not_found")
        served = err["message"].removeprefix(f"{path} is not served; lorag serves ").split(", ")
        assert {"/v1/chat/completions", "/v1/models", "/v1/documents", "/v1/jobs/{job_id}"} <= set(served), err
        assert path not in served and "/v1/{path:path}" not in served
    assert httpx.head(live.url + "/v1/completions", timeout=30).status_code == 404
    r = httpx.get(live.url + "/v1/chat/completions", timeout=30)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert httpx.get(live.url + "/", timeout=30).status_code == 200  # the web app still answers outside /v1/


def test_the_workers_api_answers_a_path_not_served_as_the_app_does(live):
    from fastapi.testclient import TestClient

    from ui.worker import build_worker_app

    app = build_worker_app(live.core, "tok", lambda: {"pid": 1}, lambda: None)
    c = TestClient(app, headers={"Authorization": "Bearer tok"})
    assert c.get("/v1/worker").json() == {"pid": 1}  # its own paths come first
    r = c.post("/v1/completions")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "/v1/chat/completions" in r.json()["error"]["message"] and "/v1/worker" in r.json()["error"]["message"]
    assert TestClient(app).post("/v1/completions").status_code == 401


def test_a_served_path_keeps_its_405_and_its_trailing_slash_redirect_under_the_catch_all(live):
    """The /v1/ catch-all answers 404 only for a path nobody serves: a served path (the app's, the worker's own)
    asked with another method is a 405 with Allow, and with a trailing slash a 307 to the path without it."""
    from fastapi.testclient import TestClient

    from ui.worker import build_worker_app

    worker = TestClient(
        build_worker_app(live.core, "tok", lambda: {"pid": 1}, lambda: None),
        headers={"Authorization": "Bearer tok"},
        follow_redirects=False,
    )
    app = httpx.Client(base_url=live.url, timeout=30, follow_redirects=False)
    for c in (app, worker):
        r = c.get("/v1/models/?x=1")
        assert r.status_code == 307 and r.headers["location"].endswith("/v1/models?x=1"), r.text
        r = c.get("/v1/jobs/abc/")
        assert r.status_code == 307 and r.headers["location"].endswith("/v1/jobs/abc"), r.text
        r = c.put("/v1/adapters/some-name")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", r.text
        assert c.get("/v1/").status_code == 404
    for method, path, allow in (("POST", "/v1/worker", "GET, HEAD"), ("GET", "/v1/worker/stop", "POST")):
        r = worker.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.text)
        assert r.json()["error"]["code"] == "method_not_allowed"
    r = worker.head("/v1/worker")
    assert r.status_code == 200 and r.content == b""
    r = worker.get("/v1/worker/")
    assert r.status_code == 307 and r.headers["location"].endswith("/v1/worker")
    r = worker.get("/v1/worker/stop/")  # a redirect to a path that still refuses GET: no stop on a GET
    assert r.status_code == 307 and r.headers["location"].endswith("/v1/worker/stop")
    assert TestClient(worker.app).get("/v1/models/").status_code == 401  # the redirect too is behind the login


def test_head_is_answered_wherever_get_is(live):
    for path in ("/v1/models", "/v1/documents", "/v1/adapters", "/healthz"):
        r = httpx.head(live.url + path, timeout=30)
        assert r.status_code == 200 and r.content == b"", path
        assert r.headers["content-type"] == "application/json", path
    job = live.core.jobs.start("synth", "a job to look at", lambda job: {}, {})
    assert httpx.head(f"{live.url}/v1/jobs/{job}", timeout=30).status_code == 200
    r = httpx.head(live.url + "/v1/chat/completions", timeout=30)  # POST only: still refused
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "head" not in httpx.get(live.url + "/v1/openapi.json", timeout=30).json()["paths"]["/v1/models"]


def test_every_json_endpoint_answers_a_body_that_is_no_json_object_as_chat_does(live):
    from ui.remote import TOKEN_HEADER

    live.core.local_token = "t0k3n"  # the note's token: /v1/documents/local reads the body only with it
    headers = {"content-type": "application/json", TOKEN_HEADER: "t0k3n"}
    chat = httpx.post(live.url + "/v1/chat/completions", content="{bad", headers=headers, timeout=30).json()
    paths = ("/v1/jobs", "/v1/documents/delete", "/v1/documents/local", "/v1/adapters/handbook-v2/promote")
    try:
        _check_json_bodies(live, paths, headers, chat)
    finally:
        live.core.local_token = None
    assert chat["error"]["code"] == "invalid_json" and chat["error"]["message"].startswith("the body must be JSON: ")


def _check_json_bodies(live, paths, headers, chat):
    for path in paths:
        r = httpx.post(live.url + path, content="{bad", headers=headers, timeout=30)
        assert r.status_code == 400 and r.json() == chat, (path, r.text)  # the same message, code and param
        for body in ("[1]", '"x"', "null"):
            r = httpx.post(live.url + path, content=body, headers=headers, timeout=30)
            err = r.json()["error"]
            assert r.status_code == 400 and (err["code"], err["param"]) == ("invalid_json", None), (path, body)
            assert err["message"] == "the body must be a JSON object", (path, body)


def test_stop_may_be_one_string_of_any_length_or_a_list_of_at_most_four(live):
    url = live.url + "/v1/chat/completions"
    msgs = [{"role": "user", "content": Q}]
    for stop in ("\nObservation:", ["\nObservation:", "END"], ["a", "b", "c", "d"], "x" * 200):
        r = httpx.post(url, json={"model": "base", "messages": msgs, "stop": stop}, timeout=30)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"], (stop, r.text)
    r = httpx.post(url, json={"model": "base", "messages": msgs, "stop": list("abcde")}, timeout=30)
    err = r.json()["error"]
    assert r.status_code == 400 and (err["param"], err["code"]) == ("stop", "invalid_value")
    assert "at most 4 items" in err["message"], err["message"]


@pytest.mark.parametrize(
    ("messages", "at", "got"),
    [
        ([("user", ""), ("system", "s")], 0, "is empty"),  # the system message is left out: messages[0] is at fault
        ([("user", "q"), ("assistant", "a"), ("tool", "t")], 1, "has role 'assistant'"),
        ([("user", "q"), ("user", "  ")], 1, "is empty"),
        ([("system", "s"), ("developer", "d")], 1, "has role 'developer'"),  # no user/assistant turn: the last one
    ],
)
def test_a_message_list_without_a_final_question_names_the_message_at_fault(live, messages, at, got):
    msgs = [{"role": role, "content": text} for role, text in messages]
    r = httpx.post(live.url + "/v1/chat/completions", json={"model": "base", "messages": msgs}, timeout=30)
    err = r.json()["error"]
    assert r.status_code == 400 and (err["param"], err["code"]) == (f"messages[{at}]", "invalid_messages")
    assert f"(messages[{at}] {got})" in err["message"], err["message"]


def test_an_unknown_domain_names_the_field_and_the_known_domains(live):
    url = live.url + "/v1/chat/completions"
    msgs = [{"role": "user", "content": Q}]
    known = live.core.domains()
    for stream in (False, True):
        r = httpx.post(url, json={"model": "auto", "messages": msgs, "domain": "nosuch", "stream": stream}, timeout=30)
        err = r.json()["error"]
        assert r.status_code == 400 and (err["param"], err["code"]) == ("domain", "domain_not_found"), stream
        assert (
            err["message"].startswith("unknown domain 'nosuch'")
            and f"known domains: {', '.join(known)}" in err["message"]
        )
    r = httpx.post(url, json={"model": "base", "messages": msgs, "domain": "Bad Name!"}, timeout=30)
    assert r.status_code == 400 and (r.json()["error"]["param"], r.json()["error"]["code"]) == (
        "domain",
        "invalid_domain",
    )
    r = httpx.post(url, json={"model": "base", "messages": msgs, "domain": "Manual"}, timeout=30)  # the domain 'manual'
    assert r.status_code == 200 and {p["domain"] for p in r.json()["lorag"]["passages"]} == {"manual"}


def test_the_openapi_schema_documents_the_chat_request_body(live):
    spec = httpx.get(live.url + "/v1/openapi.json", timeout=30).json()
    body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = spec["components"]["schemas"][ref]
    assert schema["required"] == ["messages"] and body["required"] is True
    assert {"model", "messages", "stream", "max_tokens", "temperature", "domain", "top_k"} <= set(schema["properties"])
    assert "get" not in spec["paths"]["/v1/chat/completions"]  # the 405 routes stay out of the docs


def test_documents_and_jobs_apis_lowercase_a_domain_as_the_cli_does(live, tmp_path):
    from assistant.errors import LoragError
    from assistant.names import domain_name

    f = tmp_path / "inventory.csv"
    f.write_text("item,count\nlanyard,40\n")
    with f.open("rb") as fh:
        r = httpx.post(live.url + "/v1/documents", data={"domain": "Bad Name!"}, files={"files": fh}, timeout=30)
    with pytest.raises(LoragError) as e:
        domain_name("Bad Name!")
    assert r.status_code == 400 and r.json()["error"]["message"] == str(e.value)  # the CLI's message, word for word
    with f.open("rb") as fh:
        r = httpx.post(live.url + "/v1/documents", data={"domain": "MyUpper"}, files={"files": fh}, timeout=30)
    assert live.core.jobs.wait(r.json()["job"], 30)["status"] == "done"
    assert "myupper" in live.core.domains()
    r = httpx.post(live.url + "/v1/jobs", json={"kind": "synth", "domain": "NoSuch"}, timeout=30)
    assert r.status_code == 400 and "'nosuch'" in r.json()["error"]["message"], r.text  # not "invalid domain name"
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == ("domain_not_found", "domain")


def test_listing_and_removing_documents_take_a_domain_as_typed(live, tmp_path):
    f = tmp_path / "badges.txt"
    f.write_text("Visitors wear a red badge.\n")
    for missing in ({}, {"domain": "  "}):
        with f.open("rb") as fh:
            r = httpx.post(live.url + "/v1/documents", data=missing, files={"files": fh}, timeout=30)
        msg = r.json()["error"]["message"]
        assert r.status_code == 400 and msg.startswith("the form field 'domain' is required"), (missing, msg)
        assert "pick one in Domain" not in msg  # the web app's words, for its own control
    with f.open("rb") as fh:
        r = httpx.post(live.url + "/v1/documents", data={"domain": "CaseDocs"}, files={"files": fh}, timeout=30)
    assert live.core.jobs.wait(r.json()["job"], 30)["status"] == "done"
    r = httpx.get(live.url + "/v1/documents", params={"domain": " CaseDocs "}, timeout=30)
    assert r.status_code == 200 and [(d["domain"], d["display"]) for d in r.json()["data"]] == [
        ("casedocs", "badges.txt")
    ], r.text
    r = httpx.get(live.url + "/v1/documents", params={"domain": "Bad Name!"}, timeout=30)
    assert r.status_code == 400 and "invalid domain 'Bad Name!'" in r.json()["error"]["message"]
    r = httpx.post(live.url + "/v1/documents/delete", json={"domain": "CaseDocs", "documents": ["badges.txt"]})
    assert r.status_code == 200 and [d["display"] for d in r.json()["removed"]] == ["badges.txt"], r.text
    r = httpx.post(live.url + "/v1/jobs", json={"kind": "train"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("the field 'domain' is required"), r.text


def test_a_job_for_an_unknown_domain_is_refused_before_it_starts(live):
    """Training, like training data and evaluation, is refused at once for a domain that is not indexed (no job is
    left failed behind): a 400 naming the field and the known domains."""
    before = {j["id"] for j in live.core.jobs.all()}
    for body in (
        {"kind": "train", "domain": "nosuchdomain"},
        {"kind": "synth", "domain": "nosuchdomain"},
        {"kind": "eval", "domain": "nosuchdomain", "arms": "base,handbook-v1"},
    ):
        r = httpx.post(live.url + "/v1/jobs", json=body, timeout=30)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert (err["param"], err["code"]) == ("domain", "domain_not_found"), err
        assert err["message"].startswith("unknown domain 'nosuchdomain'") and "manual" in err["message"], err
    assert {j["id"] for j in live.core.jobs.all()} == before
