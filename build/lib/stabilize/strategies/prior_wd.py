"""Pre-trained weight decay (L2-SP, Wiese et al.; study A, section 5).

After each optimizer step, p <- p - lr * strength * (p - p0) with p0 the weights at the start
of fine-tuning, for every weight except biases, norm layers and the new head (it has no
pre-trained value); `stabilize.layers` names them for every family. `lr` is the parameter's
current, scheduled learning rate.
"""
import torch

from stabilize import layers
from stabilize.layers import NO_DECAY
from stabilize.strategies.base import Strategy


class PriorWeightDecay(Strategy):
    def __init__(self, strength: float = 0.01):
        if strength < 0:
            raise ValueError(f"strength must be >= 0, got {strength!r}")
        self.strength = strength
        self.prior: dict[torch.nn.Parameter, torch.Tensor] = {}

    def setup(self, module):
        model = module.model
        layers.check(model, f"method.strategies.{self.key}")
        self.prior = {p: p.detach().clone() for name, p in model.named_parameters()
                      if not name.endswith(NO_DECAY) and layers.layer_of(model, name) != "head"}

    @torch.no_grad()
    def after_optimizer_step(self, module, optimizer):
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p in self.prior]
            if not params:
                continue
            priors = [self.prior[p] for p in params]
            if priors[0].device != params[0].device:
                priors = [t.to(params[0].device) for t in priors]
                self.prior.update(zip(params, priors))
            torch._foreach_lerp_(params, priors, group["lr"] * self.strength)  # p += w (p0 - p)
