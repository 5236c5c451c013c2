"""The training benchmark's Unsloth arm on a GPU (benchmarks/bench_train_gpu.py, benchmarks/unsloth_arm.py):
Unsloth's own path trains the same rows in the same optimizer steps as plain trl, LoRA on 16-bit layers
and QLoRA on 4-bit ones. Needs CUDA, an Unsloth site folder (`pip install --target`, as .gpu/call_unsloth.sh
makes) in BENCH_UNSLOTH_SITE and a tokenizer folder in BENCH_TOKENIZER; runs without tests/conftest.py:

    BENCH_UNSLOTH_SITE=/tmp/usite BENCH_TOKENIZER=.gpu/tok python -m pytest -m gpu --noconftest \
        tests/test_bench_unsloth_gpu.py
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

REPO = Path(__file__).resolve().parents[1]


def rows(n: int, salt: str) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"What does step {i} of the {salt} guide say about ports?"}],
            "completion": [{"role": "assistant", "content": f"Step {i} says to open port {8000 + i} for {salt}."}],
        }
        for i in range(n)
    ]


def test_unsloth_trains_the_same_rows_and_steps_as_plain_trl(tmp_path):
    site, tok = os.environ.get("BENCH_UNSLOTH_SITE"), os.environ.get("BENCH_TOKENIZER")
    if not (site and tok):
        pytest.skip("set BENCH_UNSLOTH_SITE (an Unsloth site folder) and BENCH_TOKENIZER (a tokenizer folder)")
    train, heldout = tmp_path / "train.jsonl", tmp_path / "heldout.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows(48, "alpha")))
    heldout.write_text("".join(json.dumps(r) + "\n" for r in rows(8, "beta")))
    out = tmp_path / "out.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_train_gpu.py"),
        "--random-1b",
        "--tokenizer",
        tok,
        "--train",
        str(train),
        "--eval",
        str(heldout),
        "--epochs",
        "1",
        "--max-len",
        "256",
        "--quant",
        "both",
        "--arms",
        "plain-nodrop,unsloth",
        "--fresh",
        "--arm-timeout",
        "240",
        "--unsloth-site",
        site,
        "--out",
        str(tmp_path / "bench"),
        "--json",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    got = json.loads(out.read_text())
    assert "_failed" not in got, got.get("_failed")
    for q, four_bit in (("lora", False), ("qlora", True)):
        (plain,), (uns,) = got[f"plain-nodrop-{q}"], got[f"unsloth-{q}"]
        assert uns["rows_trained"] == plain["rows_trained"] == 48
        assert uns["optimizer_steps"] == plain["optimizer_steps"] == 3  # 16 rows a step, as every arm
        assert uns["tokens"] == plain["tokens"] and uns["tokens_per_s"] > 0
        assert math.isfinite(uns["eval_loss"]) and uns["peak_gb"] > 0
        assert (uns["unsloth"]["linear4bit_layers"] > 0) is four_bit
        assert uns["unsloth"]["version"] == "2026.10.9" and uns["unsloth"]["trl"] == "1.15.0"
