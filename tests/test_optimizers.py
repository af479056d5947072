"""`optim.eps_placement`: torch.optim.AdamW by default, or the papers' transformers AdamW, which
adds eps before bias correction and decays the weight after the step."""
import math

import pytest
import torch

from stabilize import tasks
from stabilize.config import validate
from stabilize.errors import ConfigError
from stabilize.module import FineTuner
from stabilize.optimizers import TransformersAdamW
from tests.conftest import make_cfg
from tests.test_strategies import tiny_model

LR, B1, B2, EPS, WD = 0.01, 0.9, 0.999, 1e-3, 0.1


def steps(optimizer, param, grads):
    for g in grads:
        param.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()


def test_three_steps_match_the_hand_computation():
    start = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    grads = [[1.0, -0.002, 0.5], [-0.3, 0.001, 1.0], [0.2, -0.004, -2.0]]
    p = torch.nn.Parameter(start.clone())
    steps(TransformersAdamW([p], lr=LR, betas=(B1, B2), eps=EPS, weight_decay=WD), p, grads)

    x, m, v = start.clone(), torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for t, g in enumerate(grads, 1):
        g = torch.tensor(g, dtype=torch.float64)
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g ** 2
        # update = lr * sqrt(1 - B2^t) / (1 - B1^t) * m / (sqrt(v) + eps): eps before the correction
        x = x - LR * math.sqrt(1 - B2 ** t) / (1 - B1 ** t) * m / (v.sqrt() + EPS)
        x = x - LR * WD * x  # decoupled decay after the step, of the updated weight
    torch.testing.assert_close(p.detach(), x, rtol=1e-13, atol=1e-15)

    q = torch.nn.Parameter(start.clone())  # torch's AdamW: another number
    steps(torch.optim.AdamW([q], lr=LR, betas=(B1, B2), eps=EPS, weight_decay=WD), q, grads)
    assert not torch.allclose(p.detach(), q.detach(), rtol=1e-6, atol=0)


def test_first_step_is_torchs_with_an_eps_larger_by_one_over_sqrt_1_minus_beta2():
    g = torch.tensor([1e-3, -3e-3, 2e-2], dtype=torch.float64)  # gradients of eps's size
    ours, torchs = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64)), \
        torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    steps(TransformersAdamW([ours], lr=LR, eps=EPS), ours, [g.tolist()])
    steps(torch.optim.AdamW([torchs], lr=LR, eps=EPS / math.sqrt(1 - B2), weight_decay=0.0), torchs, [g.tolist()])
    assert 1 / math.sqrt(1 - B2) == pytest.approx(31.62, abs=0.01)
    torch.testing.assert_close(ours.detach(), torchs.detach(), rtol=1e-12, atol=0)
    # step 1: -lr * g / (|g| + eps / sqrt(1 - B2))
    torch.testing.assert_close(ours.detach(), -LR * g / (g.abs() + EPS / math.sqrt(1 - B2)), rtol=1e-12, atol=0)


def test_without_eps_and_decay_it_is_adam():
    p, q = (torch.nn.Parameter(torch.tensor([0.3, -0.7], dtype=torch.float64)) for _ in range(2))
    grads = [[1.0, -0.5], [-0.3, 0.8], [0.6, 0.1]]
    steps(TransformersAdamW([p], lr=LR, eps=0.0), p, grads)
    steps(torch.optim.AdamW([q], lr=LR, eps=0.0, weight_decay=0.0), q, grads)
    torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=0)


def test_a_tensor_that_starts_later_counts_its_own_steps():
    early, late, alone = (torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64)) for _ in range(3))
    both = TransformersAdamW([early, late], lr=LR, eps=EPS)
    for k in range(3):  # `late` frozen for two steps, as gradual unfreezing does
        early.grad = torch.tensor([0.5], dtype=torch.float64)
        late.grad = torch.tensor([0.2], dtype=torch.float64) if k == 2 else None
        both.step()
    steps(TransformersAdamW([alone], lr=LR, eps=EPS), alone, [[0.2]])
    assert both.state[late]["step"] == 1 and both.state[early]["step"] == 3
    assert late.item() == alone.item()


def test_the_default_is_torchs_adamw_and_before_correction_the_papers(tmp_path):
    for placement, cls in (("after_correction", torch.optim.AdamW), ("before_correction", TransformersAdamW)):
        cfg = make_cfg(tmp_path, f"optim.eps_placement={placement}", "optim.weight_decay=0.01")
        module = FineTuner(tiny_model(), tasks.load("rte"), [], cfg.optim, eval_times=1)
        module.plan(10, 10)
        optimizer = module.configure_optimizers()["optimizer"]
        assert type(optimizer) is cls
        assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]  # biases, LayerNorm: none
        assert {g["eps"] for g in optimizer.param_groups} == {1e-8}
    assert make_cfg(tmp_path).optim.eps_placement == "after_correction"
    with pytest.raises(ConfigError, match=r"optim\.eps_placement: 'before'"):
        validate(make_cfg(tmp_path, "optim.eps_placement=before"))
