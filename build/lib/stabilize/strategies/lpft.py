"""LP-FT (Kumar et al., ICLR 2022, section 4): linear probing, then fine-tuning.

When training starts the head's last Linear layer (the one whose output is the logits) is set
by a linear probe on the frozen encoder; then the run proper (its steps, schedule, optimizer and
evaluations) fine-tunes everything from that head. Two probes (`probe`):

- `fit` (default), as the authors fit it (AnanyaKumar/transfer_learning, `extract_features.py`
  and `log_reg_sk.py`): the inputs of that Linear layer are extracted in eval mode (no dropout)
  for every training and validation row (BERT: the pooler output, the input of `classifier`),
  scaled by one mean and one standard deviation of the training features, as theirs; a
  scikit-learn LogisticRegression (lbfgs; multinomial for 3 classes or more, binomial for 2) is
  fitted to convergence for every C of `grid`, ascending, warm-started, and the C whose head
  scores best on validation in the task's `select_metric` is kept, ties broken by the lower
  validation cross-entropy (theirs: the smallest C; on a plateau of equal accuracies that is the
  most shrunk head, whose training loss barely leaves the random head's). Regression fits Ridge
  with alpha = 1 / (2C) (the same penalty on the summed per-row loss) and keeps the alpha of the
  lowest validation MSE (Spearman and Pearson ignore the output's scale, so an all-but-constant
  head could win on them). The chosen weights, scaled back to the raw features, are written into
  the Linear layer. Layers before it in the head (RoBERTa's and ELECTRA's dense + tanh,
  DistilBERT's pre_classifier) stay at their random init: the probe is fitted on their output.
- `gradient`: the head alone (every head parameter) trains for `epochs` passes over the training
  data (a fraction allowed) with its own AdamW at the constant rate `lr`, dropout on; 1e-3 and 3
  epochs are our choice. Its steps are not counted in the run's `steps` (`probe_steps`).

`results.json` shows the fit: `probe`, `probe_model` and `probe_reg` (C or alpha, `probe_reg_name`;
null for `gradient`), the loss (cross-entropy, or MSE) on the eval-mode training features of the
head before (`probe_init_loss`) and after the probe (`probe_train_loss`), the probe's validation
score in the select metric (`probe_val`) and, at every C, the validation values the grid was
chosen on (`probe_curve`: [C, score, cross-entropy], or [C, MSE] with alpha = 1 / (2C);
`probe_selected_by`).

Where we differ from the official code: their grid's fits stop after 200 lbfgs iterations (ours:
to sklearn's tolerance, `probe_converged`); they select on validation accuracy (ours: the task's
select metric, accuracy for RTE and MRPC, MCC for CoLA) and break ties by the smallest C (ours: by
validation cross-entropy); they fit no binary head into a two-output layer (ours: the binomial
weights w go in as -w/2 and w/2, the same probabilities), nor regression.
"""
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stabilize import layers, metrics, optimizers
from stabilize.strategies.base import Strategy

# The authors' grid: np.logspace(-7, 2, num_reg_values) in log_reg_sk.py, num_reg_values=50 in
# scripts/run_adaptation_experiments.py. On features scaled to unit spread C = 1e-7 leaves the
# weights all but 0 (the head predicts the training prior) and 1e2 barely regularizes.
AUTHORS_GRID = tuple(float(c) for c in np.logspace(-7, 2, 50))
MAX_ITER = 10_000  # lbfgs iterations per C, far more than convergence takes on 1k rows


