"""Shared fixtures: settings in a temp folder, fake backends, a tiny corpus in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.embedding import Bm25SparseEncoder
from assistant.settings import Settings
from assistant.store.edge import EdgeStore
from tests.fakes import FakeGenerator, HashingEmbedder
from tests.helpers.tiny_lm import build_tiny_lm

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("LORAG_"):
            monkeypatch.delenv(name)
    # `lorag ask` answers in the test's process: no keep-warm worker outlives a test (tests/test_warm.py turns it on)
    monkeypatch.setenv("LORAG_CLI__KEEP_WARM_S", "0")
    # float32 document vectors whatever the CPU (tests/test_embed_backends.py turns bfloat16 on)
    monkeypatch.setenv("LORAG_MODELS__EMBEDDER_CPU_BF16", "off")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"},
        ingest={"chunk_tokens": 60, "chunk_overlap": 10},
        retrieval={"min_relevance": 0.2},
    )


@pytest.fixture
def fake_dense() -> HashingEmbedder:
    return HashingEmbedder(dim=2048)


@pytest.fixture(scope="session")
def bm25() -> Bm25SparseEncoder:
    return Bm25SparseEncoder()


@pytest.fixture
def store(settings):
    s = EdgeStore(settings.store_path)
    yield s
    s.close()


@pytest.fixture
def components(settings, store, fake_dense, bm25):
    from ui.components import Components

    return Components(settings, store=store, dense=fake_dense, sparse=bm25, generator=FakeGenerator())


def write_pdf(path: Path, pages: list[str], *, encrypt: str | None = None) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for text in pages:
        y = 800
        for line in text.splitlines():
            c.drawString(50, y, line)
            y -= 16
        c.showPage()
    c.save()
    if encrypt:
        from pypdf import PdfReader, PdfWriter

        w = PdfWriter(clone_from=PdfReader(str(path)))
        w.encrypt(encrypt)
        with path.open("wb") as fh:
            w.write(fh)
    return path


def write_docx(path: Path, title: str, sections: dict[str, str]) -> Path:
    import docx

    d = docx.Document()
    d.add_heading(title, level=1)
    for heading, body in sections.items():
        d.add_heading(heading, level=2)
        d.add_paragraph(body)
    d.save(str(path))
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A small corpus in every supported format with distinctive facts."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "leave.md").write_text(
        "# Leave policy\n\n## Annual leave\nFull-time staff receive 27 days of annual leave each year.\n\n"
        "## Sick leave\nA doctor's note is needed after 3 consecutive sick days.\n"
    )
    (root / "parking.txt").write_text("Parking permits cost 12 euros per month and are issued by reception.\n")
    (root / "security.html").write_text(
        "<html><head><title>Security</title></head><body><h1>Security</h1><h2>Badges</h2>"
        "<p>Lost badges must be reported to the front desk within 24 hours.</p>"
        "<h2>Visitors</h2><p>Visitors sign in at the lobby kiosk and wear a red lanyard.</p></body></html>"
    )
    write_pdf(
        root / "travel.pdf",
        ["Travel policy\nTrains are booked in second class.", "Page two\nHotels up to 140 euros per night."],
    )
    write_docx(root / "remote.docx", "Remote work", {"Equipment": "Remote staff get a monitor allowance of 300 euros."})
    (root / "codes.csv").write_text("code,meaning\nE-17,lamp failure\nE-42,door open during scan\n")
    (root / "faq.json").write_text(
        json.dumps([{"question": "Who approves overtime?", "answer": "The team lead approves overtime."}])
    )
    return root


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture()
def qlora_model(tiny_lm):
    """The tiny model with bitsandbytes' NF4 Linears (its CPU backend here) under a peft LoRA."""
    bnb = pytest.importorskip("bitsandbytes")
    from finetune.accel import decide
    from finetune.config import TrainConfig
    from finetune.train import load_trainable_model

    try:
        base, _ = load_trainable_model(str(tiny_lm), decide(TrainConfig(domain="t", quantization="nf4"), "cpu"))
    except Exception as e:  # pragma: no cover - depends on the bitsandbytes build
        pytest.skip(f"bitsandbytes {bnb.__version__} cannot quantize on this device: {e}")
    return _with_lora(base)


@pytest.fixture()
def peft_model(tiny_lm):
    """The tiny model under a peft LoRA on every Linear (r 4, alpha 12, B not zero), in train mode."""
    from transformers import AutoModelForCausalLM

    return _with_lora(AutoModelForCausalLM.from_pretrained(tiny_lm))


def _with_lora(base):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    return get_peft_model(
        base, LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False)
    ).train()
