"""A random-init tiny BERT saved as a plain sentence-transformers folder (Transformer -> mean pooling -> Normalize)."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = (
    "the a of to and in is for on with leave days staff badge visitors parking permit euros month hotel train "
    "policy travel remote work monitor allowance lamp door scan reset password account settings email link"
).split()


def build_tiny_embedder(folder: Path, seed: int = 0, init_std: float = 0.02, int8_outliers: bool = False) -> Path:
    """`init_std`: the weights' random scale. At BERT's 0.02 a 2-layer model is nearly linear, so even int8
    weights and activations give the same vectors (cosine > 0.9999). `int8_outliers`: every LayerNorm's first
    channel is zero and the Linears that read LayerNorm outputs get a large weight on that channel: float32 gives
    the same vectors (the channel is zero), but int8's one scale per weight row, set by the outlier, leaves the
    row's other weights a few levels, so int8 moves the vectors as it moves a trained model's, on any CPU (the
    weights are quantized offline, the same everywhere)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *WORDS,
        *"abcdefghijklmnopqrstuvwxyz0123456789.,?!'",
        *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"),
    ]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tok.model_max_length = 128
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=init_std,
    )
    model = BertModel(cfg).eval()
    if int8_outliers:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.LayerNorm):
                    m.weight[0], m.bias[0] = 0.0, 0.0
            for layer in model.encoder.layer:  # the Linears whose input is a LayerNorm's output
                for lin in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
                    lin.weight[:, 0] = 50 * init_std
                layer.intermediate.dense.weight[:, 0] = 50 * init_std
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    return folder
