"""benchmarks/bench_train_gpu.py on CPU: what it refuses before loading anything, the shapes and MFU count
of its random models (--check), and an arm that cannot run in its own process being recorded while the
other arms go on. The GPU runs are in tests/test_bench_unsloth_gpu.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_train_gpu.py"


def bench(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


def test_the_unsloth_arm_is_refused_without_fresh(tmp_path):
    r = bench("--model", str(tmp_path), "--train", "a.jsonl", "--eval", "b.jsonl", "--arms", "plain,unsloth")
    assert r.returncode == 2
    assert "the unsloth arm runs only with --fresh" in r.stderr
    assert "imported before transformers" in r.stderr


def test_an_unsloth_site_without_unsloth_is_refused(tmp_path):
    r = bench(
        "--model",
        str(tmp_path),
        "--train",
        "a",
        "--eval",
        "b",
        "--arms",
        "unsloth",
        "--fresh",
        "--unsloth-site",
        str(tmp_path),
    )
    assert r.returncode == 2
    assert f"--unsloth-site {tmp_path}: no unsloth package" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--random-8b"], "--random-8b needs --tokenizer"),
        (["--random-1b", "--random-8b", "--tokenizer", "t"], "not allowed with argument"),
        (["--model", "m", "--arms", "plain,lorg"], "unknown arm(s) lorg"),
        (["--model", "m", "--arm-timeout", "60"], "--arm-timeout applies to --fresh runs"),
        ([], "give --model FOLDER, --random-1b or --random-8b"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(args, message):
    r = bench("--train", "a", "--eval", "b", *args)
    assert r.returncode == 2
    assert message in r.stderr


def layer_params(h: int, inter: int, heads: int, kv: int) -> int:
    hd = h // heads
    return h * (heads * hd) + 2 * h * (kv * hd) + (heads * hd) * h + 3 * h * inter + 2 * h  # attn, MLP, 2 norms


def check(tokenizer: Path, size: str) -> dict:
    r = bench(f"--random-{size}", "--tokenizer", str(tokenizer), "--train", "a", "--eval", "b", "--check")
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_random_8b_has_llama_31_8b_shapes_and_mfu_counts_its_untied_head(tiny_lm):
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(tiny_lm))
    rep = check(tiny_lm, "8b")
    cfg = rep["config"]
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]) == (4096, 32, 14336)
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]) == (32, 8, 128)
    rope = cfg["rope_parameters"]
    assert rope["rope_type"] == "llama3" and rope["rope_theta"] == 500000.0 and rope["factor"] == 8.0
    assert (rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"]) == (
        1.0,
        4.0,
        8192,
    )
    assert cfg["max_position_embeddings"] == 131072 and cfg["tie_word_embeddings"] is False
    assert cfg["vocab_size"] == vocab  # the tokenizer's vocabulary, so the data is unchanged
    body = 32 * layer_params(4096, 14336, 32, 8) + 4096  # the decoder layers and the final norm
    assert rep["counted_parameters"] == body + vocab * 4096  # + the output head, not the input embeddings
    assert rep["parameters"] == body + 2 * vocab * 4096  # untied: embeddings and head are two matrices
    assert rep["flops_per_token"] == 6 * rep["counted_parameters"]


def test_random_1b_counts_its_tied_head_once(tiny_lm):
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(tiny_lm))
    rep = check(tiny_lm, "1b")
    assert rep["config"]["tie_word_embeddings"] is True and rep["config"]["num_hidden_layers"] == 16
    body = 16 * layer_params(2048, 8192, 32, 8) + 2048
    assert rep["counted_parameters"] == rep["parameters"] == body + vocab * 2048


def rows(n: int, salt: str) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"What does step {i} of the {salt} guide say?"}],
            "completion": [{"role": "assistant", "content": f"Step {i} says to check the {salt} settings first."}],
        }
        for i in range(n)
    ]


@pytest.mark.slow
def test_an_arm_that_cannot_start_is_recorded_and_the_others_run(tiny_lm, tmp_path):
    """--fresh: the unsloth arm's process gets --unsloth-site first on its PYTHONPATH and imports unsloth
    before transformers; here that unsloth fails to import, which is recorded with its reason, and the
    plain arm (whose process does not see the site) still trains every row."""
    site = tmp_path / "site" / "unsloth"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(
        "import sys\nraise ImportError(f\"fake unsloth; transformers loaded first: {'transformers' in sys.modules}\")\n"
    )
    train, heldout = tmp_path / "train.jsonl", tmp_path / "heldout.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows(8, "alpha")))
    heldout.write_text("".join(json.dumps(r) + "\n" for r in rows(4, "beta")))
    out = tmp_path / "out.json"
    r = bench(
        "--model",
        str(tiny_lm),
        "--train",
        str(train),
        "--eval",
        str(heldout),
        "--epochs",
        "1",
        "--batch",
        "4",
        "--max-len",
        "128",
        "--quant",
        "lora",
        "--arms",
        "unsloth,plain-nodrop",
        "--fresh",
        "--unsloth-site",
        str(tmp_path / "site"),
        "--out",
        str(tmp_path / "bench"),
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = json.loads(out.read_text())
    reason = got["_failed"]["unsloth-lora"]
    assert reason.startswith("import unsloth: ImportError: fake unsloth")
    assert "transformers loaded first: False" in reason
    (plain,) = got["plain-nodrop-lora"]
    assert plain["rows_trained"] == 8 and plain["optimizer_steps"] == 2 and plain["tokens_per_s"] > 0
    assert "unsloth-lora" in r.stdout and "FAILED: import unsloth: ImportError" in r.stdout


def test_the_summary_gives_step_for_step_ratios_and_mfu_at_the_median_step(monkeypatch, capsys):
    """An 8-step run's whole-run tokens/s carries its first step (captures, compiles): the summary also gives
    the median step's ratio and MFU (mean tokens per step over the median step time)."""
    import argparse

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import train_report as mod

    def arm(tok_s, median_ms, first_s, sum_s):
        return {
            "tokens": 102_400.0,
            "tokens_per_s": tok_s,
            "peak_gb": 7.5,
            "reserved_gb": 9.0,
            "eval_loss": 11.3,
            "seconds": 102_400 / tok_s,
            "optimizer_steps": 8,
            "rows_trained": 128,
            "steps": {"median_ms": median_ms, "first_s": first_s, "sum_s": sum_s},
        }

    fpt, peak = 4.31e10, 989.5e12
    runs = {"lorag-qlora": [arm(8744.0, 913.3, 4.66, 11.0)], "unsloth-qlora": [arm(4150.0, 1760.6, 11.49, 24.17)]}
    for r in runs.values():
        r[0]["mfu"] = fpt * r[0]["tokens_per_s"] / peak
        r[0]["mfu_step"] = mod.step_mfu(r[0], fpt, peak)
    assert runs["lorag-qlora"][0]["mfu_step"] == pytest.approx(fpt * 12_800 / 0.9133 / peak)
    args = argparse.Namespace(arms="lorag,unsloth", model="m", epochs=1, batch=16, max_len=1024, random_8b=True)
    mod.summarize(args, "H100", 128, fpt, runs, {}, "8b")
    out = capsys.readouterr().out
    # steps 2..8: (24.17 - 11.49) / (11.0 - 4.66) = 2.00x, every step counted, the first one's compiles left out
    assert (
        "[lorag vs unsloth] qlora: tokens/s ratio 2.11x (target >= 2), median step 1.93x, steps after the first 2.00x"
        in out
    )
    assert f"{runs['lorag-qlora'][0]['mfu_step'] * 100:7.2f}%" in out  # 61.05%
    import os

    host = next(line for line in out.splitlines() if line.startswith("host="))  # eager arms' speed follows the host
    assert f" x{os.cpu_count()} load=" in host and host.split("load=")[1].count("/") == 2