class LPFT(Strategy):
    single_process_only = "each process would probe the head on its own share of the data, outside DDP"

    def __init__(self, probe: str = "fit", epochs: float = 3.0, lr: float = 1e-3, grid: list | None = None):
        if probe not in ("fit", "gradient"):
            raise ValueError(f"probe must be fit or gradient, got {probe!r}")
        if not epochs > 0 or not lr > 0:
            raise ValueError(f"epochs and lr must be > 0, got {epochs!r} and {lr!r}")
        grid = AUTHORS_GRID if grid is None else tuple(float(c) for c in grid)
        if not grid or any(not c > 0 for c in grid):
            raise ValueError(f"grid must list positive values of C, got {grid!r}")
        self.probe, self.epochs, self.lr, self.grid = probe, epochs, lr, grid
        self.probe_steps, self.probe_loss = 0, None
        self.fitted: dict = {}  # the results.json keys of the probe

    def on_train_start(self, module):
        linear = head_linear(module.model, self)
        x, y = features(module, linear, "train", self)
        init_loss = float(module.task_loss(F.linear(x, linear.weight.detach().cpu().float(),
                                                    _bias(linear)), y))
        if self.probe == "fit":
            xv, yv = features(module, linear, "val", self)
            fitted = fit_probe(x, y, xv, yv, module.spec, self.grid)
            with torch.no_grad():
                linear.weight.copy_(fitted.pop("weight"))
                if linear.bias is not None:
                    linear.bias.copy_(fitted.pop("bias"))
        else:
            self.gradient_probe(module)
            fitted = {"probe_model": None, "probe_reg_name": None, "probe_reg": None, "probe_curve": None,
                      "probe_selected_by": None, "probe_converged": None}
            head_params = {p for name, p in module.model.named_parameters()
                           if layers.layer_of(module.model, name) == "head"}
            if head_params - set(linear.parameters()):  # layers before it trained too: new inputs
                x, y = features(module, linear, "train", self)
            xv, yv = features(module, linear, "val", self)
        weight, bias = linear.weight.detach().cpu().float(), _bias(linear)
        val_out = F.linear(xv, weight, bias)
        val_preds = val_out.squeeze(-1) if module.spec.is_regression else val_out.argmax(-1)
        self.fitted = {"probe": self.probe, **fitted, "probe_init_loss": init_loss,
                       "probe_train_loss": float(module.task_loss(F.linear(x, weight, bias), y)),
                       "probe_val": metrics.score(module.spec.select_metric, val_preds, yv, module.spec.num_labels)}

    def gradient_probe(self, module):
        model = module.model
        trains = {p: p.requires_grad for p in model.parameters()}
        head = [p for name, p in model.named_parameters() if layers.layer_of(model, name) == "head"]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head:
            p.requires_grad_(True)
        optimizer = optimizers.adamw(head, module.optim, lr=self.lr)
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
        return {**self.fitted, "probe_steps": self.probe_steps,
                "probe_last_loss": None if self.probe_loss is None else float(self.probe_loss)}

    def state_dict(self, module):  # the probed head: in the weights
        return {"probe_steps": self.probe_steps, "probe_loss": self.probe_loss, "fitted": self.fitted}

    def load_state_dict(self, module, state):
        self.probe_steps, self.probe_loss = state["probe_steps"], state["probe_loss"]
        self.fitted = state.get("fitted", {})  # not in checkpoints written before the fitted probe


def head_linear(model: nn.Module, strategy: Strategy) -> nn.Linear:
    """The head's last Linear layer (outside the base model, `stabilize.layers`), which
    `features` checks gives the logits."""
    found = [m for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and layers.layer_of(model, f"{name}.weight") == "head"]
    if not found or found[-1].bias is None:
        raise strategy.error(None, f"{model.config.model_type}'s head has no Linear layer with a bias to fit a "
                                   f"probe into")
    return found[-1]


