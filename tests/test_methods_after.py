"""The methods after the seeds (PAPERS.md, section C) and the evaluation choices they brought:
each test fails if its strategy, or its hook, does nothing."""
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from stabilize import layers, tasks
from stabilize.errors import ConfigError
from stabilize.evaluation import EvalPlan, epoch_eval_steps, evaluated_weights
from stabilize.module import FineTuner
from stabilize.strategies import EMA, R3F, SWA, ChildTuning, LoRA, NoisyTune, Strategy, build_method
from stabilize.strategies.r3f import symmetric_kl
from stabilize.train import fit, set_up
from tests.conftest import make_cfg
from tests.test_strategies import OPTIM, batch, module_with, params, tiny_model

def tiny_run(tmp_path: Path, *overrides: str, extra: Strategy | None = None):
    """A tiny run to the end of training (no test scoring), `extra` after the method's strategies;
    returns (run, start weights)."""
    cfg = make_cfg(tmp_path, *overrides)
    run = set_up(cfg, build_method(cfg.method) + ([extra] if extra else []), cfg.seed)
    start = params(run.module.model)
    fit(run)
    return run, start


# ------------------------------------------------------------------ evaluation cadence, early stopping
def test_per_epoch_evaluation_steps():
    assert epoch_eval_steps(10, 4, 2) == [2, 4, 6, 8, 10]
    assert epoch_eval_steps(9, 6, 3) == [2, 4, 6, 8, 9]  # the last step is always evaluated
    assert epoch_eval_steps(4, 2, 3) == [1, 2, 3, 4]


@pytest.mark.parametrize("plan,keys", [(EvalPlan(None, None), ["eval.times, eval.per_epoch"]),
                                       (EvalPlan(10, 3), ["eval.times, eval.per_epoch"]),
                                       (EvalPlan(0, None, -1), ["eval.times", "eval.patience"])])
def test_eval_config_problems_name_their_keys(plan, keys):
    assert [p.split(":")[0] for p in plan.problems()] == keys
    with pytest.raises(ConfigError):
        FineTuner(tiny_model(), tasks.load("rte"), [], OPTIM, plan.times, plan.per_epoch, plan.patience)


@pytest.mark.parametrize("patience,stopped,steps", [("2", 3, 3), ("null", None, 8)])
def test_patience_ends_a_run_that_stopped_improving(tmp_path, patience, stopped, steps):
    # lr 1e-12: predictions never change, so no evaluation after the first is better
    run, _ = tiny_run(tmp_path, "optim.lr=1e-12", "optim.max_steps=8", "eval.times=8", f"eval.patience={patience}")
    assert [h["step"] for h in run.module.history] == list(range(1, steps + 1))
    assert (run.module.stopped_early_at, run.trainer.global_step, run.module.best["step"]) == (stopped, steps, 1)


def test_mosbach_is_the_papers_recipe(tmp_path):
    cfg = make_cfg(tmp_path, "method=mosbach", tiny=False)
    o = cfg.optim
    assert (o.lr, o.eps, o.weight_decay, o.warmup_ratio, o.batch_size, o.max_epochs, o.clip_norm) == \
        (2e-5, 1e-6, 0.01, 0.1, 16, 20, 1.0)
    assert cfg.eval.per_epoch == 3 and build_method(cfg.method) == []
    # debug=tiny keeps its own cadence; the method's comes back with eval.times=null eval.per_epoch=3
    run, _ = tiny_run(tmp_path, "method=mosbach", "eval.times=null", "eval.per_epoch=3", "optim.max_steps=null",
                      "optim.max_epochs=2")
    assert [h["step"] for h in run.module.history] == [1, 2, 3, 4]  # 2 steps an epoch (32 rows, 16 a batch)


# ------------------------------------------------------------------ NoisyTune
def test_noisytune_adds_uniform_noise_scaled_by_each_tensors_std():
    model = tiny_model(hidden=128)
    before = params(model)
    module_with(NoisyTune(noise_lambda=0.15), model=model)
    for name, p in model.named_parameters():
        delta, std = p.detach() - before[name], before[name].std()
        if std > 0:
            assert delta.abs().max() <= 0.075 * std + 1e-7, name
        if name == "bert.encoder.layer.0.intermediate.dense.weight":  # U(-a, a) has std a / sqrt(3)
            assert delta.std().item() == pytest.approx(0.075 * std.item() / math.sqrt(3), rel=0.05)
            assert not torch.equal(p, before[name])


