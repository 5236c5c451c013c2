"""Routing a question to an adapter (assistant/routing.py), and the answer saying which one answered."""

import numpy as np
import pytest

from assistant.errors import LoragError
from assistant.routing import Router
from assistant.settings import RoutingSettings
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
