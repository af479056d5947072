"""ReInit: re-draw the top L transformer blocks and the pooler (study A, section 5).

Linear and Embedding weights from N(0, initializer_range), biases 0, LayerNorm weight 1 and
bias 0, done here with `torch.nn.init`: transformers' own `_init_weights` skips parameters
it has flagged as initialized, so it can silently do nothing.
"""
import torch
from torch import nn

from stabilize import layers
from stabilize.strategies.base import Strategy


def reinitialize(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ReInit(Strategy):
    """Re-initialize the top `num_layers` blocks, and the pooler when `pooler` (if the model has one)."""

    def __init__(self, num_layers: int = 1, pooler: bool = True):
        if not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"num_layers must be a non-negative integer, got {num_layers!r}")
        self.num_layers, self.pooler = num_layers, pooler

    @torch.no_grad()
    def setup(self, module):
        model = module.model
        stack = layers.blocks(model)
        if self.num_layers > len(stack):
            raise self.error("num_layers", f"{self.num_layers} is more than the model's {len(stack)} layers")
        std = model.config.initializer_range
        for block in stack[len(stack) - self.num_layers:]:
            reinitialize(block, std)
        pool = layers.pooler(model)
        if self.pooler and pool is not None:  # RoBERTa-style models have none
            reinitialize(pool, std)
