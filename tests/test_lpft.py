"""LP-FT's probe fitted as Kumar et al. fit it: logistic regression (Ridge for regression) on
eval-mode features, its regularization chosen on validation, written into the head's last layer."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from stabilize import tasks
from stabilize.module import FineTuner
from stabilize.strategies import LPFT
from stabilize.strategies.lpft import AUTHORS_GRID, fit_probe
from tests import conftest
from stabilize import layers
from stabilize.strategies import Strategy
from tests.test_methods_after import tiny_run
from tests.test_strategies import OPTIM, params, tiny_model

GRID = np.logspace(-4, 4, 9)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny forwards: on a shared 2-core machine two torch threads make each one 40x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ on a tiny model
def rows(n: int, seed: int, regression: bool) -> list[dict]:
    """Batches of 8 rows: class 0 draws its tokens from 10..49, class 1 from 50..89 (regression:
    a score of 4 * class + U(0, 0.5)), so the pooled features of the random model separate."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    ids = torch.randint(10, 50, (n, 8), generator=g) + 40 * y[:, None]
    labels = y * 4.0 + 0.5 * torch.rand(n, generator=g) if regression else y
    return [{"input_ids": ids[i:i + 8], "token_type_ids": torch.zeros(8, 8, dtype=torch.long),
             "attention_mask": torch.ones(8, 8, dtype=torch.long), "labels": labels[i:i + 8]}
            for i in range(0, n, 8)]


class Data:
    """What the strategy reads of a data module: training batches and the splits in order."""

    def __init__(self, regression: bool):
        self.splits = {"train": rows(32, 0, regression), "val": rows(32, 1, regression)}

    def train_dataloader(self):
        return self.splits["train"]

    def eval_dataloader(self, split):
        return self.splits[split]


def probed(probe: str, task: str, model=None) -> tuple[FineTuner, dict]:
    """A module whose LPFT strategy has probed on `Data`; returns it and the weights before."""
    spec = tasks.load(task)
    model = model or tiny_model(num_labels=spec.num_labels)
    module = FineTuner(model, spec, [LPFT(probe=probe, grid=GRID)], OPTIM, eval_times=1)
    module._trainer = SimpleNamespace(datamodule=Data(spec.is_regression))
    start = params(model)
    module.strategies[0].on_train_start(module)
    return module, start


@pytest.mark.parametrize("task", ["rte", "stsb"])
def test_the_fitted_probe_ends_far_below_the_random_head_and_the_gradient_probe(task):
    fitted, start = probed("fit", task)
    gradient, _ = probed("gradient", task)
    fit, grad = fitted.strategies[0].results(fitted), gradient.strategies[0].results(gradient)
    assert fit["probe_init_loss"] == pytest.approx(grad["probe_init_loss"])  # the same random head
    assert fit["probe_train_loss"] < 0.6 * fit["probe_init_loss"]  # rte: 0.40 against 0.69; stsb: 0.41 against 9.1
    assert fit["probe_train_loss"] < 0.7 * grad["probe_train_loss"]  # the gradient probe: 0.693, 8.7
    assert (fit["probe"], fit["probe_model"], grad["probe"], grad["probe_model"]) == \
        ("fit", "ridge" if task == "stsb" else "logistic_regression", "gradient", None)
    assert fit["probe_steps"] == 0 and grad["probe_steps"] == 12  # 3 passes of 4 batches
    for name, p in fitted.model.named_parameters():  # the classifier alone is written
        assert torch.equal(p, start[name]) != name.startswith("classifier."), name


def test_a_two_layer_head_keeps_its_first_layer_and_fits_the_last():
    model = conftest.tiny_model(model_type="roberta", vocab_size=100, hidden_size=64, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=2)
    module, start = probed("fit", "rte", model)
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, start[name])}
    assert moved == {"classifier.out_proj.weight", "classifier.out_proj.bias"}
    assert module.strategies[0].results(module)["probe_train_loss"] < 0.6