# ------------------------------------------------------------------ ChildTuning
def test_childtuning_f_keeps_a_fresh_p_share_of_each_gradient_rescaled():
    model = tiny_model(hidden=128)
    module = module_with(ChildTuning(variant="F", p=0.3), model=model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    module.strategies[0].after_clipping(module, None)
    g = model.bert.encoder.layer[0].intermediate.dense.weight.grad
    assert g.unique().tolist() == pytest.approx([0.0, 1 / 0.3])
    assert (g != 0).float().mean().item() == pytest.approx(0.3, abs=0.02)
    first, _ = g.clone(), g.fill_(1.0)
    module.strategies[0].after_clipping(module, None)
    assert not torch.equal(g, first)  # a fresh mask


def test_childtuning_d_updates_only_the_top_fisher_share_of_block_weights(tmp_path):
    run, start = tiny_run(tmp_path, "method=childtuning_d", "method.strategies.childtuning_d.p=0.3")
    model, strategy = run.module.model, run.module.strategies[0]
    blocks = {n for n, _ in model.named_parameters() if layers.layer_of(model, n).startswith("layer.")}
    assert {n for n, p in model.named_parameters() if p in strategy.mask} == blocks
    kept = torch.cat([m.flatten() for m in strategy.mask.values()])
    assert kept.mean().item() == pytest.approx(0.3, abs=0.01)
    moved_kept = 0
    for name, p in model.named_parameters():
        if name in blocks:  # AdamW without weight decay: a masked entry never moves
            mask, moved = strategy.mask[p].bool(), p != start[name]
            assert not moved[~mask].any(), name
            moved_kept += int(moved[mask].sum())
    assert moved_kept > 0.9 * kept.sum()
    assert strategy.results(run.module)["childtuning_kept"] == pytest.approx(kept.mean().item())


# ------------------------------------------------------------------ R3F
def test_r3f_adds_the_symmetric_kl_of_a_noised_pass():
    a, b = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    pa, pb = a.softmax(-1), b.softmax(-1)
    manual = ((pa * (pa / pb).log()).sum() + (pb * (pb / pa).log()).sum()) / 2
    torch.testing.assert_close(symmetric_kl(a, b), manual)
    assert symmetric_kl(a, a) == 0
    model = tiny_model()
    module, b = module_with(R3F(eps=0.5, r3f_lambda=2.0), model=model), batch()
    model.eval()  # no dropout: the term is the noise's alone
    with torch.no_grad():
        clean = module(b)
    term = module.strategies[0].loss(module, b, clean)
    assert term > 0 and term.requires_grad
    term.backward()  # through the noised pass alone
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.word_embeddings.weight.grad is None  # noise added to detached embeddings


def test_r3f_refuses_a_regression_task_and_lora_a_bad_target():
    with pytest.raises(ConfigError, match=r"method\.strategies\.strategy: .*regression"):
        FineTuner(tiny_model(num_labels=1), tasks.load("stsb"), [R3F()], OPTIM)
    with pytest.raises(ConfigError, match=r"method\.strategies\.strategy\.target_modules"):
        module_with(LoRA(target_modules=["no_such_layer"]))


# ------------------------------------------------------------------ weight averaging
def step_with(module, value: float):
    """An optimizer step that sets every weight to `value`; Lightning's count follows the hooks."""
    with torch.no_grad():
        for p in module.model.parameters():
            p.fill_(value)
    for s in module.strategies:
        s.after_optimizer_step(module, None)
    module.trainer.global_step += 1


def averaging_module(strategy, total_steps=8):
    module = module_with(strategy)
    module._trainer = SimpleNamespace(global_step=0)  # what the strategies read of a trainer
    module.total_steps = total_steps
    strategy.on_train_start(module)
    return module


def test_ema_is_evaluated_and_kept():
    module = averaging_module(EMA(decay=0.5))
    assert module.strategies[0].evaluation_weights(module) is None  # nothing averaged yet
    for value in (1.0, 3.0, 5.0):
        step_with(module, value)
    weight = module.model.bert.encoder.layer[0].attention.self.query.weight
    with evaluated_weights(module):
        assert torch.all(weight == 3.5)  # 1, then (1+3)/2, then (2+5)/2
    assert torch.all(weight == 5.0)  # the trained weights come back
    module.on_train_end()
    assert torch.all(weight == 3.5)


@pytest.mark.parametrize("start,mean,steps", [(0.5, 6.0, 5), (0.0, 4.5, 8)])
def test_swa_averages_equally_from_its_start(start, mean, steps):
    module = averaging_module(SWA(start=start), total_steps=8)
    for value in range(1, 9):  # step k leaves every weight at k
        step_with(module, float(value))
    state = module.strategies[0].evaluation_weights(module)
    assert torch.all(state["classifier.weight"] == mean)  # steps 4..8 (or 1..8)
    assert module.strategies[0].results(module)["averaged_steps"] == steps


def test_swa_lr_anneals_to_its_rate_after_the_start():
    optim = OmegaConf.merge(OPTIM, {"warmup_ratio": 0.1})
    module = module_with(SWA(start=0.5, swa_lr=1e-4, anneal_steps=2), optim=optim)
    module.plan(10, 10)
    opt = module.configure_optimizers()
    optimizer, scheduler = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step(), scheduler.step()
    assert lrs[1] == pytest.approx(1e-3) and lrs[3] == pytest.approx(1e-3 * 7 / 9)  # warmup, linear decay
    assert lrs[6:] == pytest.approx([1e-4] * 4) and lrs[5] > 1e-4  # SWALR from step 5 on, annealed


class ConstantHead(Strategy):
    """Evaluates with a head that always predicts class 0."""

    def evaluation_weights(self, module):
        return {"classifier.weight": torch.zeros_like(module.model.classifier.weight),
                "classifier.bias": torch.tensor([1.0, 0.0])}


def test_evaluation_weights_are_scored_kept_as_best_and_kept_at_the_end(tmp_path):
    run, _ = tiny_run(tmp_path, extra=ConstantHead())
    share_of_0 = float((run.datamodule.splits["val"].labels == 0).float().mean())
    assert [h["val"] for h in run.module.history] == pytest.approx([share_of_0] * 2)
    assert run.module.best["state"]["classifier.bias"].tolist() == run.module.model.classifier.bias.tolist() == [1, 0]
    run, _ = tiny_run(tmp_path, "method=ema")
    for p, q in zip(run.module.model.parameters(), run.module.strategies[0].average.module.parameters()):
        assert torch.equal(p, q)


# ------------------------------------------------------------------ parameter-efficient tuning
def test_lora_trains_adapters_and_head_from_the_same_function():
    model, x = tiny_model().eval(), {k: v for k, v in batch().items() if k != "labels"}
    before = model(**x).logits.detach()
    module_with(LoRA(r=4, alpha=8, target_modules=["query", "value"]), model=model)
    model.eval()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n or n.startswith("classifier.") for n in trainable)
    assert {"classifier.weight", "classifier.bias"} <= trainable
    assert sum(".query.lora_A" in n for n in trainable) == 4  # one adapter per block
    torch.testing.assert_close(model(**x).logits, before)  # B = 0 at the start


