"""Component-wise gradient norm clipping (Yang & Ma 2022, section 3).

Each parameter tensor's gradient is clipped to norm <= max_norm on its own, replacing
global clipping. All norms come from one `torch._foreach_norm` call; a tensor already
below the threshold is multiplied by exactly 1. Lightning calls this after AMP unscaling
and only at accumulation boundaries.
"""
import torch

from stabilize.strategies.base import Strategy


def clip_per_tensor(grads: list[torch.Tensor], max_norm: float) -> None:
    if not grads:
        return
    norms = torch.stack(torch._foreach_norm(grads))
    scales = (max_norm / (norms + 1e-6)).clamp_(max=1.0)
    torch._foreach_mul_(grads, scales.to(grads[0].dtype).unbind())


class ComponentWiseClipping(Strategy):
    def __init__(self, max_norm: float = 1.0):
        if max_norm <= 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
        self.max_norm = max_norm

    @torch.no_grad()
    def clip_gradients(self, module, optimizer):
        clip_per_tensor([p.grad for p in module.model.parameters() if p.grad is not None], self.max_norm)
        return True
