"""Per-component convergence monitoring (Yang & Ma 2022, section 2).

Every `every_n_steps` steps, the gradient norm of every parameter tensor (before clipping);
at every evaluation step, per layer, the largest root-mean-square change of its tensors since
the previous evaluation. Kept on the device until the end (no per-step host sync), then
written to `grad_monitor.json` in the run folder and, per layer, to the run's loggers.
"""
import json
from pathlib import Path

import pytorch_lightning as pl
import torch

from stabilize import distributed, layers

MONITOR_FILE = "grad_monitor.json"


class GradientMonitor(pl.Callback):
    def __init__(self, out_dir: str, every_n_steps: int = 20):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps!r}")
        self.out_dir, self.every_n_steps = Path(out_dir), every_n_steps
        self.grad_steps: list[int] = []
        self.grad_norms: list[torch.Tensor] = []
        self.change_steps: list[int] = []
        self.changes: list[torch.Tensor] = []

    def on_fit_start(self, trainer, pl_module):
        model = pl_module.model
        layers.check(model, "callbacks.grad_monitor")
        self.names = [n for n, _ in model.named_parameters()]
        self.layer_names = layers.ordered_layers(model)
        layer_index = {layer: i for i, layer in enumerate(self.layer_names)}
        self.tensor_layer = torch.tensor([layer_index[layers.layer_of(model, n)] for n in self.names])
        self.previous = [p.detach().clone() for p in model.parameters()]
        self.numel = torch.tensor([float(p.numel()) for p in model.parameters()])

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        step = trainer.global_step
        if step % self.every_n_steps:
            return
        params = list(pl_module.model.parameters())
        with_grad = [i for i, p in enumerate(params) if p.grad is not None]
        norms = torch.full((len(params),), float("nan"), device=params[0].device)
        if with_grad:
            norms[with_grad] = torch.stack(torch._foreach_norm([params[i].grad for i in with_grad])).float()
        self.grad_steps.append(step)
        self.grad_norms.append(norms)

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step not in pl_module.eval_at:
            return
        current = [p.detach() for p in pl_module.model.parameters()]
        diff = torch._foreach_sub(current, self.previous)
        rms = torch.stack(torch._foreach_norm(diff)).float() / self.numel.to(diff[0].device).sqrt()
        per_layer = torch.full((len(self.layer_names),), 0.0, device=rms.device)
        per_layer.scatter_reduce_(0, self.tensor_layer.to(rms.device), rms, reduce="amax")
        self.change_steps.append(step)
        self.changes.append(per_layer)
        self.previous = [p.clone() for p in current]
        for logger in trainer.loggers:
            logger.log_metrics({f"rms_change/{name}": float(v) for name, v in zip(self.layer_names, per_layer)},
                               step=step)

    def on_fit_end(self, trainer, pl_module):
        self.write()

    def on_exception(self, trainer, pl_module, exception):
        self.write()

    def write(self) -> None:
        if not hasattr(self, "names") or not distributed.is_main():
            return
        stack = lambda xs: torch.stack(xs).cpu().tolist() if xs else []  # noqa: E731
        out = {"every_n_steps": self.every_n_steps,
               "grad_norm": {"steps": self.grad_steps, "tensors": self.names, "values": stack(self.grad_norms)},
               "rms_change": {"steps": self.change_steps, "layers": self.layer_names, "values": stack(self.changes)}}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / MONITOR_FILE).write_text(json.dumps(out))
