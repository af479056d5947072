"""BERTAdam: the original BERT optimizer, Adam without bias correction (study A, section 4).

Without the correction the first steps are larger than Adam's by (1 - beta1) / sqrt(1 - beta2)
(about 3.2 at the defaults), which makes many few-sample runs fail.
"""
import torch

from stabilize.optimizers import closure_loss
from stabilize.strategies.base import Strategy


class BertAdamOptimizer(torch.optim.Optimizer):
    """Adam with decoupled weight decay and no bias correction, as in the BERT code: the decay is
    added to the update (of the weight before the step). Study A's `--use_bertadam` runs
    transformers' AdamW with `correct_bias=False`, which decays the weight after the step: the same
    numbers at its weight decay, 0 (stabilize/optimizers.py)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0):
        if lr <= 0 or eps <= 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError(f"invalid BertAdam settings lr={lr} betas={betas} eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if not self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p)
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            beta1, beta2 = group["betas"]
            torch._foreach_lerp_(m, grads, 1 - beta1)
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
            update = torch._foreach_sqrt(v)
            torch._foreach_add_(update, group["eps"])
            update = torch._foreach_div(m, update)
            if group["weight_decay"]:
                torch._foreach_add_(update, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, update, alpha=-group["lr"])
        return loss


class BERTAdam(Strategy):
    """Replace AdamW by BertAdamOptimizer with the run's lr, betas, eps and weight decay."""

    def build_optimizer(self, module, groups):
        o = module.optim
        return BertAdamOptimizer(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
