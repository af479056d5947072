"""Exponential moving average of the weights (Polyak & Juditsky 1992; `torch.optim.swa_utils`).

After every optimizer step θ_ema ← decay · θ_ema + (1 − decay) · θ (the first step copies θ).
No official default exists for few-sample BERT fine-tuning: decay 0.99 (a window of about 100
steps) fits runs of a few hundred steps, where 0.999 would still be mostly the pre-trained
weights at the end.
"""
from torch.optim.swa_utils import get_ema_multi_avg_fn

from stabilize.strategies.averaging import WeightAveraging


class EMA(WeightAveraging):
    def __init__(self, decay: float = 0.99):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.decay = decay
