"""The in-process generator on CUDA: generate_batch's on_done looks for end tokens every 8th token there (each look
waits for the device), so a row that ends early is told at the next look while the batch still generates, a row cut
at the token limit when the batch returns; each row once, and the answers are as without on_done. Runs only where
CUDA is present (tests/test_finetune_lora.py has the CPU form, where every token is looked at)."""

from __future__ import annotations

import pytest

from assistant.generation import HFGenerator
from assistant.settings_pipeline import ModelSettings
from tests.helpers.tiny_lm import build_tiny_lm

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

QUESTIONS = ["What colour is the lobby lanyard?", "How many sick days need no note?", "Who approves overtime?"]


def rows_told(folder, device: str, every: int) -> None:
    """The check of the module docstring on `device`, whose generator looks every `every` tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():  # sharper weights: the random model's rows then differ (not one token repeated)
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(10.0)
    model.to(device)
    limit = max(12, 2 * every + every // 2)  # rows cut at the limit run past two looks
    gen = HFGenerator(
        model, AutoTokenizer.from_pretrained(folder), ModelSettings(max_new_tokens=limit, repetition_penalty=1.0)
    )
    msgs = [[{"role": "user", "content": q}] for q in QUESTIONS]
    steps: list[int] = []  # one entry per forward pass: one per token generated
    model.register_forward_hook(lambda *_: steps.append(len(steps) + 1))
    generate, made = model.generate, []
    model.generate = lambda **kw: made.append((kw["input_ids"].shape[1], generate(**kw))) or made[-1][1]
    model.generation_config.eos_token_id = [10**6]  # no end token ever: every row runs to the token limit
    plain = gen.generate_batch(msgs)
    prompt, out = made[-1]
    rows = out[:, prompt:].tolist()
    end = rows[0][1]  # row 0's second token becomes the end token (and ends any row that writes it)
    model.generation_config.eos_token_id = [end]
    ends = {i: (r.index(end) + 1 if end in r else None) for i, r in enumerate(rows)}  # the token each row ends at
    if any(ends[i] is not None for i in (1, 2)):
        pytest.skip(f"the random model's rows share row 0's second token: {ends}")
    steps.clear()
    told: list[tuple[int, int]] = []  # (row, forward passes so far)
    answers = gen.generate_batch(msgs, on_done=lambda i: told.append((i, len(steps))))
    assert sorted(i for i, _ in told) == [0, 1, 2]  # each row once
    assert len(steps) == limit and dict(told)[1] == dict(told)[2] == limit  # cut at the limit: told at the end
    first_look = -(-ends[0] // every) * every  # the first look at or after row 0's end token
    assert dict(told)[0] == first_look < limit, (ends, told)  # told while the other rows still generate
    assert answers == gen.generate_batch(msgs) and answers[1:] == plain[1:]  # as without on_done


def test_a_batch_on_cuda_says_when_each_row_ends(tmp_path):
    rows_told(build_tiny_lm(tmp_path / "tiny-lm"), "cuda", every=8)
