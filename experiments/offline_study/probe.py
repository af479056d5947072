"""Does `lpft`'s probe fit? The numbers behind the README's `lpft` points (section 4).

Kumar et al. (ICLR 2022, section 4) fit the linear probe to convergence (logistic regression)
before fine-tuning; `lpft` trains the head for 3 epochs, 96 AdamW steps at lr 1e-3
(`stabilize/strategies/lpft.py`). For seed 0 of each task, at the study's setting, this sets the
run up as `stabilize-train` would, lets the strategy's own probe run (the first step of `fit`),
and compares on the frozen encoder's features (eval mode) four heads: the fresh one, the
probed one, the best constant, and a linear probe fit to convergence (least squares on STS-B;
on MRPC logistic regression by L-BFGS with scikit-learn's default penalty, C = 1).

    python probe.py        # from this folder; about 5 minutes on one core; writes probe.json
"""
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from scipy.stats import spearmanr

from stabilize import config
from stabilize.train import CONF_DIR, fit, set_up

HERE = Path(__file__).resolve().parent
SETTING = {"stsb": [], "mrpc": ["optim.max_epochs=5"]}  # run.sh's phase 3 for lpft


def head_of(model) -> dict:
    return {k: v.clone() for k, v in model.classifier.state_dict().items()}


class AfterProbe(pl.Callback):
    """The head as the first fine-tuning step finds it: after the probe."""
    head = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.head is None:
            self.head = head_of(module.model)


@torch.no_grad()
def features(run, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's inputs (BERT's pooler output) for every row of `split`, and the labels;
    in eval mode, and drawing nothing from the global RNG: the probe's batches stay the run's."""
    model, xs, ys = run.module.model, [], []
    hook = model.classifier.register_forward_pre_hook(lambda m, args: xs.append(args[0]))
    model.eval()
    for batch in run.datamodule.eval_dataloader(split):
        run.module(batch)
        ys.append(batch["labels"])
    model.train()
    hook.remove()
    return torch.cat(xs), torch.cat(ys)


def converged(x, y, regression: bool, num_labels: int) -> dict:
    """The linear probe fit to convergence: least squares, or logistic regression (C = 1)."""
    if regression:
        w = torch.linalg.lstsq(torch.cat([x, torch.ones(len(x), 1)], 1).double(), y.double()[:, None]).solution
        return {"weight": w[:-1].T.float(), "bias": w[-1].float()}
    head = torch.nn.Linear(x.shape[1], num_labels)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=1000, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(head(x), y) + head.weight.pow(2).sum() / (2 * len(x))
        loss.backward()
        return loss
    opt.step(closure)
    return {k: v.detach() for k, v in head.state_dict().items()}


def scores(head: dict, x, y, regression: bool) -> dict:
    out = x @ head["weight"].T + head["bias"]
    if regression:
        out = out.squeeze(-1)
        rank = None if (out == out[0]).all() else float(spearmanr(out.numpy(), y.numpy()).statistic)  # the constant
        return {"loss": F.mse_loss(out, y.float()).item(), "spearman": rank}
    return {"loss": F.cross_entropy(out, y).item(), "accuracy": (out.argmax(-1) == y).float().mean().item()}


def probe(task: str, *overrides: str, run_dir: Path = HERE / "diagnosis") -> dict:
    """Seed 0's probe on `task` and the four heads' scores (`overrides`: the tests' tiny model)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=offline_study", f"task={task}", "method=lpft", "seed=0",
                                          "method.strategies.lpft.probe=gradient",  # the study's runs' probe
                                          "optim.max_steps=1", "eval.times=1", "threads=1", "logger=none",
                                          "trainer.enable_progress_bar=false", *SETTING[task], *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir / f"probe_{task}")
    after = AfterProbe()
    run = set_up(cfg, config.validate(cfg), 0, callbacks=[after])
    regression, num_labels = run.module.spec.is_regression, run.module.spec.num_labels
    fresh = head_of(run.module.model)
    (x, y), (xv, yv) = features(run, "train"), features(run, "val")  # the encoder the probe keeps frozen
    fit(run)  # the probe, then one fine-tuning step, before which AfterProbe keeps the head
    constant = {"weight": torch.zeros(num_labels, x.shape[1]),
                "bias": y.float().mean()[None] if regression else torch.log(torch.bincount(y) / len(y))}
    heads = {"fresh": fresh, "after the probe": after.head, "best constant": constant,
             "converged": converged(x, y, regression, num_labels)}
    return {"probe_steps": run.strategies[0].probe_steps, "probe_last_loss": float(run.strategies[0].probe_loss),
            **{name: {"train": scores(h, x, y, regression), "val": scores(h, xv, yv, regression)}
               for name, h in heads.items()}}


if __name__ == "__main__":
    config.register_resolvers()
    found = {task: probe(task) for task in SETTING}
    (HERE / "probe.json").write_text(json.dumps(found, indent=1) + "\n")
    print(json.dumps(found, indent=1))
