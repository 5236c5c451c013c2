"""Train a domain adapter on a GPU machine with lorag's trainer (the code `lorag train` runs), without
the store or the registry there; bring the run folder back and register it with `lorag adapters import`.

    python benchmarks/gpu_adapter_job.py MODEL_DIR TRAIN.jsonl HELDOUT.jsonl OUT_DIR [--domain D] [--config RECIPE.yaml]

OUT_DIR gets adapter/ (a plain PEFT folder), result.json (metrics + hyperparameters) and log.jsonl.
"""

import argparse
import json
from pathlib import Path

from finetune.config import load_train_config
from finetune.train import train_adapter

ap = argparse.ArgumentParser()
for name in ("model", "train", "heldout", "out"):
    ap.add_argument(name)
ap.add_argument("--domain", default="handbook")
ap.add_argument("--config", type=Path, default=None)
a = ap.parse_args()
cfg = load_train_config(a.config, domain=a.domain)
heldout = Path(a.heldout) if a.heldout != "-" else None
res = train_adapter(
    cfg, model_path=a.model, train_file=Path(a.train), eval_file=heldout, run_dir=Path(a.out), device="cuda"
)
print(json.dumps({k: v for k, v in res.metrics.items() if "curve" not in k}, default=str))
