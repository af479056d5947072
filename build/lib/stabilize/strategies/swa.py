"""Stochastic weight averaging (Izmailov et al., UAI 2018, section 3; `torch.optim.swa_utils`).

From `start` (a fraction of the run's steps) on, the equal average of the weights after every
`every`-th optimizer step. With `swa_lr` set, the learning rate then anneals (cosine, over
`anneal_steps`) from the schedule's value to `swa_lr` and stays there (SWALR), each parameter
group scaled as its learning rate is to `optim.lr` (LLRD keeps its ratios); with `swa_lr: null`
the run's own schedule goes on (Izmailov et al. use a constant or cyclic rate; the few-sample
runs here are short, hence the choice).
"""
from torch.optim.lr_scheduler import SequentialLR
from torch.optim.swa_utils import SWALR

from stabilize.strategies.averaging import WeightAveraging


class SWA(WeightAveraging):
    def __init__(self, start: float = 0.75, every: int = 1, swa_lr: float | None = None, anneal_steps: int = 10):
        if not 0 <= start < 1:
            raise ValueError(f"start must be in [0, 1), got {start!r}")
        if not (isinstance(every, int) and every > 0 and isinstance(anneal_steps, int) and anneal_steps >= 0):
            raise ValueError(f"every must be a positive and anneal_steps a non-negative integer, "
                             f"got {every!r} and {anneal_steps!r}")
        if swa_lr is not None and not swa_lr > 0:
            raise ValueError(f"swa_lr must be > 0 or null, got {swa_lr!r}")
        super().__init__()
        self.start, self.every, self.swa_lr, self.anneal_steps = start, every, swa_lr, anneal_steps

    def start_step(self, module) -> int:
        """The first optimizer step (counted from 1) whose weights enter the average."""
        return max(1, round(self.start * module.total_steps))

    def update(self, module):
        step = module.global_step + 1  # Lightning counts the step just taken after this hook
        return step >= self.start_step(module) and (step - self.start_step(module)) % self.every == 0

    def lr_scheduler(self, module, optimizer, scheduler):
        if self.swa_lr is None:
            return scheduler
        scale = self.swa_lr / module.optim.lr
        swalr = SWALR(optimizer, swa_lr=[g["initial_lr"] * scale for g in optimizer.param_groups],
                      anneal_epochs=self.anneal_steps, anneal_strategy="cos")
        return SequentialLR(optimizer, [scheduler, swalr], milestones=[self.start_step(module) - 1])
