"""ChildTuning (Xu et al., EMNLP 2021, section 3; alibaba/AliceMind `ChildTuning/`).

Only a "child" subset of the weights is updated: each step's gradients are multiplied by a
mask after clipping, right before the optimizer step (AdamW then sees the masked gradient,
its weight decay still applies to every weight), as their ChildTuningAdamW does.

- F (task-free): a fresh Bernoulli(p) mask for every tensor at every step, divided by p.
- D (task-driven): before training, one pass over the training data (shuffled batches of
  the run's size, dropout on) sums each encoder-block weight's squared gradient, each tensor's
  gradient first clipped to the run's `clip_norm` (Fisher information); the top p fraction of
  those entries forms a fixed mask for the block weights, not rescaled; embeddings, pooler and
  head keep full gradients.
p = 0.3. Their script also sets lr 4e-5, batch 16, weight decay 0.01; the method files keep the
run's recipe.

On several processes (stabilize.distributed) the masks must be every process's: D sums the
Fisher information over the processes' shares of the data; F draws from a generator seeded
alike in every process (on one process, from torch's global one, as always).
"""
import torch

from stabilize import distributed, layers
from stabilize.strategies.base import Strategy
from stabilize.strategies.component_clip import clip_per_tensor

VARIANTS = ("F", "D")


class ChildTuning(Strategy):
    def __init__(self, variant: str = "D", p: float = 0.3):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if not 0 < p <= 1:
            raise ValueError(f"p must be in (0, 1], got {p!r}")
        self.variant, self.p = variant, p
        self.mask: dict[torch.nn.Parameter, torch.Tensor] = {}
        self.generator: torch.Generator | None = None  # F on several processes

    def on_train_start(self, module):
        if self.variant == "D":
            self.mask = self.fisher_mask(module)
        elif distributed.world() > 1:
            self.generator = torch.Generator(module.device).manual_seed(torch.initial_seed())

    def fisher_mask(self, module) -> dict[torch.nn.Parameter, torch.Tensor]:
        model = module.model
        block = [p for name, p in model.named_parameters()
                 if p.requires_grad and layers.layer_of(model, name).startswith("layer.")]
        if not block:
            raise self.error("variant", "D masks encoder-block weights, and none of them trains")
        fisher = [torch.zeros_like(p) for p in block]
        for batch in module.train_batches():
            module.task_loss(module(batch).logits, batch["labels"]).backward()
            grads = [p.grad for p in block]
            if module.optim.clip_norm:
                clip_per_tensor(grads, module.optim.clip_norm)
            torch._foreach_addcmul_(fisher, grads, grads)
            model.zero_grad(set_to_none=True)
        scores = distributed.all_sum(torch.cat([f.flatten() for f in fisher]))  # every process's share
        fisher = [s.view_as(f) for s, f in zip(scores.split([f.numel() for f in fisher]), fisher)]
        keep = max(1, round(self.p * scores.numel()))
        threshold = torch.kthvalue(scores, scores.numel() - keep + 1).values
        return {p: (f >= threshold).to(p.dtype) for p, f in zip(block, fisher)}

    @torch.no_grad()
    def after_clipping(self, module, optimizer):
        if self.variant == "D":
            held = [p for p in self.mask if p.grad is not None]
            if held:
                torch._foreach_mul_([p.grad for p in held], [self.mask[p] for p in held])
            return
        for p in module.model.parameters():
            if p.grad is not None:
                p.grad.mul_(torch.empty_like(p.grad).bernoulli_(self.p, generator=self.generator)).div_(self.p)

    def state_dict(self, module):
        names = {p: name for name, p in module.model.named_parameters()}
        return {"mask": {names[p]: m for p, m in self.mask.items()},
                "generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, module, state):
        params = dict(module.model.named_parameters())
        self.mask = {params[name]: m.to(params[name].device) for name, m in state["mask"].items()}
        if state.get("generator") is not None:  # F on several processes
            self.on_train_start(module)
            self.generator.set_state(state["generator"])

    def results(self, module):
        if self.variant == "F":
            return {}
        kept = sum(int(m.sum()) for m in self.mask.values())
        return {"childtuning_kept": kept / max(1, sum(m.numel() for m in self.mask.values()))}
