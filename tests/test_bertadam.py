"""BERTAdam: Adam without bias correction, with decoupled weight decay per parameter group."""
import math
from types import SimpleNamespace

import pytest
import torch

from stabilize.strategies import BERTAdam, BertAdamOptimizer

LR, B1, B2, EPS = 0.01, 0.9, 0.999, 1e-8


def _param(values):
    return torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))


def _step(optimizer, params, grads):
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float64)
    optimizer.step()


def test_first_step_larger_than_adam_by_bias_factor():
    start = [0.5, -1.0, 2.0, 0.0]
    grad = [1.0, -2.0, 0.5, 3.0]  # large relative to eps
    p_adam, p_bert = _param(start), _param(start)
    _step(torch.optim.Adam([p_adam], lr=LR, betas=(B1, B2), eps=EPS), [p_adam], [grad])
    _step(BertAdamOptimizer([p_bert], lr=LR, betas=(B1, B2), eps=EPS), [p_bert], [grad])
    d_adam = p_adam.detach() - torch.tensor(start, dtype=torch.float64)
    d_bert = p_bert.detach() - torch.tensor(start, dtype=torch.float64)
    factor = (1 - B1) / math.sqrt(1 - B2)
    assert factor == pytest.approx(3.1623, abs=1e-4)
    torch.testing.assert_close(d_bert / d_adam, torch.full_like(d_adam, factor), rtol=1e-6, atol=0)
    # first step moves every coordinate by lr * factor against the gradient's sign
    torch.testing.assert_close(d_bert, -LR * factor * torch.sign(torch.tensor(grad, dtype=torch.float64)),
                               rtol=1e-6, atol=0)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99), (0.0, 0.5)])
def test_factor_for_other_betas(betas):
    b1, b2 = betas
    p_adam, p_bert = _param([1.0]), _param([1.0])
    _step(torch.optim.Adam([p_adam], lr=LR, betas=betas, eps=EPS), [p_adam], [[4.0]])
    _step(BertAdamOptimizer([p_bert], lr=LR, betas=betas, eps=EPS), [p_bert], [[4.0]])
    ratio = (p_bert.item() - 1.0) / (p_adam.item() - 1.0)
    assert ratio == pytest.approx((1 - b1) / math.sqrt(1 - b2), rel=1e-6)


def test_two_steps_match_hand_computation_without_bias_correction():
    start = torch.tensor([0.3, -0.7, 1.5], dtype=torch.float64)
    g1 = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    g2 = torch.tensor([-0.3, 0.8, 1.0], dtype=torch.float64)
    p = _param(start.tolist())
    opt = BertAdamOptimizer([p], lr=LR, betas=(B1, B2), eps=EPS)
    _step(opt, [p], [g1.tolist()])
    _step(opt, [p], [g2.tolist()])

    m = (1 - B1) * g1
    v = (1 - B2) * g1 ** 2
    x = start - LR * m / (v.sqrt() + EPS)
    m = B1 * m + (1 - B1) * g2
    v = B2 * v + (1 - B2) * g2 ** 2
    x = x - LR * m / (v.sqrt() + EPS)
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-14)

    # and that is not what bias-corrected Adam does
    q = _param(start.tolist())
    adam = torch.optim.Adam([q], lr=LR, betas=(B1, B2), eps=EPS)
    _step(adam, [q], [g1.tolist()])
    _step(adam, [q], [g2.tolist()])
    assert not torch.allclose(p.detach(), q.detach(), rtol=1e-4, atol=0)


def test_weight_decay_per_group():
    start, grad, wd = [1.0, -2.0, 0.5], [0.4, 0.1, -0.2], 0.1
    decayed, plain, reference = _param(start), _param(start), _param(start)
    opt = BertAdamOptimizer([{"params": [decayed], "weight_decay": wd}, {"params": [plain]}],
                            lr=LR, betas=(B1, B2), eps=EPS, weight_decay=0.0)
    ref = BertAdamOptimizer([reference], lr=LR, betas=(B1, B2), eps=EPS, weight_decay=0.0)
    _step(opt, [decayed, plain], [grad, grad])
    _step(ref, [reference], [grad])
    # the group without decay is a plain BERTAdam step
    torch.testing.assert_close(plain.detach(), reference.detach(), rtol=0, atol=0)
    # decoupled decay: lr * wd * weight more, not scaled by the adaptive denominator
    expected = reference.detach() - LR * wd * torch.tensor(start, dtype=torch.float64)
    torch.testing.assert_close(decayed.detach(), expected, rtol=1e-12, atol=1e-15)


def test_group_zero_decay_overrides_default():
    start, grad = [1.0, -2.0], [0.3, 0.3]
    decayed, plain = _param(start), _param(start)
    opt = BertAdamOptimizer([{"params": [decayed]}, {"params": [plain], "weight_decay": 0.0}],
                            lr=LR, betas=(B1, B2), eps=EPS, weight_decay=0.5)
    _step(opt, [decayed, plain], [grad, grad])
    diff = (plain.detach() - decayed.detach())
    torch.testing.assert_close(diff, LR * 0.5 * torch.tensor(start, dtype=torch.float64), rtol=1e-12, atol=1e-15)


def test_params_without_grad_untouched():
    a, b = _param([1.0]), _param([2.0])
    opt = BertAdamOptimizer([a, b], lr=LR, weight_decay=0.1)
    a.grad = torch.tensor([1.0], dtype=torch.float64)
    opt.step()
    assert b.item() == 2.0 and a.item() != 1.0


def test_invalid_settings_rejected():
    p = [_param([1.0])]
    for kwargs in ({"lr": 0.0}, {"eps": 0.0}, {"betas": (1.0, 0.999)}, {"betas": (0.9, -0.1)}):
        with pytest.raises(ValueError):
            BertAdamOptimizer(p, **kwargs)


def test_strategy_builds_optimizer_from_run_settings():
    model = torch.nn.Linear(3, 2)
    optim = SimpleNamespace(lr=3e-5, betas=[0.8, 0.98], eps=1e-7, weight_decay=0.01)
    groups = [{"params": [model.weight], "names": ["weight"], "weight_decay": 0.01},
              {"params": [model.bias], "names": ["bias"], "weight_decay": 0.0}]
    opt = BERTAdam().build_optimizer(SimpleNamespace(optim=optim), groups)
    assert isinstance(opt, BertAdamOptimizer)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    for g in opt.param_groups:
        assert g["lr"] == 3e-5 and tuple(g["betas"]) == (0.8, 0.98) and g["eps"] == 1e-7