@torch.inference_mode()
def features(module, linear: nn.Linear, split: str, strategy: Strategy) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs of `linear` for every row of `split` in eval mode (no dropout), float32 on the
    CPU, and the labels; no random number is drawn."""
    seen = []
    hook = linear.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    was_training = module.model.training
    module.model.eval()
    xs, ys = [], []
    try:
        for batch in module.trainer.datamodule.eval_dataloader(split):
            batch = {k: v.to(module.device) for k, v in batch.items()}
            seen.clear()
            logits = module(batch).logits
            if len(seen) != 1 or seen[0][0].dim() != 2 or not torch.equal(seen[0][1], logits):
                raise strategy.error(None, f"{module.model.config.model_type}: its head's last Linear layer does "
                                           f"not give the logits from one row of features; cannot fit a probe")
            xs.append(seen[0][0].float().cpu())
            ys.append(batch["labels"].cpu())
    finally:
        hook.remove()
        module.model.train(was_training)
    return torch.cat(xs), torch.cat(ys)


def fit_probe(x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, spec, grid) -> dict:
    """Kumar et al.'s probe on features `x` (rows) with labels `y`, its C chosen on (`x_val`,
    `y_val`) from `grid`: the head's `weight` (outputs × features) and `bias` for the raw features,
    and the `probe_*` keys of results.json."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    x, x_val = x.double().numpy(), x_val.double().numpy()
    mean, std = x.mean(), x.std()  # one number each, as log_reg_sk.py's normalize_features
    z, z_val = (x - mean) / std, (x_val - mean) / std
    y_np = y.numpy()
    regression = spec.is_regression
    if not regression and len(np.unique(y_np)) < 2:
        raise ValueError("a probe needs training rows of two classes or more")
    clf = None if regression else LogisticRegression(max_iter=MAX_ITER, warm_start=True)
    best, curve, converged = None, [], True
    for c in sorted(float(c) for c in grid):
        if regression:
            model = Ridge(alpha=1 / (2 * c)).fit(z, y_np.astype(np.float64))
            value = float(np.mean((model.predict(z_val) - y_val.double().numpy()) ** 2))
            better = best is None or value < best[0]
        else:
            clf.C = c
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # read off n_iter_ below
                clf.fit(z, y_np)
            converged &= bool(np.all(clf.n_iter_ < MAX_ITER))
            preds = torch.as_tensor(clf.predict(z_val))
            value = metrics.score(spec.select_metric, preds, y_val, spec.num_labels)
            proba = clf.predict_proba(z_val)[np.arange(len(y_val)), np.searchsorted(clf.classes_, y_val.numpy())]
            loss = float(-np.log(np.clip(proba, 1e-300, None)).mean())
            better = best is None or (value, -loss) > (best[0], -best[1])
            model = clf
        curve.append([c, value] if regression else [c, value, loss])
        if better:
            best = (value, None if regression else loss, c, _as_head(model, spec.num_labels))
    _, _, c, (w, b) = best
    weight, bias = w / std, b - w.sum(1) * mean / std  # back to the raw features, as inv_normalize_weights
    return {"weight": torch.as_tensor(weight, dtype=torch.float32), "bias": torch.as_tensor(bias, dtype=torch.float32),
            "probe_model": "ridge" if regression else "logistic_regression",
            "probe_reg_name": "alpha" if regression else "C", "probe_reg": 1 / (2 * c) if regression else c,
            "probe_selected_by": "mse" if regression else f"{spec.select_metric}, then cross_entropy",
            "probe_curve": curve,
            "probe_converged": None if regression else converged}


def _as_head(model, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted sklearn model's (weight, bias) as the rows of a head with `num_labels` outputs."""
    coef, intercept = np.atleast_2d(model.coef_).copy(), np.atleast_1d(model.intercept_).copy()
    if num_labels == 1:
        return coef, intercept
    weight, bias = np.zeros((num_labels, coef.shape[1])), np.zeros(num_labels)
    if coef.shape[0] == 1:  # binomial: p(classes_[1]) = sigmoid(w.x + b) = softmax of (-w.x - b, w.x + b) / 2
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    weight[model.classes_], bias[model.classes_] = coef, intercept  # a class absent from training: 0, as theirs
    return weight, bias


def _bias(linear: nn.Linear) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach().cpu().float()
