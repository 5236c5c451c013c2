"""Train the handbook adapter on a GPU with lorag's trainer (the same code `lorag train` runs).

    python benchmarks/gpu_adapter_job.py MODEL_DIR TRAIN.jsonl HELDOUT.jsonl OUT_DIR

Used to produce the adapter for the held-out F1 comparison when the CPU is too slow; the adapter
folder is a plain PEFT folder that `lorag` registers like its own.
"""

import json
import sys
from pathlib import Path

from finetune.config import load_train_config
from finetune.train import train_adapter

model, train, heldout, out = sys.argv[1:5]
cfg = load_train_config(domain="handbook")
res = train_adapter(cfg, model_path=model, train_file=Path(train), eval_file=Path(heldout), run_dir=Path(out), device="cuda")
print(json.dumps({k: v for k, v in res.metrics.items() if "curve" not in k}, default=str))
(Path(out) / "metrics.json").write_text(json.dumps({"metrics": res.metrics, "hyperparameters": res.hyperparameters}, default=str))
