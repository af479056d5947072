"""The run's AdamW: `torch.optim.AdamW`, or the papers' (`optim.eps_placement`).

The code of study A (transformers 2.5.0), Mosbach et al. (their fork of transformers 2.5.1,
`mAdamW`), study B (transformers 4.12.5) and ChildTuning (a copy) used the AdamW of
`transformers.optimization`, which differs from `torch.optim.AdamW` in two places:

- eps is added to the root of the second moment *before* bias correction:
  update = lr·√(1−β2^t)/(1−β1^t) · m/(√v + eps) = lr · m̂/(√v̂ + eps/√(1−β2^t)), an effective eps
  31.6× the nominal one at step 1 and 3.2× at step 100 (β2 = 0.999); torch adds eps to √v̂;
- decoupled weight decay is applied *after* the Adam step, to the updated weight
  (p ← p − lr·wd·p), where torch decays the weight before it (p ← p·(1 − lr·wd), then the step):
  a difference of lr²·wd times the step, second order.

`before_correction` builds `TransformersAdamW`, which does both as that code did, op for op;
`after_correction` (the default) builds `torch.optim.AdamW`. BERTAdam (no bias correction,
`strategies/bertadam.py`) has no correction to put eps before or after and keeps its own class.
"""
import math

import torch

AFTER, BEFORE = "after_correction", "before_correction"
EPS_PLACEMENTS = (AFTER, BEFORE)


def closure_loss(closure):
    """The first part of `step(closure)` in every torch optimizer: the closure's loss, with
    gradients on (None without a closure)."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class TransformersAdamW(torch.optim.Optimizer):
    """`transformers.optimization.AdamW` as of 2019-2021: eps added before bias correction,
    decoupled weight decay after the step; `correct_bias=False` drops the correction."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, correct_bias: bool = True):
        if lr < 0 or eps < 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError(f"invalid AdamW settings lr={lr} betas={betas} eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            by_step: dict[int, list] = {}  # tensors that started later (gradual unfreezing) have fewer steps
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                state["step"] += 1
                by_step.setdefault(state["step"], []).append(p)
            for t, params in by_step.items():
                grads = [p.grad for p in params]
                m = [self.state[p]["exp_avg"] for p in params]
                v = [self.state[p]["exp_avg_sq"] for p in params]
                torch._foreach_mul_(m, beta1)
                torch._foreach_add_(m, grads, alpha=1 - beta1)
                torch._foreach_mul_(v, beta2)
                torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
                denom = torch._foreach_sqrt(v)
                torch._foreach_add_(denom, group["eps"])  # before the correction below
                step_size = group["lr"]
                if group["correct_bias"]:
                    step_size = step_size * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                torch._foreach_addcdiv_(params, m, denom, value=-step_size)
                if group["weight_decay"] > 0:  # after the step, on the updated weight
                    torch._foreach_add_(params, params, alpha=-group["lr"] * group["weight_decay"])
        return loss


def adamw(params, optim, lr: float | None = None) -> torch.optim.Optimizer:
    """The AdamW of `optim.eps_placement` with the run's betas, eps and weight decay (`lr`: the
    run's unless given); parameter groups keep their own weight decay."""
    kwargs = dict(lr=optim.lr if lr is None else lr, betas=tuple(optim.betas), eps=optim.eps,
                  weight_decay=optim.weight_decay)
    placement = optim.get("eps_placement", AFTER)  # train.yaml sets it; a hand-made optim node may not
    if placement == AFTER:
        return torch.optim.AdamW(params, **kwargs)
    if placement == BEFORE:
        return TransformersAdamW(params, **kwargs)
    raise ValueError(f"optim.eps_placement: {placement!r} is not one of {', '.join(EPS_PLACEMENTS)}")
