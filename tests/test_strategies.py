"""Each strategy changes what its paper says, and only that: every test fails on a no-op."""
import json
import math

import pytest
import torch
from omegaconf import OmegaConf

from stabilize import layers, models, tasks
from stabilize.errors import ConfigError
from stabilize.module import FineTuner
from stabilize.strategies import (ComponentWiseClipping, GradualUnfreezing, Intermediate, LayerwiseLRDecay,
                                  MixLinear, Mixout, PriorWeightDecay, build_method)
from stabilize.strategies.base import method_name
from stabilize.strategies.component_clip import clip_per_tensor
from stabilize.train import train
from tests import conftest
from tests.conftest import make_cfg

OPTIM = OmegaConf.create({"lr": 1e-3, "eps": 1e-8, "betas": [0.9, 0.999], "weight_decay": 0.0,
                          "warmup_ratio": 0.0, "clip_norm": 1.0})


def tiny_model(num_labels=2, layers_=4, hidden=64):
    """stabilize/conf/model/tiny.yaml's random model with `layers_` blocks and a 100-token vocabulary."""
    return conftest.tiny_model(num_labels, num_hidden_layers=layers_, hidden_size=hidden, vocab_size=100)


def module_with(*strategies, model=None, optim=OPTIM):
    return FineTuner(model or tiny_model(), tasks.load("rte"), list(strategies), optim, eval_times=1)


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def batch(n=4, length=8, vocab=100):
    g = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(0, vocab, (n, length), generator=g),
            "token_type_ids": torch.zeros(n, length, dtype=torch.long),
            "attention_mask": torch.ones(n, length, dtype=torch.long),
            "labels": torch.tensor([0, 1] * (n // 2))}


# ------------------------------------------------------------------ Mixout
def test_mixout_p0_equals_the_plain_model():
    plain = tiny_model()
    mixed = tiny_model()
    mixed.load_state_dict(plain.state_dict())
    module_with(Mixout(p=0.0), model=mixed)
    assert sum(isinstance(m, MixLinear) for m in mixed.modules()) > 0
    plain.eval()  # no dropout, like Mixout's model
    mixed.train()
    b = batch()
    out_plain = plain(**{k: v for k, v in b.items() if k != "labels"}).logits
    out_mixed = mixed(**{k: v for k, v in b.items() if k != "labels"}).logits
    torch.testing.assert_close(out_mixed, out_plain, rtol=1e-5, atol=1e-6)


def test_mixout_expectation_is_the_fine_tuned_weight_and_eval_is_deterministic():
    torch.manual_seed(0)
    layer = MixLinear(torch.nn.Linear(16, 8), p=0.7)
    with torch.no_grad():
        layer.weight.add_(1.0)  # "fine-tuned": away from the pre-trained target
    draws = torch.stack([layer.mixed_weight() for _ in range(20000)])
    torch.testing.assert_close(draws.mean(0), layer.weight.detach(), atol=0.03, rtol=0)
    assert not torch.allclose(draws[0], draws[1])  # a fresh mask per forward
    # one draw per input unit: every column is either all W0 or all rescaled W
    col_is_target = (draws[0] == layer.target).all(0)
    col_is_mixed = torch.isclose(draws[0], layer.target + (layer.weight - layer.target) / 0.3).all(0)
    assert torch.all(col_is_target | col_is_mixed)
    layer.eval()
    x = torch.randn(3, 16)
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    assert torch.equal(layer(x), layer(x))


def test_mixout_turns_dropout_off_and_keeps_one_copy():
    model = tiny_model()
    module_with(Mixout(p=0.5), model=model)
    assert all(m.p == 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert not any(k.endswith("target") for k in model.state_dict())  # not in checkpoints


def test_mixout_rejects_bad_p():
    with pytest.raises(ConfigError, match=r"method\.strategies\.mixout"):
        build_method(OmegaConf.create({"strategies": {"mixout": {"_target_": "stabilize.strategies.Mixout",
                                                                 "p": 1.5}}}))


# ------------------------------------------------------------------ LLRD
def test_llrd_sets_each_parameters_learning_rate():
    model = tiny_model(layers_=4)
    optim = OmegaConf.merge(OPTIM, {"weight_decay": 0.01})
    module = module_with(LayerwiseLRDecay(decay=0.9), model=model, optim=optim)
    module.plan(10, 10)
    optimizer = module.configure_optimizers()["optimizer"]
    lr_of = {}
    for g in optimizer.param_groups:
        for name, p in zip(g["names"], g["params"]):
            lr_of[name] = (g["lr"], g["weight_decay"])
    assert len(lr_of) == len(list(model.parameters()))
    for name, (lr, wd) in lr_of.items():
        depth = layers.depth(model, layers.layer_of(model, name))
        assert lr == pytest.approx(1e-3 * 0.9 ** (5 - depth)), name
        assert wd == (0.0 if name.endswith(layers.NO_DECAY) else 0.01), name
    assert lr_of["classifier.weight"][0] == lr_of["bert.pooler.dense.weight"][0] == 1e-3
    assert lr_of["bert.embeddings.word_embeddings.weight"][0] == pytest.approx(1e-3 * 0.9 ** 5)


# ------------------------------------------------------------------ weight decay
def test_prior_weight_decay_pulls_toward_pretrained_and_skips_biases():
    model = tiny_model()
    strategy = PriorWeightDecay(strength=0.5)
    module = module_with(strategy, model=model)
    p0 = params(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy.after_optimizer_step(module, optimizer)
    for name, p in model.named_parameters():
        moved = p0[name] + 1.0
        if name.endswith(layers.NO_DECAY) or layers.layer_of(model, name) == "head":
            torch.testing.assert_close(p.detach(), moved)
        else:  # p - lr * strength * (p - p0) = p0 + 1 - 0.05
            torch.testing.assert_close(p.detach(), moved - 0.1 * 0.5 * 1.0, msg=name)


def test_plain_weight_decay_changes_weights_but_not_biases():
    model = tiny_model()
    module = module_with(model=model, optim=OmegaConf.merge(OPTIM, {"weight_decay": 0.1}))
    module.plan(10, 10)
    optimizer = module.configure_optimizers()["optimizer"]
    before = params(model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    w = "bert.encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(model.get_parameter(w).detach(), before[w] * (1 - 1e-3 * 0.1))
    assert torch.equal(model.get_parameter("bert.encoder.layer.0.attention.self.query.bias"),
                       before["bert.encoder.layer.0.attention.self.query.bias"])


# ------------------------------------------------------------------ component-wise clipping
def test_component_clipping_bounds_every_tensor_and_keeps_small_ones():
    torch.manual_seed(0)
    grads = [torch.randn(50) * s for s in (0.001, 0.01, 1.0, 10.0, 100.0)]
    before = [g.clone() for g in grads]
    clip_per_tensor(grads, 0.5)
    for g, b in zip(grads, before):
        assert g.norm() <= 0.5 + 1e-5
        if b.norm() < 0.5:
            assert torch.equal(g, b)
        else:  # direction kept
            torch.testing.assert_close(g / g.norm(), b / b.norm())


def test_component_clipping_with_huge_threshold_is_no_clipping():
    model = tiny_model()
    module = module_with(ComponentWiseClipping(max_norm=1e9), model=model)
    out = model(**{k: v for k, v in batch().items() if k != "labels"})
    (out.logits.pow(2).sum() * 1e4).backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert module.strategies[0].clip_gradients(module, None) is True
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.equal(p.grad, before[n])


def test_component_clipping_runs_in_training(cfg_factory):
    r = train(cfg_factory("method=component_clip", "method.strategies.component_clip.max_norm=0.01"))
    assert r["status"] in ("ok", "failed"), r["error"]


# ------------------------------------------------------------------ gradual unfreezing
def test_gradual_unfreezing_trains_only_unfrozen_blocks_and_reaches_all():
    model = tiny_model(layers_=3)
    strategy = GradualUnfreezing(epochs_per_stage=1)
    module = module_with(strategy, model=model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    seen_trained = set()
    for epoch in range(4):
        strategy.on_train_epoch_start(module, epoch)
        before = params(model)
        optimizer.zero_grad()
        out = model(**{k: v for k, v in batch().items() if k != "labels"})
        out.logits.sum().backward()
        optimizer.step()
        changed = {layers.layer_of(model, n) for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        expected = {"head", "pooler"} | {f"layer.{i}" for i in range(max(0, 2 - epoch), 3)}
        if epoch >= 3:
            expected |= {"embeddings"}
        assert changed == expected, (epoch, changed)
        with_state = {layers.layer_of(model, n) for n, p in model.named_parameters() if optimizer.state.get(p)}
        assert with_state == seen_trained | changed  # a frozen block has no optimizer state yet
        seen_trained |= changed
    assert seen_trained == set(layers.ordered_layers(model))


def test_gradual_unfreezing_reports_its_length(cfg_factory):
    r = train(cfg_factory("method=gradual_unfreeze", "optim.max_steps=null", "optim.max_epochs=1",
                          "data.train_size=64"))
    assert r["status"] in ("ok", "failed"), r["error"]
    # tiny has 2 blocks: 2 stages of 1 epoch (2 steps each) before the usual 1 epoch
    assert r["extra_steps_for_unfreezing"] == 4 and r["steps"] == 6
    assert [s["lowest_depth"] for s in r["unfreeze_stages"]] == [2, 1, 0]


# ------------------------------------------------------------------ longer, intermediate, analysis
def test_longer_runs_exactly_max_steps(cfg_factory):
    r = train(cfg_factory("method=longer", "optim.max_steps=7"))
    assert r["steps"] == 7 and r["method"] == "longer"


def test_intermediate_chain_loads_the_first_runs_encoder(tmp_path):

    first = train(make_cfg(tmp_path / "a", "task=stsb", "save_model=true"))
    assert first["status"] in ("ok", "failed"), first["error"]
    saved = torch.load(tmp_path / "a" / "run" / "model.pt", weights_only=True)
    cfg = make_cfg(tmp_path / "b", "method=intermediate", f"method.strategies.intermediate.init_from={tmp_path / 'a' / 'run'}")
    model, _ = models.load(cfg.model, 2)
    strategy = build_method(cfg.method)[0]
    assert isinstance(strategy, Intermediate)
    module_with(strategy, model=model)
    state = model.state_dict()
    for k, v in saved.items():
        if k.startswith("bert."):
            assert torch.equal(state[k], v), k
    assert state["classifier.weight"].shape[0] == 2  # new head for 2 labels (STS-B had 1)
    second = train(cfg)
    assert second["status"] in ("ok", "failed"), second["error"]
    assert second["init_tensors_loaded"] == sum(k.startswith("bert.") for k in saved)


def test_strategy_order_and_composition(cfg_factory):
    cfg = cfg_factory("method=[reinit,llrd]")
    assert [s.key for s in build_method(cfg.method)] == ["reinit", "llrd"]
    cfg = cfg_factory("method=reinit_longer")
    assert cfg.optim.max_steps == 4  # TINY's override wins over the method's 800
    assert [s.key for s in build_method(cfg.method)] == ["reinit"] and method_name(cfg.method) == "reinit+longer"
    cfg = cfg_factory("method=[cwgnc_baseline,gradual_unfreeze]")
    assert method_name(cfg.method) == "cwgnc_baseline+gradual_unfreeze" and cfg.optim.batch_size == 16


def test_weight_change_file(cfg_factory, tmp_path):
    r = train(cfg_factory("method=reinit", "analysis.weight_change=true"))
    wc = json.loads((tmp_path / "run" / "weight_change.json").read_text())
    assert wc["layers"] == ["embeddings", "layer.0", "layer.1", "pooler", "head"]
    assert all(math.isfinite(x) and x > 0 for x in wc["l2"])
    assert r["status"] in ("ok", "failed")
