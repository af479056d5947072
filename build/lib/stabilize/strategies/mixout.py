"""Mixout (Lee et al. 2020; study A, section 5): mix each Linear weight toward its pre-trained value.

With M ~ Bernoulli(1 - p), one draw per input unit (a weight column), fresh at every forward:
W~ = ((1 - M) W0 + M W - p W0) / (1 - p) = W0 + M (W - W0) / (1 - p), so E[W~] = W and the
gradient flows through M W only. Evaluation uses W. Dropout is set to 0 while Mixout is on:
the nn.Dropout modules, and the rates that attention kernels read from a float attribute
(ModernBERT's `attention_dropout`). Every family's Linear layers are replaced, head included.
"""
import torch
import torch.nn.functional as F
from torch import nn

from stabilize.strategies.base import Strategy


class MixLinear(nn.Linear):
    """A Linear layer whose weight is mixed with `target` (kept once, as a buffer) in training."""

    def __init__(self, linear: nn.Linear, p: float):
        nn.Module.__init__(self)  # not nn.Linear's: its random init would draw from the global RNG
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.register_buffer("target", linear.weight.detach().clone(), persistent=False)
        self.p = p

    def mixed_weight(self) -> torch.Tensor:
        if not self.training:
            return self.weight
        keep = torch.empty(1, self.in_features, device=self.weight.device, dtype=self.weight.dtype)
        keep.bernoulli_(1 - self.p)
        return torch.addcmul(self.target, self.weight - self.target, keep, value=1 / (1 - self.p))

    def forward(self, x):
        return F.linear(x, self.mixed_weight(), self.bias)


class Mixout(Strategy):
    """Replace every nn.Linear of the model by a MixLinear with probability `p`; dropout off."""

    def __init__(self, p: float = 0.1):
        if not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = p

    def setup(self, module):
        model = module.model
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, MixLinear(child, self.p))
        dropout_off(model)


def dropout_off(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        for attr in [a for a, v in vars(m).items() if a.endswith("dropout") and isinstance(v, float)]:
            setattr(m, attr, 0.0)
