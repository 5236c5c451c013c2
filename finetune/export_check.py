"""Is an exported adapter the adapter? Loaded back, it must answer three fixed prompts as the registry's
adapter does when applied unmerged on its base model.

The reference: the base model with the adapter attached by peft (unmerged), greedy, `NEW_TOKENS` new tokens
per prompt (the serving prompt format, assistant/prompt.py), and its logits along each answer. An export
passes when its own greedy answers are the same tokens (peft, merged, GGUF in f32). A GGUF in f16 passes
when its logits along the reference answers are within `F16_TOL`. In llama.cpp (over a GGUF base, which is
quantized), the adapter's effect must match transformers' beyond the base's own difference between the
two runtimes:
    |llama.cpp(base+LoRA) - HF(base+LoRA)|
        <= |llama.cpp(base) - HF(base)| + LLAMA_CPP_SHARE * |HF(base+LoRA) - HF(base)|.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

NEW_TOKENS = 24
F16_TOL = 0.05  # largest logit difference for an adapter stored in f16
LLAMA_CPP_SHARE = 0.25  # share of the adapter's own effect that llama.cpp may differ by, beyond the base's difference


@dataclass
class _Passage:
    n: int
    text: str
    source: str

    @property
    def ref(self) -> str:
        return self.source


CHECK_PROMPTS = (
    (
        "How many days of annual leave do full-time staff receive?",
        [
            _Passage(
                1,
                "Full-time staff receive 27 days of annual leave each year. Part-time staff receive a pro-rata share.",
                "leave.md",
            )
        ],
    ),
    (
        "What does error code E-42 mean?",
        [
            _Passage(1, "code: E-17, meaning: lamp failure", "codes.csv"),
            _Passage(2, "code: E-42, meaning: door open during scan", "codes.csv"),
        ],
    ),
    (
        "Who approves overtime?",
        [_Passage(1, "Overtime must be approved in advance by the team lead and is paid at 150%.", "overtime.md")],
    ),
)


def check_prompts(tokenizer: Any) -> list[list[int]]:
    from assistant.prompt import build_messages

    out = []
    for question, passages in CHECK_PROMPTS:
        ids = tokenizer.apply_chat_template(
            build_messages(question, passages), add_generation_prompt=True, tokenize=True
        )
        out.append(list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids))
    return out


class Checker:
    """Holds the reference answers of the unmerged adapter, then checks exports against them."""

    def __init__(self, base_path: str, adapter_dir: Path, *, device: str = "cpu"):
        import torch
        from peft import PeftModel
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar per model load is noise
        self.base_path, self.device = base_path, device
        self.tokenizer = AutoTokenizer.from_pretrained(base_path)
        self.prompts = check_prompts(self.tokenizer)
        self.model = PeftModel.from_pretrained(self.load_base(), str(adapter_dir), is_trainable=False).eval()
        self.dtype_name = str(self.model.get_base_model().dtype).removeprefix("torch.")
        with torch.inference_mode():
            self.answers = [self._greedy(self.model, p) for p in self.prompts]
            self.logits = [self._along(self.model, p, a) for p, a in zip(self.prompts, self.answers)]
            with self.model.disable_adapter():
                self.base_logits = [self._along(self.model, p, a) for p, a in zip(self.prompts, self.answers)]

    def load_base(self) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.base_path, dtype="auto").to(self.device).eval()

    # -- model runs ------------------------------------------------------------------------------
    def _greedy(self, model: Any, prompt: list[int]) -> list[int]:
        import torch

        ids = torch.tensor([prompt], device=self.device)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        return out[0, len(prompt) :].tolist()

    def _along(self, model: Any, prompt: list[int], answer: list[int]) -> Any:
        """The logits that predict each answer token, teacher-forced (float32, on the CPU)."""
        import torch

        ids = torch.tensor([prompt + answer], device=self.device)
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(answer)]
        return logits.float().cpu()

    def compare(self, model: Any, *, need_same_text: bool, tol: float | None = None) -> dict[str, Any]:
        import torch

        rows = []
        with torch.inference_mode():
            for p, a, ref in zip(self.prompts, self.answers, self.logits):
                got = self._greedy(model, p)
                diff = float((self._along(model, p, a) - ref).abs().max()) if a else 0.0
                rows.append({"same_text": got == a, "max_logit_diff": round(diff, 6)})
        worst = max(r["max_logit_diff"] for r in rows)
        same = all(r["same_text"] for r in rows)
        ok = same if need_same_text else (same or (tol is not None and worst <= tol))
        reason = (
            ""
            if ok
            else (
                f"the answer to prompt {next(i for i, r in enumerate(rows) if not r['same_text']) + 1} differs "
                "from the unmerged "
                f"adapter's (largest logit difference {worst:.4g}"
                + (f", tolerance {tol:g})" if tol is not None else ")")
            )
        )
        return {
            "ok": ok,
            "prompts": len(rows),
            "new_tokens": NEW_TOKENS,
            "same_text": same,
            "max_logit_diff": worst,
            "tolerance": tol,
            "rows": rows,
            "reason": reason,
        }

    # -- the formats -----------------------------------------------------------------------------
    def check_peft(self, folder: Path) -> dict[str, Any]:
        from peft import PeftModel

        model = PeftModel.from_pretrained(self.load_base(), str(folder), is_trainable=False).eval()
        return {"method": "peft: PeftModel.from_pretrained over the base", **self.compare(model, need_same_text=True)}

    def save_merged(self, folder: Path) -> None:
        """Merge into the base weights (its dtype) and save with the tokenizer. The reference is already taken."""
        merged = self.model.merge_and_unload()
        merged.save_pretrained(str(folder), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder))
        del self.model  # merged in place: no longer the unmerged reference

    def check_merged(self, folder: Path) -> dict[str, Any]:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto").to(self.device).eval()
        return {
            "method": "merged: AutoModelForCausalLM.from_pretrained, no adapter",
            **self.compare(model, need_same_text=True),
        }

    def check_gguf(self, file: Path, base_config: Any, *, quantized: bool) -> dict[str, Any]:
        from finetune.gguf_lora import peft_model_from_pairs, read_gguf_lora

        pairs, meta = read_gguf_lora(file, base_config)
        model = peft_model_from_pairs(self.load_base(), pairs, meta["alpha"])
        result = self.compare(model, need_same_text=not quantized, tol=F16_TOL if quantized else None)
        return {"method": "gguf: the file read back (gguf reader) and applied over the base", **result}

    def check_llama_cpp(self, file: Path, base_gguf: Path) -> dict[str, Any]:
        """The adapter in llama.cpp itself (llama-cpp-python) over the GGUF base, against transformers."""
        import numpy as np

        try:
            from llama_cpp import Llama
        except ImportError:
            return {"ok": True, "skipped": "llama-cpp-python is not installed", "reason": ""}

        def run(lora: Path | None) -> tuple[list[Any], list[list[int]]]:
            kw: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
            llm = Llama(model_path=str(base_gguf), n_ctx=2048, logits_all=True, verbose=False, seed=0, **kw)
            try:
                along, greedy = [], []
                for p, a in zip(self.prompts, self.answers):
                    llm.reset()
                    llm.eval(p + a)
                    along.append(np.array(llm.scores[len(p) - 1 : len(p) - 1 + len(a)], dtype=np.float32))
                    llm.reset()
                    llm.eval(p)
                    got: list[int] = []
                    for _ in range(NEW_TOKENS):
                        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
                        got.append(tok)
                        if tok == self.tokenizer.eos_token_id:
                            break
                        llm.eval([tok])
                    greedy.append(got)
                return along, greedy
            finally:
                llm.close()

        base_along, _ = run(None)
        lora_along, greedy = run(file)
        rows = []
        for i, a in enumerate(self.answers):
            ref, ref_base = self.logits[i].numpy(), self.base_logits[i].numpy()
            rows.append(
                {
                    "same_text": greedy[i] == a,
                    "base_diff": float(np.abs(base_along[i] - ref_base).max()),  # the runtimes differ on the base alone
                    "lora_diff": float(np.abs(lora_along[i] - ref).max()),  # ... and with the adapter
                    "adapter_effect": float(np.abs(ref - ref_base).max()),  # what the adapter changes in transformers
                }
            )
        worst = max(rows, key=lambda r: r["lora_diff"] - r["base_diff"] - LLAMA_CPP_SHARE * r["adapter_effect"])
        ok = all(r["lora_diff"] <= r["base_diff"] + LLAMA_CPP_SHARE * r["adapter_effect"] for r in rows)
        reason = (
            ""
            if ok
            else (
                f"llama.cpp's logits with the adapter differ from transformers' by {worst['lora_diff']:.3g}, "
                f"more than the base's own difference {worst['base_diff']:.3g} plus {LLAMA_CPP_SHARE:g} of "
                f"the adapter's effect {worst['adapter_effect']:.3g}"
            )
        )
        return {
            "ok": ok,
            "method": f"llama.cpp (llama-cpp-python) over {base_gguf.name}",
            "same_text": all(r["same_text"] for r in rows),
            "rows": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows],
            "reason": reason,
        }
