"""The quality benchmarks' GPU half: for each domain, train an adapter with lorag's trainer on the
training set `lorag synth` made, then answer the exported test prompts with the base model and with
that adapter (the product's HFGenerator, greedy, the serving settings), both arms in one process
and dtype. Bring OUT back, `lorag adapters import OUT/<domain>/adapter`, then
`benchmarks/eval_answers.py import` and `lorag eval` score the answers on identical passages.

    python benchmarks/gpu_quality_job.py MODEL_DIR OUT NAME=DATASET_DIR:RECIPE.yaml:PROMPTS.jsonl [...]
        [--dtype float32] [--batch 32]

NAME names the run (a domain, or a variant such as pydocs-p09); the recipe names the domain.
OUT/<NAME>/: adapter/ (PEFT folder), result.json (training metrics), answers.jsonl ({id, arm, answer}).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("out", type=Path)
    ap.add_argument("jobs", nargs="+", help="NAME=DATASET_DIR:RECIPE.yaml:PROMPTS.jsonl")
    ap.add_argument("--dtype", default="float32", help="generation dtype (the CPU serves float32)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--skip-train", action="store_true", help="answer with OUT/<domain>/adapter trained before")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the script")
    a = ap.parse_args()

    import torch

    from assistant.adapters import attach_adapters
    from assistant.generation import HFGenerator
    from assistant.settings_pipeline import ModelSettings
    from finetune.config import load_train_config
    from finetune.train import train_adapter

    for job in a.jobs:
        name, rest = job.split("=", 1)
        data_dir, recipe, prompts = rest.split(":")
        out = a.out / name
        out.mkdir(parents=True, exist_ok=True)
        if not a.skip_train:
            cfg = load_train_config(Path(recipe))
            held = Path(data_dir) / "heldout_examples.jsonl"
            t0 = time.perf_counter()
            res = train_adapter(
                cfg,
                model_path=a.model,
                train_file=Path(data_dir) / "train.jsonl",
                eval_file=held if held.is_file() else None,
                run_dir=out / "run",
                device=a.device,
            )
            metrics = {k: v for k, v in res.metrics.items() if "curve" not in k}
            (out / "result.json").write_text(
                json.dumps(
                    {"metrics": metrics, "hyperparameters": res.hyperparameters, "wall_s": time.perf_counter() - t0},
                    indent=1,
                    default=str,
                )
            )
            import shutil

            shutil.copytree(res.adapter_dir, out / "adapter", dirs_exist_ok=True)
            print(
                json.dumps(
                    {
                        "run": name,
                        **{
                            k: metrics.get(k)
                            for k in ("train_loss", "eval_loss", "train_seconds", "train_rows", "rows_over_max_length")
                        },
                    }
                ),
                flush=True,
            )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(a.model)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype)).to(a.device).eval()
        model, _ = attach_adapters(model, {name: out / "adapter"})
        gen = HFGenerator(model, tok, ModelSettings(device=a.device), name=a.model)
        rows = [json.loads(x) for x in Path(prompts).read_text().splitlines() if x.strip()]
        t0 = time.perf_counter()
        with (out / "answers.jsonl").open("w") as fh:
            for start in range(0, len(rows), a.batch):
                chunk = rows[start : start + a.batch]
                batch = [r["messages"] for r in chunk for _ in (0, 1)]
                names = [arm for _ in chunk for arm in (None, name)]  # base and adapter rows side by side
                for i, text in enumerate(gen.generate_batch(batch, adapters=names)):
                    fh.write(
                        json.dumps(
                            {"id": chunk[i // 2]["id"], "arm": "base" if i % 2 == 0 else "adapter", "answer": text}
                        )
                        + "\n"
                    )
        print(
            json.dumps({"run": name, "answered": len(rows), "generate_s": round(time.perf_counter() - t0, 1)}),
            flush=True,
        )
        del model, gen
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
