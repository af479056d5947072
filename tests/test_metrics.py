"""Every task metric against a hand computation, for two and for three classes; the majority baseline."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from stabilize import metrics

# binary: tp 3, tn 2, fp 2, fn 1
PREDS = torch.tensor([1, 1, 0, 0, 1, 0, 1, 1])
LABELS = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0])
# three classes; confusion matrix rows = labels, columns = predictions:
#   [[2, 1, 0], [0, 2, 1], [1, 0, 2]]
LABELS3 = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDS3 = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 0])


def test_the_metric_names_of_the_contract():
    assert set(metrics.NAMES) == {"accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman"}
    assert set(metrics.REGRESSION) == {"pearson", "spearman"}
    assert set(metrics.CLASSIFICATION) | set(metrics.REGRESSION) == set(metrics.NAMES)


def test_binary_metrics():
    tp, tn, fp, fn = 3, 2, 2, 1
    assert metrics.score("accuracy", PREDS, LABELS) == pytest.approx(5 / 8)
    assert metrics.score("f1", PREDS, LABELS) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics.score("mcc", PREDS, LABELS) == pytest.approx(mcc)
    # macro F1 of two classes: the mean of each class's F1
    f1_neg = 2 * tn / (2 * tn + fn + fp)
    assert metrics.score("macro_f1", PREDS, LABELS) == pytest.approx((2 * tp / (2 * tp + fp + fn) + f1_neg) / 2)


def test_three_class_metrics():
    c = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 2]])
    assert metrics.score("accuracy", PREDS3, LABELS3, 3) == pytest.approx(6 / 9)
    f1 = [2 * c[k, k] / (c[k].sum() + c[:, k].sum()) for k in range(3)]
    assert metrics.score("macro_f1", PREDS3, LABELS3, 3) == pytest.approx(np.mean(f1))
    # Gorodkin's multi-class MCC from the confusion matrix
    s, correct = c.sum(), np.trace(c)
    p, t = c.sum(0), c.sum(1)
    mcc = (correct * s - p @ t) / math.sqrt((s**2 - p @ p) * (s**2 - t @ t))
    assert metrics.score("mcc", PREDS3, LABELS3, 3) == pytest.approx(mcc)


def test_macro_f1_counts_a_class_never_predicted():
    preds = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0, 1])  # class 2 is never predicted: its F1 is 0
    f1 = [2 * 3 / (3 + 5), 2 * 3 / (3 + 4), 0.0]
    assert metrics.score("macro_f1", preds, LABELS3, 3) == pytest.approx(np.mean(f1))


def test_correlations():
    x = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.4])
    y = torch.tensor([1.0, 3.0, 2.0, 4.0, 5.0])
    assert metrics.score("pearson", x, y) == pytest.approx(stats.pearsonr(x.numpy(), y.numpy())[0], abs=1e-6)
    assert metrics.score("spearman", x, y) == pytest.approx(stats.spearmanr(x.numpy(), y.numpy())[0], abs=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_mcc_of_constant_predictions_is_zero(k):
    """torchmetrics says 1 (or -1) when the labels are constant too: the trap."""
    labels = LABELS if k == 2 else LABELS3
    for c in range(k):
        assert metrics.score("mcc", torch.full_like(labels, c), labels, k) == 0.0
    ones = torch.ones(6, dtype=torch.long)
    assert metrics.score("mcc", ones, ones, k) == 0.0
    assert metrics.score("mcc", ones, torch.zeros_like(ones), k) == 0.0


def test_correlation_of_a_constant_is_zero():
    x = torch.tensor([0.1, 0.5, 0.2, 0.9])
    for name in ("pearson", "spearman"):
        assert metrics.score(name, torch.full((4,), 2.0), x) == 0.0
        assert metrics.score(name, x, torch.full((4,), 2.0)) == 0.0


def test_unknown_metric_names_the_choices():
    with pytest.raises(ValueError, match="macro_f1"):
        metrics.score("auc", PREDS, LABELS)


def test_majority_class_of_k_classes():
    labels = torch.tensor([2, 2, 1, 0, 2, 1])
    assert metrics.majority_label(labels) == 2
    assert metrics.majority_label(torch.tensor([1, 0, 1, 0, 2])) == 0  # a tie: the lowest index
    test = torch.tensor([0, 1, 2, 2, 2, 1, 0, 2])
    assert metrics.majority_score("accuracy", test, 2, 3) == pytest.approx(4 / 8)
    assert metrics.majority_score("macro_f1", test, 2, 3) == pytest.approx((2 * 4 / (4 + 8)) / 3)
    assert metrics.majority_score("mcc", test, 2, 3) == 0.0
    assert metrics.majority_score("f1", LABELS, 1) == pytest.approx(2 * 4 / (4 + 8))
    assert metrics.majority_score("spearman", torch.rand(4), 0) is None
    assert metrics.majority_score("pearson", torch.rand(4), 0) is None
