"""Where a parameter sits in a BERT-style classifier: embeddings, block i, pooler, or head.

Works for any HF model with `base_model.embeddings` and `base_model.encoder.layer`
(BERT, MiniLM, RoBERTa; RoBERTa-style models have no pooler).
"""
import re

import torch

# Parameters that get no weight decay (plain or toward the pre-trained weights).
NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layer_norm.weight", "layer_norm.bias")
_BLOCK = re.compile(r"encoder\.layer\.(\d+)\.")


def blocks(model) -> torch.nn.ModuleList:
    return model.base_model.encoder.layer


def pooler(model) -> torch.nn.Module | None:
    return getattr(model.base_model, "pooler", None)


def layer_of(model, name: str) -> str:
    """'embeddings', 'layer.<i>', 'pooler' or 'head' for a parameter name of `model`."""
    prefix = model.base_model_prefix + "."
    if not name.startswith(prefix):
        return "head"
    rest = name[len(prefix):]
    m = _BLOCK.match(rest)
    if m:
        return f"layer.{m.group(1)}"
    if rest.startswith("embeddings."):
        return "embeddings"
    if rest.startswith("pooler."):
        return "pooler"
    return "head"


def depth(model, layer: str) -> int:
    """0 for embeddings, i + 1 for block i, L + 1 for pooler and head (the top)."""
    if layer == "embeddings":
        return 0
    if layer.startswith("layer."):
        return int(layer.split(".")[1]) + 1
    return len(blocks(model)) + 1


def ordered_layers(model) -> list[str]:
    """Layer names from the bottom (embeddings) to the top (head)."""
    names = dict.fromkeys(layer_of(model, n) for n, _ in model.named_parameters())
    return sorted(names, key=lambda layer: (depth(model, layer), layer == "head"))
