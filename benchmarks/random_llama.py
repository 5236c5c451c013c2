"""Llama models with random weights at the shapes of real ones, for the training benchmark
(benchmarks/bench_train_gpu.py --random-1b / --random-8b): the tokenizer given sets the vocabulary, so
the training data is the same as with the real small model.

The weights are built once (on the GPU where there is one), saved as bf16 safetensors and shared by
every arm; a folder already holding the same build is reused (`built.json` records what was built).
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from pathlib import Path

# Llama-3.2-1B shapes (as this benchmark has always built them: no rope scaling, default norm eps).
LLAMA_1B = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    rope_theta=500000.0,
    tie_word_embeddings=True,
)
# Llama-3.1-8B's config.json: untied output head, llama3 rope scaling to 128k positions.
LLAMA_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    rope_scaling=dict(
        rope_type="llama3",
        factor=8.0,
        low_freq_factor=1.0,
        high_freq_factor=4.0,
        original_max_position_embeddings=8192,
    ),
    tie_word_embeddings=False,
)
RANDOM_LLAMAS = {"1b": LLAMA_1B, "8b": LLAMA_8B}


def random_llama_config(tokenizer, size: str):
    """The LlamaConfig of `size` ("1b" or "8b") with the tokenizer's vocabulary and special tokens."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **RANDOM_LLAMAS[size],
    )


@contextlib.contextmanager
def _default_dtype(dtype):
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_random_llama(tokenizer_path: str, out: Path, size: str) -> str:
    """The model folder: `size`'s shapes, seed 0, bf16 safetensors and the tokenizer, in `out`."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    cfg = random_llama_config(tok, size)
    stamp = json.dumps({"size": size, "seed": 0, "config": cfg.to_dict()}, sort_keys=True, default=str)
    marker = out / "built.json"
    if marker.exists() and marker.read_text() == stamp:
        print(f"== random-{size}: reusing {out}", flush=True)
        return str(out)
    marker.unlink(missing_ok=True)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if size == "1b":  # float32 init then bf16, as the 1B figures in RESULTS.md were built
        with torch.device(device):
            model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    else:  # built in bf16 directly: 16 GB on the GPU for 8B, not 32 GB plus a bf16 copy
        with torch.device(device), _default_dtype(torch.bfloat16):
            model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the arms' processes get the whole GPU
    marker.write_text(stamp)
    secs = time.perf_counter() - t0
    print(f"== random-{size}: {n / 1e9:.2f}B parameters built and saved in {secs:.0f} s", flush=True)
    return str(out)
