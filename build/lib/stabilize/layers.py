"""Where a parameter sits in an encoder classifier: embeddings, block i, pooler or head.

The layer-aware methods (study A, section 5: ReInit, LLRD, prior weight decay; study B,
section 2: gradual unfreezing, the per-layer monitor) and the weight-change analysis (study A,
section 6) all ask this module, the one place that knows the families' layouts. It reads them
off the module tree, so BERT, RoBERTa/XLM-R, ELECTRA, DeBERTa-v2/v3, DistilBERT and ModernBERT
need no table of paths:

- blocks: the base model's one ModuleList with a block per layer (`config.num_hidden_layers`):
  `encoder.layer` (BERT, RoBERTa, ELECTRA, DeBERTa), `transformer.layer` (DistilBERT),
  `layers` (ModernBERT);
- pooler: a module named `pooler`, in the base model (BERT) or beside it (DeBERTa); RoBERTa,
  ELECTRA and DistilBERT have none;
- embeddings: every other base-model tensor, all used below the first block (DeBERTa's
  relative-position embeddings and their LayerNorm, ELECTRA's embedding projection);
- head: everything outside the base model, new at fine-tuning (RoBERTa's and ELECTRA's
  two-layer head, DistilBERT's pre_classifier and classifier).

Where the names do not say it, the `_PLACED` table does: ModernBERT's pooler is its final norm
and its pre-trained `head`; DeBERTa-v2-xlarge's convolution runs after block 0. A model whose
layers share one block (ALBERT) has no such answer: `check` refuses it.
"""
import weakref
from dataclasses import dataclass

from torch import nn

from stabilize.errors import ConfigError

# Parameters that get no weight decay (plain or toward the pre-trained weights): biases and
# normalization layers, named `LayerNorm` (BERT family), `*layer_norm` (DistilBERT) or `*norm`
# (ModernBERT).
NO_DECAY = ("bias", "LayerNorm.weight", "norm.weight")

# Modules whose layer their names do not say, per family: module name -> layer.
_PLACED = {"modernbert": {"model.final_norm": "pooler", "head": "pooler"},
           "deberta-v2": {"deberta.encoder.conv": "layer.0"}}


@dataclass(frozen=True)
class Layout:
    blocks: str               # the ModuleList of blocks, e.g. "bert.encoder.layer"
    placed: dict[str, str]    # module name -> its layer ("blocks": one per entry), first match wins


_layouts: "weakref.WeakKeyDictionary[nn.Module, Layout]" = weakref.WeakKeyDictionary()


def check(model: nn.Module, key: str = "model") -> Layout:
    """The model's layout; a ConfigError starting with `key` (the config key of the method
    that asks) when it has none."""
    if model not in _layouts:
        _layouts[model] = _read(model, key)
    return _layouts[model]


def _read(model: nn.Module, key: str) -> Layout:
    config, base = model.config, model.base_model_prefix
    n = config.num_hidden_layers
    lists = [name for name, m in model.get_submodule(base).named_modules()
             if isinstance(m, nn.ModuleList) and len(m) == n and len({type(b) for b in m}) == 1]
    if len(lists) > 1:
        raise ConfigError(f"{key}: {config.model_type} has several lists of {n} blocks ({', '.join(lists)}); "
                          f"cannot tell which are its layers")
    if not lists or _shares_tensors(model.get_submodule(f"{base}.{lists[0]}")):
        raise ConfigError(f"{key}: {config.model_type} has no block of its own for each of its {n} layers "
                          f"(its layers share weights, as ALBERT's do); this needs one block per layer")
    placed = {**{p: "pooler" for p in ("pooler", f"{base}.pooler")}, **_PLACED.get(config.model_type, {}),
              f"{base}.{lists[0]}": "blocks", base: "embeddings"}
    return Layout(f"{base}.{lists[0]}", placed)


def _shares_tensors(stack: nn.ModuleList) -> bool:
    ids = [id(p) for block in stack for p in block.parameters()]
    return len(ids) != len(set(ids))


def blocks(model) -> nn.ModuleList:
    """The transformer blocks, bottom to top."""
    return model.get_submodule(check(model).blocks)


def layer_of(model, name: str) -> str:
    """'embeddings', 'layer.<i>', 'pooler' or 'head' for a parameter name of `model` (also one
    added after loading, e.g. an adapter's): the first module in the layout that holds it."""
    for module, layer in check(model).placed.items():
        if name.startswith(module + "."):
            return "layer." + name[len(module) + 1:].split(".", 1)[0] if layer == "blocks" else layer
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
    names = dict.fromkeys(layer_of(model, name) for name, _ in model.named_parameters())
    return sorted(names, key=lambda layer: (depth(model, layer), layer == "head"))