@pytest.mark.parametrize("extra", [[], ["--profile", "--profile-step", "5"], ["--cprofile", "--profile"]])
def test_a_fresh_process_runs_with_the_parents_settings(monkeypatch, tmp_path, extra):
    """--fresh: each arm's process parses back the parent's run settings (profiling included: a child that
    dropped --profile trained unprofiled and printed no profile), with one arm and the chosen rows."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from fresh_process import child_command
    from train_args import parse_args

    parent = parse_args(
        ["--model", "m", "--train", "t.jsonl", "--eval", "e.jsonl", "--epochs", "2", "--batch", "8", "--lr", "1e-4"]
        + ["--max-len", "512", "--quant", "both", "--arms", "lorag,plain", "--fresh", *extra]
    )
    cmd = child_command("m", tmp_path / "rows.jsonl", parent, True, "lorag", tmp_path, tmp_path / "r.json")
    assert cmd[:2] == [sys.executable, str(SCRIPT)]
    child = parse_args(cmd[2:])
    for name in ("epochs", "batch", "lr", "max_len", "profile", "profile_step", "cprofile", "eval"):
        assert getattr(child, name) == getattr(parent, name), name
    assert child.arms == "lorag" and child.quant == "qlora" and child.child and not child.fresh
    assert child.train == tmp_path / "rows.jsonl"


def test_every_arms_module_constant_exists_and_is_set_for_that_arm_alone(monkeypatch):
    """An arm's `_...` keys (benchmarks/train_arms.py MODULE_CONSTANTS) name constants that exist in
    finetune.accel; they leave the recipe's keys at once, hold inside the arm's context and not after it."""
    import importlib

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import train_arms as mod

    seen = set()
    for arm, keys in mod.VARIANTS.items():
        wanted = {k: v for k, v in keys.items() if k.startswith("_")}
        assert set(wanted) <= set(mod.MODULE_CONSTANTS), arm
        arm_spec = dict(keys)
        context = mod.module_constants(arm_spec)
        assert not any(k.startswith("_") for k in arm_spec), arm  # popped before the recipe is built
        targets = {k: importlib.import_module(f"finetune.accel.{mod.MODULE_CONSTANTS[k][0]}") for k in wanted}
        defaults = {k: getattr(targets[k], mod.MODULE_CONSTANTS[k][1]) for k in wanted}
        with context:
            for k, v in wanted.items():
                assert getattr(targets[k], mod.MODULE_CONSTANTS[k][1]) == v, (arm, k)
                assert v != defaults[k], (arm, k)  # an arm that sets a constant differs from the default there
        for k in wanted:
            assert getattr(targets[k], mod.MODULE_CONSTANTS[k][1]) == defaults[k], (arm, k)
        seen |= set(wanted)
    assert seen == set(mod.MODULE_CONSTANTS)  # every constant some arm sets


def _ev(action, size, addr, stream=0, line=1, where="finetune/accel/graphs.py"):
    """One event of an allocator trace in PyTorch's snapshot format, allocated at `where`:`line`."""
    frames = [{"filename": "/r/" + where, "line": line, "name": "f"}]
    return {"action": action, "size": size, "addr": addr, "stream": stream, "frames": frames}


