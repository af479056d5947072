"""The LightningModule: a HF sequence classifier trained with the strategies of a method.

Evaluation follows study A's released code: `eval.times` evaluations evenly spaced over
training (or `eval.per_epoch` in every epoch, and optional early stopping: stabilize.evaluation),
the best validation state kept as a CPU copy in memory (no checkpoint files), and after
training both the last and the best state scored on the test half.

On several processes (stabilize.distributed) every process evaluates its share of the batches
and gets every prediction back, so all keep the same history, best state and stopping step.
"""
import itertools
import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from transformers import get_linear_schedule_with_warmup

from stabilize import distributed, metrics, models, optimizers, resume
from stabilize.evaluation import EvalPlan, eval_steps, evaluated_weights, keep_evaluation_weights  # noqa: F401
from stabilize.layers import NO_DECAY
from stabilize.strategies.base import Strategy
from stabilize.tasks import TaskSpec


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def default_param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights with `weight_decay`, biases and LayerNorm without."""
    decay, no_decay = {"params": [], "names": [], "weight_decay": weight_decay}, \
        {"params": [], "names": [], "weight_decay": 0.0}
    for name, p in model.named_parameters():
        group = no_decay if name.endswith(NO_DECAY) else decay
        group["params"].append(p)
        group["names"].append(name)
    return [g for g in (decay, no_decay) if g["params"]]


class FineTuner(pl.LightningModule):
    def __init__(self, model, spec: TaskSpec, strategies: list[Strategy], optim, eval_times: int | None = 10,
                 eval_per_epoch: int | None = None, patience: int | None = None):
        super().__init__()
        self.model, self.spec, self.strategies, self.optim = model, spec, strategies, optim
        self.evaluation = EvalPlan(eval_times, eval_per_epoch, patience).check()
        self.total_steps, self.eval_at = 0, set()
        self.stopped_early_at: int | None = None  # the step of the evaluation that ended the run early
        self.history: list[dict] = []
        self.best: dict | None = None  # {"step", "select", "val", "state"}
        self.resumed_at: list[int] = []  # the steps at which an interrupted run went on (stabilize.resume)
        self.seconds_before = 0.0  # earlier launches' time up to the checkpoint it resumed from
        self._started = time.monotonic()
        self._nonfinite = torch.zeros((), dtype=torch.bool)
        self.model.train()  # from_pretrained returns eval mode: dropout would stay off
        for s in self.strategies:
            s.setup(self)

    def plan(self, steps_per_epoch: int, steps: int) -> int:
        """Fix the run's length (strategies may extend it) and the evaluation steps."""
        for s in self.strategies:
            steps = s.training_steps(self, steps_per_epoch, steps)
        self.total_steps, self.eval_at = steps, self.evaluation.steps(steps, steps_per_epoch)
        return steps

    # ------------------------------------------------------------ training
    def forward(self, batch: dict):
        segments = {"token_type_ids": batch["token_type_ids"]} if models.takes_token_types(self.model) else {}
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **segments)

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.spec.is_regression:
            return F.mse_loss(logits.squeeze(-1).float(), labels.float())
        return F.cross_entropy(logits.float(), labels)

    def training_step(self, batch, batch_idx):
        outputs = self(batch)
        loss = self.task_loss(outputs.logits, batch["labels"])
        for s in self.strategies:
            extra = s.loss(self, batch, outputs)
            if extra is not None:
                loss = loss + extra
        self._nonfinite = self._nonfinite.to(loss.device) | ~torch.isfinite(loss.detach())
        self.log("train/loss", loss.detach(), on_step=True)  # not on the bar: no host sync per step
        if distributed.world() > 1:  # DDP averages the processes' gradients: weigh each by its rows,
            rows = len(batch["labels"])  # so that a global batch split unevenly counts every row alike
            total = distributed.all_sum(torch.tensor(float(rows), device=loss.device))
            loss = loss * (rows * distributed.world() / total)
        return loss

    def train_batches(self, epochs: float = 1.0):
        """`epochs` passes over the training data (a fresh shuffle each), batches on the model's device."""
        loader = self.trainer.datamodule.train_dataloader()
        for batch in itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)),
                                      round(epochs * len(loader))):
            yield {k: v.to(self.device) for k, v in batch.items()}

    def on_train_start(self):
        if self.resumed_at:  # instead of the hooks, what they made: the checkpoint's (Strategy.state_dict)
            for s, own in zip(self.strategies, self._resumed_states, strict=True):
                s.load_state_dict(self, own)
            return
        for s in self.strategies:
            s.on_train_start(self)

    def on_train_epoch_start(self):
        for s in self.strategies:
            s.on_train_epoch_start(self, self.current_epoch)

    def on_before_optimizer_step(self, optimizer):
        for s in self.strategies:
            s.before_optimizer_step(self, optimizer)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        if not any(s.clip_gradients(self, optimizer) for s in self.strategies) and self.optim.clip_norm:
            self.clip_gradients(optimizer, gradient_clip_val=self.optim.clip_norm, gradient_clip_algorithm="norm")
        for s in self.strategies:
            s.after_clipping(self, optimizer)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        optimizer.step(closure=optimizer_closure)
        for s in self.strategies:
            s.after_optimizer_step(self, optimizer)

    def configure_optimizers(self):
        groups = default_param_groups(self.model, self.optim.weight_decay)
        for s in self.strategies:
            groups = s.param_groups(self, groups)
        optimizer = None
        for s in self.strategies:
            optimizer = s.build_optimizer(self, groups) or optimizer
        if optimizer is None:
            optimizer = optimizers.adamw(groups, self.optim)
        warmup = math.ceil(self.optim.warmup_ratio * self.total_steps)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, self.total_steps)
        for s in self.strategies:
            scheduler = s.lr_scheduler(self, optimizer, scheduler)
        n_decay = sum(len(g["params"]) for g in groups if g.get("weight_decay"))
        print(f"[stabilize] optimizer: {type(optimizer).__name__}, {len(groups)} parameter groups, "
              f"{n_decay} tensors decayed, {sum(len(g['params']) for g in groups) - n_decay} not; "
              f"{self.total_steps} steps, {warmup} warmup")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------ resuming (stabilize.resume)
    def on_save_checkpoint(self, checkpoint):
        checkpoint["stabilize"] = {
            "history": self.history, "best": self.best, "stopped_early_at": self.stopped_early_at,
            "nonfinite": bool(self._nonfinite), "resumed_at": self.resumed_at,
            "seconds": self.seconds_before + time.monotonic() - self._started,
            "strategies": [s.state_dict(self) for s in self.strategies],
            "rng": resume.rng_state() if distributed.world() == 1 else distributed.gather(resume.rng_state())}

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint["stabilize"]
        self.history, self.best, self.stopped_early_at = state["history"], state["best"], state["stopped_early_at"]
        self._nonfinite = torch.tensor(state["nonfinite"])
        self.seconds_before = state.get("seconds", 0.0)  # not in the first version's checkpoints
        self._resumed_states = state["strategies"]  # loaded in on_train_start: the model on its device
        self.resumed_at = [*state["resumed_at"], checkpoint["global_step"]]
        rng = state["rng"]  # on several processes, a list: each process's own
        # last: nothing draws before the next epoch's shuffle
        resume.set_rng_state(rng[distributed.rank()] if isinstance(rng, list) else rng)

    # ------------------------------------------------------------ evaluation
    def on_train_batch_end(self, outputs, batch, batch_idx):
        step = self.global_step
        if step not in self.eval_at:
            return
        if bool(distributed.all_sum(self._nonfinite.int())):  # any process's loss
            raise Diverged(f"training loss is not finite by step {step}")
        if distributed.world() > 1:
            distributed.check_same_weights(self.model, step)
        with evaluated_weights(self):
            preds, labels = self.predict_split("val")
            select = metrics.score(self.spec.select_metric, preds, labels, self.spec.num_labels)
            val = metrics.score(self.spec.metric, preds, labels, self.spec.num_labels)
            select, val = distributed.broadcast((select, val))  # rank 0's numbers: every process decides alike
            self.history.append({"step": step, "val": val, self.spec.select_metric: select})
            self.log(f"val/{self.spec.metric}", val)
            if self.best is None or select > self.best["select"]:
                state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
                self.best = {"step": step, "select": select, "val": val, "state": state}
        if step < self.total_steps and self.evaluation.stale(self.history, self.best["step"]):
            self.stopped_early_at = step
            self.trainer.should_stop = True

    def on_train_end(self):
        keep_evaluation_weights(self)

    @torch.inference_mode()
    def predict_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (class indices, or scores for regression) and labels of a split, every row's
        on every process."""
        was_training = self.model.training
        self.model.eval()
        outputs = []
        for batch in self.trainer.datamodule.eval_dataloader(split):
            batch = {k: v.to(self.device) for k, v in batch.items()}
            logits = self(batch).logits.float()
            outputs.append((logits.squeeze(-1) if self.spec.is_regression else logits.argmax(-1), batch["labels"]))
        self.model.train(was_training)
        if distributed.world() > 1:  # the other processes' batches, in batch order
            outputs = distributed.gather_batches([(p.cpu(), y.cpu()) for p, y in outputs])
        preds, labels = zip(*outputs)
        return torch.cat(preds).cpu(), torch.cat(labels).cpu()

    def final_scores(self) -> dict:
        """Test scores of the last and the best validation state; loads the best state."""
        last_preds, labels = self.predict_split("test")
        test_last = metrics.score(self.spec.metric, last_preds, labels, self.spec.num_labels)
        preds, test = last_preds, test_last
        if self.best is not None and self.best["step"] != self.global_step:
            self.model.load_state_dict(self.best["state"])
            preds, _ = self.predict_split("test")
            test = metrics.score(self.spec.metric, preds, labels, self.spec.num_labels)
        constant = bool(preds.unique().numel() <= 1)
        if self.spec.is_regression:
            majority = majority_accuracy = majority_label = accuracy = constant_label = None
        else:
            maj = metrics.majority_label(self.trainer.datamodule.splits["val"].labels)
            majority = metrics.majority_score(self.spec.metric, labels, maj, self.spec.num_labels)
            majority_accuracy = metrics.majority_score("accuracy", labels, maj, self.spec.num_labels)
            majority_label = self.spec.labels[maj]
            accuracy = metrics.score("accuracy", preds, labels, self.spec.num_labels)
            # the class it always predicts, which need not be the majority class
            constant_label = self.spec.labels[int(preds[0])] if constant and preds.numel() else None
        return {
            "val": self.best["val"] if self.best else None,
            "best_step": self.best["step"] if self.best else None,
            "test": test,
            "test_last": test_last,
            "accuracy": accuracy,
            "majority": majority,
            "majority_accuracy": majority_accuracy,
            "majority_label": majority_label,
            "constant": constant,
            "constant_label": constant_label,
            "history": self.history,
        }