def test_lora_run_moves_adapters_and_head_only(tmp_path):
    run, start = tiny_run(tmp_path, "method=lora")
    for name, p in run.module.model.named_parameters():
        assert torch.equal(p, start[name]) != p.requires_grad, name


def test_bitfit_trains_biases_and_head_only(tmp_path):
    run, start = tiny_run(tmp_path, "method=bitfit")
    model = run.module.model
    for name, p in model.named_parameters():
        trains = name.endswith("bias") or layers.layer_of(model, name) == "head"
        assert p.requires_grad == trains and (trains or torch.equal(p, start[name])), name
    bias = "bert.encoder.layer.0.output.dense.bias"
    assert not torch.equal(model.get_parameter(bias), start[bias])


@pytest.mark.parametrize("methods,message", [
    ("[reinit,lora]", r"method\.strategies\.lora: cannot be combined with method\.strategies\.reinit"),
    ("[lora,mixout]", r"method\.strategies\.mixout: cannot be combined with method\.strategies\.lora"),
    ("[bitfit,gradual_unfreeze]", r"gradual_unfreeze: cannot be combined with method\.strategies\.bitfit"),
    ("[ema,swa]", r"method\.strategies\.swa: cannot be combined with method\.strategies\.ema")])
def test_combinations_that_cannot_work_are_refused(tmp_path, methods, message):
    with pytest.raises(ConfigError, match=message):
        build_method(make_cfg(tmp_path, f"method={methods}").method)


# ------------------------------------------------------------------ LP-FT
class Order(Strategy):
    """Records when the hooks new with these methods are called."""

    def __init__(self):
        self.calls = []

    def on_train_start(self, module):
        self.calls.append(("start", module.global_step, sum(1 for _ in module.train_batches(1.5))))

    def after_clipping(self, module, optimizer):
        norm = torch.stack([p.grad.norm() for p in module.model.parameters() if p.grad is not None]).norm()
        self.calls.append(("clipped", norm.item() <= 1e-3 * (1 + 1e-4)))


def test_new_hooks_are_called_in_their_place(tmp_path):
    order = Order()
    tiny_run(tmp_path, "optim.clip_norm=0.001", "data.train_size=64", extra=order)
    assert order.calls[0] == ("start", 0, 3)  # 1.5 passes of 2 batches, before the first step
    assert order.calls[1:] == [("clipped", True)] * 4


@pytest.mark.parametrize("methods", ["noisytune", "childtuning_f", "childtuning_d", "r3f", "ema", "swa", "lora",
                                     "bitfit", "lpft", "[lora,lpft]", "[bitfit,ema]", "[reinit,r3f,childtuning_f]"])
def test_every_method_file_composes_and_builds(tmp_path, methods):
    cfg = make_cfg(tmp_path, f"method={methods}")
    assert EvalPlan(cfg.eval.times, cfg.eval.per_epoch, cfg.eval.patience).problems() == []
    assert len(build_method(cfg.method)) == methods.count(",") + 1  # mosbach: a test of its own