# ------------------------------------------------------------------ the fit itself
def classes(n0: int, n1: int, spurious: float, seed: int):
    """x0 carries the label (class means -3 and 3, spread 3); x1 = `spurious` * (2y - 1) separates the
    rows exactly. Fitted with 20 rows of class 0 and 10 of class 1 and validated with x1 pointing the
    other way (spurious < 0), a tiny C predicts the training majority and a large C leans on x1."""
    g = np.random.default_rng(seed)
    y = np.array([0] * n0 + [1] * n1)
    x = np.stack([3 * (2 * y - 1) + 3 * g.normal(size=len(y)), spurious * (2 * y - 1)], 1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def scores(n: int, spurious: float, seed: int):
    """y = 3 + 2 x0 + noise; x1 = `spurious` * noise: a small alpha fits the training noise through x1."""
    g = np.random.default_rng(seed)
    x0, noise = g.normal(size=n), g.normal(size=n)
    x = np.stack([x0, spurious * noise], 1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(3 + 2 * x0 + noise, dtype=torch.float32)


def test_the_regularization_is_chosen_on_validation():
    (x, y), (xv, yv) = classes(20, 10, 0.3, seed=0), classes(50, 50, -0.3, seed=1)
    fitted = fit_probe(x, y, xv, yv, tasks.load("rte"), GRID)
    accuracy = [a for _, a, _ in fitted["probe_curve"]]
    assert [c for c, _, _ in fitted["probe_curve"]] == pytest.approx(GRID)
    assert accuracy[0] == 0.5 and accuracy[-1] < 0.6 and max(accuracy) > 0.8  # both ends far worse
    best = [row for row in fitted["probe_curve"] if row[1] == max(accuracy)]
    assert fitted["probe_reg"] == min(best, key=lambda row: row[2])[0]  # ties: the lower cross-entropy
    assert GRID[0] < fitted["probe_reg"] < GRID[-1]
    assert fitted["probe_reg_name"] == "C" and fitted["probe_selected_by"] == "accuracy, then cross_entropy"


def test_ridge_alpha_is_chosen_on_validation_mse():
    (x, y), (xv, yv) = scores(30, 0.05, seed=0), scores(100, -0.05, seed=1)
    fitted = fit_probe(x, y, xv, yv, tasks.load("stsb"), GRID)
    mse = [m for _, m in fitted["probe_curve"]]
    assert mse.index(min(mse)) not in (0, len(GRID) - 1) and min(mse) < 0.5 * min(mse[0], mse[-1])
    assert fitted["probe_reg"] == pytest.approx(1 / (2 * GRID[mse.index(min(mse))]))  # alpha = 1 / (2C)
    prediction = xv @ fitted["weight"].T + fitted["bias"]
    assert torch.mean((prediction.squeeze(-1) - yv) ** 2).item() == pytest.approx(min(mse), rel=1e-5)


@pytest.mark.parametrize("k", [2, 3])
def test_the_head_gives_the_logistic_regressions_probabilities_on_raw_features(k):
    g = np.random.default_rng(0)
    y = np.arange(60) % k
    x = g.normal(size=(60, 5)) * 4 + 7 + y[:, None] * np.arange(5)  # off-centre, as a pooler's output is
    spec = tasks.load("rte") if k == 2 else SimpleNamespace(is_regression=False, num_labels=3, select_metric="accuracy")
    fitted = fit_probe(torch.tensor(x, dtype=torch.float32), torch.tensor(y), torch.tensor(x, dtype=torch.float32),
                       torch.tensor(y), spec, [0.3])
    z = (x - x.mean()) / x.std()  # the authors' scaling: one mean, one standard deviation
    reference = LogisticRegression(C=0.3, max_iter=10_000).fit(z, y).predict_proba(z)
    ours = torch.softmax(torch.tensor(x, dtype=torch.float32) @ fitted["weight"].T + fitted["bias"], -1)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-4)
    assert fitted["weight"].shape == (k, 5) and fitted["probe_converged"]


def test_the_default_grid_is_the_authors():
    assert len(AUTHORS_GRID) == 50 and AUTHORS_GRID[0] == pytest.approx(1e-7) and AUTHORS_GRID[-1] == pytest.approx(100)
    assert LPFT().probe == "fit" and LPFT().grid == AUTHORS_GRID
    with pytest.raises(ValueError, match="fit or gradient"):
        LPFT(probe="closed_form")


# ------------------------------------------------------------------ in a whole tiny run
class Snapshot(Strategy):
    """The weights and trainable flags when training starts, after the strategies before it."""

    def on_train_start(self, module):
        self.weights, self.trains = params(module.model), [p.requires_grad for p in module.model.parameters()]


def test_lpft_gradient_probe_trains_the_head_then_releases_the_rest(tmp_path):
    snapshot = Snapshot()
    run, start = tiny_run(tmp_path, "method=lpft", "method.strategies.lpft.probe=gradient",
                          "method.strategies.lpft.epochs=2.5", "data.train_size=64", extra=snapshot)
    assert run.module.strategies[0].probe_steps == 5  # 2.5 passes of 2 batches
    for name in start:
        moved = not torch.equal(snapshot.weights[name], start[name])
        assert moved == (layers.layer_of(run.module.model, name) == "head"), name
    assert all(snapshot.trains)  # everything trains in the run proper


def test_lpft_fitted_probe_writes_the_head_and_records_the_fit(tmp_path):
    snapshot = Snapshot()
    run, start = tiny_run(tmp_path, "method=lpft", "method.strategies.lpft.grid=[0.01,1,100]", extra=snapshot)
    for name in start:
        assert torch.equal(snapshot.weights[name], start[name]) != name.startswith("classifier."), name
    assert all(snapshot.trains)
    fit = run.module.strategies[0].results(run.module)
    assert fit["probe"] == "fit" and fit["probe_reg"] in (0.01, 1, 100) and len(fit["probe_curve"]) == 3
    assert fit["probe_train_loss"] < fit["probe_init_loss"]