def test_the_memory_trace_names_what_was_live_when_reserved_memory_peaked(monkeypatch, capsys):
    """benchmarks/memory_trace.py's analysis of an allocator trace (PyTorch's snapshot format): the peak is
    where segments summed highest, the blocks live then are grouped by the innermost frame in lorag's code (or
    its libraries') and stream, freed blocks and later segments do not count."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from memory_trace import trace_peak_report

    gb = 2**30

    def ev(action, size, addr, stream=0, where="finetune/accel/graphs.py", line=1):
        frames = [
            {"filename": "/x/torch/nn/m.py", "line": 9, "name": "inner"},
            {"filename": f"/r/{where}", "line": line, "name": "f"},
        ]
        return {"action": action, "size": size, "addr": addr, "stream": stream, "frames": frames}

    trace = [
        ev("segment_alloc", 4 * gb, 0),
        ev("alloc", 3 * gb, 0, line=10),
        ev("alloc", gb // 2, 3 * gb, line=11),
        ev("free_completed", gb // 2, 3 * gb, line=11),
        ev("segment_alloc", 2 * gb, 8 * gb, stream=7),
        ev("alloc", 2 * gb, 8 * gb, stream=7, where="liger_kernel/ops/fused_linear_cross_entropy.py", line=5),
        ev("free_completed", 2 * gb, 8 * gb, stream=7),
        ev("segment_free", 2 * gb, 8 * gb, stream=7),
        ev("segment_alloc", gb, 12 * gb),  # later and lower: not the peak
    ]
    got = trace_peak_report(trace)
    assert got["peak_reserved_gb"] == 6.0 and got["live_gb"] == 5.0
    assert got["top"] == [["accel/graphs.py:10 f", 0, 3.0, 1], ["ops/fused_linear_cross_entropy.py:5 f", 7, 2.0, 1]]
    out = capsys.readouterr().out
    assert "reserved peaked at 6.000 GB" in out and "stream 7: reserved 2.000 GB, live 2.000 GB" in out


def test_the_memory_trace_names_what_a_pool_free_at_the_peak_held_when_its_use_peaked(monkeypatch, capsys):
    """A stream whose reserved memory was all free at the reserved peak (a CUDA graphs' pool after its
    captures): the report finds when its live blocks summed highest and groups those by where they came from."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from memory_trace import trace_peak_report

    gb = 2**30

    def ev(action, size, addr, stream=0, line=1):
        return _ev(action, size, addr, stream, line, "finetune/accel/lora_fused.py")

    trace = [
        ev("segment_alloc", 3 * gb, 0, stream=5),
        ev("alloc", gb // 4, 0, stream=5, line=1),
        ev("alloc", gb, gb, stream=5, line=2),
        ev("free_completed", gb // 4, 0, stream=5),
        ev("alloc", gb // 2, 0, stream=5, line=3),  # the most live at once: lines 2, 3 and 4, 1.75 GB
        ev("alloc", gb // 4, 2 * gb, stream=5, line=4),
        ev("free_completed", gb, gb, stream=5),
        ev("free_completed", gb // 2, 0, stream=5),
        ev("free_completed", gb // 4, 2 * gb, stream=5),
        ev("segment_alloc", gb, 8 * gb),
        ev("alloc", gb, 8 * gb),
    ]
    got = trace_peak_report(trace)["stream_peaks"]
    assert list(got) == [5] and got[5]["live_peak_gb"] == 1.75
    assert [r[1] for r in got[5]["top"]] == [1.0, 0.5, 0.25]
    assert got[5]["top"][0][0] == "accel/lora_fused.py:2 f"
    assert "stream 5: live peaked at 1.750 GB" in capsys.readouterr().out


def test_the_memory_trace_names_the_free_gaps_at_the_peak_and_what_left_them(monkeypatch, capsys):
    """Reserved-but-free memory of a stream at the reserved peak: the gaps between live blocks inside its mapped
    ranges (expandable segments map in pieces), each with the code whose block was freed there last."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from memory_trace import trace_peak_report

    mb = 2**20

    ev = _ev

    trace = [
        ev("segment_map", 100 * mb, 0),
        ev("segment_map", 100 * mb, 100 * mb),  # adjacent: one range
        ev("alloc", 40 * mb, 0, line=1),
        ev("alloc", 60 * mb, 40 * mb, line=2),
        ev("alloc", 50 * mb, 100 * mb, line=3),
        ev("free_completed", 60 * mb, 40 * mb),  # a 60 MB gap left by line 2
        ev("alloc", 1 * mb, 40 * mb, line=4),  # ...then 59 MB of it
        ev("segment_map", 10 * mb, 300 * mb),  # a range never used
        ev("alloc", 1 * mb, 150 * mb, line=5),  # 49 MB after it, a gap no block ever held
    ]
    got = trace_peak_report(trace)["holes"][0]
    assert got["free_gb"] == round(118 * mb / 2**30, 3)
    assert got["bins_mb"] == {"< 2 MB": 0, "2-32 MB": 10, "32-128 MB": 108, ">= 128 MB": 0}
    assert got["top"] == [[59.0, "accel/graphs.py:2 f"], [49.0, "never used"], [10.0, "never used"]]
    assert "0.115 GB free in 3 gaps" in capsys.readouterr().out


def test_the_free_gaps_leave_out_unmapped_memory_other_streams_and_later_events(monkeypatch):
    """An unmapped piece is no gap (and a block freed where memory was unmapped and mapped again left no gap),
    another stream's blocks do not fill this stream's gaps, and events after the reserved peak do not count."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from memory_trace import trace_peak_report

    mb = 2**20

    ev = _ev

    trace = [
        ev("segment_map", 300 * mb, 0),
        ev("alloc", 100 * mb, 0, line=1),
        ev("alloc", 100 * mb, 100 * mb, line=2),
        ev("alloc", 100 * mb, 200 * mb, line=3),
        ev("free_completed", 100 * mb, 100 * mb),
        ev("segment_unmap", 60 * mb, 100 * mb),  # 40 MB of line 2's block stays mapped: that gap is line 2's
        ev("free_completed", 100 * mb, 200 * mb),
        ev("segment_unmap", 100 * mb, 200 * mb),
        ev("segment_map", 100 * mb, 400 * mb),  # mapped anew: free, nothing ever freed there
        ev("segment_map", 50 * mb, 600 * mb),
        ev("alloc", 50 * mb, 600 * mb, line=4),
        ev("free_completed", 50 * mb, 600 * mb),
        ev("segment_unmap", 50 * mb, 600 * mb),
        ev("segment_map", 50 * mb, 600 * mb),  # mapped again where line 4's block was: that block left no gap
        ev("segment_map", 100 * mb, 1000 * mb, stream=9),  # the peak: 340 MB reserved
        ev("alloc", 100 * mb, 1000 * mb, stream=9),  # ...with the block it was mapped for
        ev("free_completed", 100 * mb, 1000 * mb, stream=9),  # after the peak: none of these count
        ev("alloc", 20 * mb, 170 * mb),
        ev("segment_unmap", 100 * mb, 400 * mb),
    ]
    got = trace_peak_report(trace)["holes"]
    assert set(got) == {0, 9} and got[9]["free_gb"] == 0.0
    assert got[0]["top"] == [[100.0, "never used"], [50.0, "never used"], [40.0, "accel/graphs.py:2 f"]]
    assert got[0]["bins_mb"] == {"< 2 MB": 0, "2-32 MB": 0, "32-128 MB": 190, ">= 128 MB": 0}
