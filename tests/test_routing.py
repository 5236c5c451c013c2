"""Routing a question to an adapter (assistant/routing.py), and the answer saying which one answered."""

import numpy as np
import pytest

from assistant.errors import LoragError
from assistant.routing import Router
from assistant.settings_pipeline import RoutingSettings
from tests.fakes import FakeGenerator


def test_router_precedence_and_threshold():
    cents = {"hr": np.array([1.0, 0, 0]), "manual": np.array([0, 1.0, 0])}
    r = Router(RoutingSettings(threshold=0.6), {"hr": "hr-v2", "manual": "manual-v1"}, cents)
    assert r.route(choice="base").adapter is None
    assert r.route(choice="manual-v1", domain="hr").adapter == "manual-v1"  # explicit beats the domain
    assert r.route(domain="hr").adapter == "hr-v2"
    auto = r.route(query_vec=np.array([0.9, 0.1, 0]), hit_domains=["hr", "hr", "hr", "manual"])
    assert auto.adapter == "hr-v2" and auto.domain == "hr" and auto.confidence > 0.6 and "routed to hr" in auto.reason
    unsure = r.route(query_vec=np.array([0.5, 0.5, 0]), hit_domains=["hr", "manual"])
    assert unsure.adapter is None and "threshold" in unsure.reason
    with pytest.raises(LoragError, match="not loaded"):
        r.route(choice="legal-v1")
    assert Router(RoutingSettings(), {}).route().reason.startswith("no promoted adapters")


def test_ask_reports_which_adapter_answered(components, corpus):
    from assistant.answer import AskService

    components.ingestor().run([corpus], "hr")
    gen = FakeGenerator(lambda m: "27 days [1].", adapters=["hr-v1"])
    router = Router(RoutingSettings(threshold=0.3), {"hr": "hr-v1"}, {"hr": components.store.dense_centroid("hr")})
    svc = AskService(components.retriever, gen, router)
    a = svc.ask("How many days of annual leave do full-time staff receive?")
    assert a.adapter == "hr-v1" and a.route["adapter"] == "hr-v1" and "routed to hr" in a.route["reason"]
    assert gen.calls[-1][1] == "hr-v1"
    b = svc.ask("How many days of annual leave do full-time staff receive?", adapter="base")
    assert b.adapter is None and gen.calls[-1][1] is None and b.to_dict()["route"]["adapter"] == "base"


def _two_domains(components, tmp_path):
    hr, manual = tmp_path / "hr", tmp_path / "manual"
    hr.mkdir(), manual.mkdir()
    (hr / "annual.md").write_text("# Annual leave\n\nFull-time staff receive 27 days of annual leave each year.\n")
    (hr / "sick.md").write_text("# Sick leave\n\nA doctor's note is needed after 3 consecutive sick days.\n")
    (manual / "lamp.md").write_text("# Aurora\n\nError E-104 means the lamp is overheating: let it cool down.\n")
    ing = components.ingestor()
    ing.run([hr], "hr")
    ing.run([manual], "manual")
    cents = {d: components.store.dense_centroid(d) for d in ("hr", "manual")}
    return Router(RoutingSettings(threshold=0.3), {"hr": "hr-v1", "manual": "manual-v1"}, cents)


def test_an_ask_without_a_domain_embeds_the_question_once(components, tmp_path, monkeypatch):
    """Routing reuses the vector the search used: one embedding per question, for the same route and passages as
    a separate search and routing on the question's own embedding."""
    from assistant.answer import AskService
    from assistant.conversation import retrieve_for

    router = _two_domains(components, tmp_path)
    svc = AskService(components.retriever, FakeGenerator(lambda m: "27 days [1].", adapters=["hr-v1"]), router)
    svc.ask("What does error E-104 mean?")  # a domain's first search checks its embedder record (a probe embedding)
    dense = components.retriever.dense
    embed = dense.embed_query
    texts: list[str] = []
    monkeypatch.setattr(dense, "embed_query", lambda t: texts.append(t) or embed(t))
    q = "How many days of annual leave do full-time staff receive?"
    a = svc.ask(q)
    assert texts == [q]
    texts.clear()
    found = retrieve_for(components.retriever, q, None)  # `lorag ask`: retrieved first, then answered on it
    b = svc.ask(q, retrieval=found)
    assert texts == [q]

    monkeypatch.setattr(dense, "embed_query", embed)
    separate = components.retriever.retrieve(q)
    route = router.route(query_vec=embed(q), hit_domains=[p.domain for p in separate.passages])
    assert route.adapter == "hr-v1" and route.scores.keys() == {"hr", "manual"}
    for got in (a, b):
        assert got.route == route.to_dict() and got.adapter == "hr-v1"
        assert [(p.chunk_id, p.score) for p in got.passages] == [(p.chunk_id, p.score) for p in separate.passages]


def test_a_follow_up_is_routed_on_its_own_words(components, tmp_path, monkeypatch):
    """A follow-up is searched joined with the question it follows, and routed on its own words, as before."""
    from assistant.answer import AskService

    router = _two_domains(components, tmp_path)
    svc = AskService(components.retriever, FakeGenerator(lambda m: "3 days [1]."), router)
    svc.ask("What does error E-104 mean?")
    dense = components.retriever.dense
    embed = dense.embed_query
    texts: list[str] = []
    monkeypatch.setattr(dense, "embed_query", lambda t: texts.append(t) or embed(t))
    first = "How many days of annual leave do full-time staff receive?"
    a = svc.ask("And for sick leave?", history=[(first, "27 days [1].")])
    assert texts == [f"{first} And for sick leave?", "And for sick leave?"]
    route = router.route(query_vec=embed("And for sick leave?"), hit_domains=[p.domain for p in a.passages])
    assert a.route == route.to_dict()
