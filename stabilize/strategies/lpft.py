"""LP-FT (Kumar et al., ICLR 2022, section 4): linear probing, then fine-tuning.

When training starts, the head alone trains for `epochs` passes over the training data (a
fraction allowed) with its own AdamW at the constant rate `lr`, every other parameter frozen
and dropout on; then the frozen parameters are released and the run proper (its steps,
schedule, optimizer and evaluations) fine-tunes from the probed head. Kumar et al. fit the probe
to convergence (logistic regression); a gradient probe needs a rate far above fine-tuning's 2e-5
to move the head: `lr` 1e-3 and 3 epochs are our choice. The probe's steps are not counted in
the run's `steps`; `results.json` has them as `probe_steps`.
"""
import torch

from stabilize import layers
from stabilize.strategies.base import Strategy


class LPFT(Strategy):
    single_process_only = "each process would probe the head on its own share of the data, outside DDP"

    def __init__(self, epochs: float = 3.0, lr: float = 1e-3):
        if not epochs > 0 or not lr > 0:
            raise ValueError(f"epochs and lr must be > 0, got {epochs!r} and {lr!r}")
        self.epochs, self.lr = epochs, lr
        self.probe_steps, self.probe_loss = 0, None

    def on_train_start(self, module):
        model = module.model
        trains = {p: p.requires_grad for p in model.parameters()}
        head = [p for name, p in model.named_parameters() if layers.layer_of(model, name) == "head"]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(head, lr=self.lr, eps=module.optim.eps, weight_decay=module.optim.weight_decay)
        for batch in module.train_batches(self.epochs):
            loss = module.task_loss(module(batch).logits, batch["labels"])
            loss.backward()
            if module.optim.clip_norm:
                torch.nn.utils.clip_grad_norm_(head, module.optim.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self.probe_steps, self.probe_loss = self.probe_steps + 1, loss.detach()
        for p, flag in trains.items():
            p.requires_grad_(flag)

    def results(self, module):
        return {"probe_steps": self.probe_steps,
                "probe_last_loss": None if self.probe_loss is None else float(self.probe_loss)}

    def state_dict(self, module):
        return {"probe_steps": self.probe_steps, "probe_loss": self.probe_loss}  # the probed head: in the weights

    def load_state_dict(self, module, state):
        self.probe_steps, self.probe_loss = state["probe_steps"], state["probe_loss"]
