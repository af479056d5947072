"""ReInit: re-draw the top L transformer blocks and the pooler (study A, section 5).

Linear and Embedding weights (and DeBERTa-v2-xlarge's Conv1d, a Linear over a window) from
N(0, initializer_range), biases 0, norm weights 1 and biases 0, done here with
`torch.nn.init`: transformers' own `_init_weights` skips parameters it has flagged as
initialized, so it can silently do nothing. The tensors are chosen one way of three: the top
`num_layers` blocks, a list of `blocks` (0 = the lowest), or the parameters whose names match
the regular expression `pattern`; the pooler is added when `pooler` is true (the head is new
anyway). `stabilize.layers` says where the blocks and the pooler are, for every family.
"""
import re

import torch
from torch import nn

from stabilize import layers
from stabilize.errors import is_int
from stabilize.strategies.base import Strategy

_NORMS = (nn.LayerNorm, nn.RMSNorm)


def law(module: nn.Module, p: nn.Parameter, std: float):
    """The paper's re-draw of parameter `p` of `module`, or None for a module it does not cover."""
    if isinstance(module, _NORMS):
        return nn.init.ones_ if p is module.weight else nn.init.zeros_
    if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d)):
        return (lambda t: nn.init.normal_(t, mean=0.0, std=std)) if p is module.weight else nn.init.zeros_
    return None


def owners(model: nn.Module, names: set[str]):
    """(module, parameter, name) for each parameter in `names`, in module order."""
    for prefix, m in model.named_modules():
        for name, p in m.named_parameters(prefix=prefix, recurse=False):
            if name in names:
                yield m, p, name


class ReInit(Strategy):
    """Re-initialize the top `num_layers` blocks (default 1), or the `blocks` listed, or the
    tensors matching `pattern`; and the pooler when `pooler` (if the model has one)."""

    def __init__(self, num_layers: int | None = None, blocks: list[int] | None = None,
                 pattern: str | None = None, pooler: bool = True):
        chosen = [k for k, v in (("num_layers", num_layers), ("blocks", blocks), ("pattern", pattern))
                  if v is not None]
        if len(chosen) > 1:
            raise ValueError(f"{' and '.join(chosen)} are set together; choose one way (num_layers, blocks "
                             f"or pattern) and set the others to null")
        if num_layers is not None and not (is_int(num_layers) and num_layers >= 0):
            raise ValueError(f"num_layers must be a non-negative integer, got {num_layers!r}")
        if blocks is not None and not (isinstance(blocks, (list, tuple))
                                       and all(is_int(b) and b >= 0 for b in blocks)):
            raise ValueError(f"blocks must be a list of block indices (0 = the lowest), got {blocks!r}")
        if pattern is not None:
            try:
                pattern = re.compile(pattern)
            except (re.error, TypeError) as e:
                raise ValueError(f"pattern: {pattern!r} is not a regular expression ({e})") from None
        self.way = chosen[0] if chosen else "num_layers"  # the field that chose the tensors
        self.num_layers = 1 if not chosen else num_layers
        self.blocks, self.pattern, self.pooler = blocks, pattern, pooler

    def targets(self, model) -> set[str]:
        """Names of the parameters to re-draw."""
        named = dict(model.named_parameters())
        if self.pattern is not None:
            names = {name for name in named if self.pattern.search(name)}
            if not names:
                raise self.error("pattern", f"{self.pattern.pattern!r} matches no parameter name "
                                            f"(they look like {next(iter(named))!r})")
        else:
            n = len(layers.blocks(model))
            if self.blocks is None and self.num_layers > n:
                raise self.error("num_layers", f"{self.num_layers} is more than the model's {n} layers")
            if self.blocks is not None and any(b >= n for b in self.blocks):
                raise self.error("blocks", f"{self.blocks} names a block beyond the model's {n} (0 to {n - 1})")
            chosen = {f"layer.{i}" for i in (range(n - self.num_layers, n) if self.blocks is None else self.blocks)}
            names = {name for name in named if layers.layer_of(model, name) in chosen}
        if self.pooler:
            names |= {name for name in named if layers.layer_of(model, name) == "pooler"}
        return names

    @torch.no_grad()
    def setup(self, module):
        model = module.model
        layers.check(model, f"method.strategies.{self.key}")
        std = model.config.initializer_range
        draws = [(law(m, p, std), p, name) for m, p, name in owners(model, self.targets(model))]
        unknown = [name for redraw, _, name in draws if redraw is None]
        if unknown:
            raise self.error(self.way, f"cannot re-draw {unknown}: ReInit knows Linear, Embedding, Conv1d and norm layers")
        for redraw, p, _ in draws:
            redraw(p)
