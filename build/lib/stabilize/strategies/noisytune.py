"""NoisyTune (Wu et al., ACL 2022, section 3): perturb the pre-trained weights once before fine-tuning.

Every parameter tensor gets uniform noise scaled by its own spread,
θ ← θ + U(−λ/2, λ/2) · std(θ), λ = 0.15, as the paper's code does for all of the model's
parameters; tensors of a single element (no spread) are left alone.
"""
import torch

from stabilize.strategies.base import Strategy


class NoisyTune(Strategy):
    def __init__(self, noise_lambda: float = 0.15):
        if not noise_lambda >= 0:
            raise ValueError(f"noise_lambda must be >= 0, got {noise_lambda!r}")
        self.noise_lambda = noise_lambda

    @torch.no_grad()
    def setup(self, module):
        for p in module.model.parameters():
            if p.numel() > 1:
                p.add_((torch.rand_like(p) - 0.5) * self.noise_lambda * p.std())
