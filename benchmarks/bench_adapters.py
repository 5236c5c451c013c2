"""Adapter serving: switch latency and mixed-adapter batch throughput, side by side in one run.

    python benchmarks/bench_adapters.py [--model smollm2-135m-instruct] [--adapters 3] [--batch 8] [--tokens 32]

Adapters are LoRA r=16 on all linear layers with random (non-zero) weights: serving cost does not
depend on what they learned. Measures
  - switch latency: peft `set_adapter` (the global switch) and, for lorag's per-request path
    (`adapter_names` in generate), first-token latency after a different adapter vs the same one;
  - mixed batch: tokens/s of one batch whose rows use different adapters (and the base) ÷ the same
    batch on a single adapter. Targets: switch < 5 ms, ratio >= 0.8.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def make_adapters(model_path: str, n: int, out: Path) -> dict[str, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = {}
    for i in range(n):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(model_path)
        peft = get_peft_model(
            base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
        )
        folders[f"a{i}"] = out / f"a{i}"
        peft.save_pretrained(folders[f"a{i}"])
    return folders


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--adapters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.adapters import attach_adapters
    from assistant.generation import HFGenerator
    from assistant.models.cache import ModelCache
    from assistant.models.loading import pick_device
    from assistant.prompt import build_messages
    from assistant.settings import load_settings
    from assistant.settings_pipeline import ModelSettings

    path = (
        args.model if Path(args.model).is_dir() else ModelCache(load_settings().paths.model_cache).resolve(args.model)
    )
    device = pick_device("auto")
    tmp = Path(tempfile.mkdtemp())
    folders = make_adapters(path, args.adapters, tmp)
    model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
    t0 = time.perf_counter()
    model, load_s = attach_adapters(model, folders)
    attach_total = time.perf_counter() - t0
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    gen = HFGenerator(model, tok, ModelSettings(max_new_tokens=args.tokens, repetition_penalty=1.0))
    names = list(folders)

    class P:
        def __init__(self, n: int, text: str):
            self.n, self.text, self.ref = n, text, f"doc{n}.md"

    msgs = [
        build_messages(f"Question number {i}: how many days of leave?", [P(1, "Staff receive 26 days of leave. " * 6)])
        for i in range(args.batch)
    ]

    # 1) global switch
    sw = []
    for _ in range(50):
        for n in names:
            t = time.perf_counter()
            model.set_adapter(n)
            sw.append((time.perf_counter() - t) * 1000)

    # 2) per-request path: first-token latency same vs different adapter
    def first_token(adapter: str | None) -> float:
        t = time.perf_counter()
        it = gen.stream(msgs[0], adapter=adapter, max_new_tokens=2)
        next(it)
        ms = (time.perf_counter() - t) * 1000
        for _ in it:
            pass
        return ms

    first_token(names[0])
    same, diff = [], []
    for r in range(args.repeats * 3):
        same.append(first_token(names[0]))
        diff.append(first_token(names[(r % (len(names) - 1)) + 1] if len(names) > 1 else None))
        first_token(names[0])
    # 2b) the same, as one prefill forward (no dependence on what text the first token decodes to)
    enc1 = gen.encode(msgs[0])

    def prefill(adapter: str) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.inference_mode():
            model(**enc1, adapter_names=[adapter])
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) * 1000

    prefill(names[0])
    p_same, p_diff = [], []
    for r in range(args.repeats * 6):
        p_same.append(prefill(names[0]))
        p_diff.append(prefill(names[(r % (len(names) - 1)) + 1] if len(names) > 1 else names[0]))
        prefill(names[0])
    # 3) batches: tokens/s of one batch, the same prompts and greedy new tokens for every arm
    single = [names[0]] * args.batch
    mixed = [(names + [None])[i % (len(names) + 1)] for i in range(args.batch)]

    def tps(adapters: list[str | None] | None) -> float:
        if adapters is None:  # reference: peft's plain single-adapter forward (active adapter, no per-row names)
            model.set_adapter(names[0])
            enc = gen.tokenizer(
                [gen.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs],
                return_tensors="pt",
                padding=True,
                padding_side="left",
                add_special_tokens=False,
            ).to(model.device)
            t = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**enc, **gen.generation_kwargs(args.tokens))
            n = int((out[:, enc["input_ids"].shape[1] :] != gen.tokenizer.pad_token_id).sum())
            return n / (time.perf_counter() - t)
        gen.generate_batch(msgs, adapters=adapters, max_new_tokens=args.tokens)
        s = gen.last_stats
        return s.new_tokens / s.total_s

    from assistant.lora_batch import disable_gathered_lora, enable_gathered_lora

    arms = {
        "single (peft active adapter)": lambda: tps(None),
        "single (lorag per-row path)": lambda: tps(single),
        "mixed (lorag gathered LoRA)": lambda: tps(mixed),
    }
    for f in arms.values():
        f()  # warm-up
    res = {k: [] for k in [*arms, "mixed (peft per-adapter split)"]}
    for _ in range(args.repeats):  # alternate so drift hits every arm
        for k, f in arms.items():
            res[k].append(f())
        disable_gathered_lora(model)
        res["mixed (peft per-adapter split)"].append(tps(mixed))
        enable_gathered_lora(model)
    med = statistics.median
    print(f"device={device} model={args.model} adapters={len(names)} batch={args.batch} new_tokens={args.tokens}")
    print(
        f"attach {len(names)} adapters: {attach_total * 1000:.0f} ms total "
        f"({', '.join(f'{k} {v * 1000:.0f} ms' for k, v in load_s.items())})"
    )
    print(f"set_adapter switch: median {med(sw):.3f} ms, max {max(sw):.3f} ms  (target < 5 ms)")
    print(
        f"first token, same adapter {med(same):.1f} ms vs after another adapter {med(diff):.1f} ms: "
        f"switch cost {med(diff) - med(same):+.1f} ms (target < 5 ms)"
    )
    print(
        f"prefill forward, same adapter {med(p_same):.2f} ms vs after another adapter {med(p_diff):.2f} ms: "
        f"switch cost {med(p_diff) - med(p_same):+.2f} ms (target < 5 ms)"
    )
    ref = med(res["single (peft active adapter)"])
    print(f"batch of {args.batch} rows, mixed = {mixed}")
    for k, v in res.items():
        print(f"  {k:32s} {med(v):8.1f} tokens/s  ratio to peft single {med(v) / ref:.2f}")
    print(
        f"mixed-adapter batch ÷ single-adapter batch: {med(res['mixed (lorag gathered LoRA)']) / ref:.2f} "
        "(target >= 0.8)"
    )


if __name__ == "__main__":
    main()
