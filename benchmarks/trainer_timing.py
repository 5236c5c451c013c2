"""One trl trainer's timed training and held-out evaluation (benchmarks/bench_train_gpu.py's plain trl and
Unsloth arms): seconds, tokens/s over the rows' real tokens, peak memory of the training, held-out loss."""

from __future__ import annotations

import contextlib
import time

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from train_profile import peak_gb
from train_rows import real_tokens


def timed_train(trainer, tok, rows, args, attention: str = "") -> dict:
    import torch

    cuda = torch.cuda.is_available()
    backend = contextlib.nullcontext()  # torch's own choice, as plain trl and Unsloth leave it
    if attention:
        from finetune.accel.layers import sdpa_backend

        backend = sdpa_backend(attention, "cuda" if cuda else "cpu")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with backend:
        trainer.train()
    if cuda:
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    peak, reserved = peak_gb()  # training only, as lorag's figures
    ev = trainer.evaluate()
    n_tok = real_tokens(rows, tok) * args.epochs
    return {
        "seconds": secs,
        "tokens": n_tok,
        "tokens_per_s": n_tok / secs,
        "peak_gb": peak,
        "reserved_gb": reserved,
        "eval_loss": ev["eval_loss"],
    }
