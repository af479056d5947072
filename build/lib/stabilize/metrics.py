"""Task metrics, one definition per name, and the majority-class baseline; the verdict is in results.py.

Classification metrics take class indices for any number of classes (`f1` is binary: the F1
of class 1); regression metrics take real scores. A correlation is 0 when either side is
constant: torchmetrics' Matthews correlation of constant predictions is 1 or -1 when the
labels are constant too, and its Pearson correlation is NaN.
"""
import torch
from torchmetrics.functional import (accuracy, f1_score, matthews_corrcoef, pearson_corrcoef,
                                     spearman_corrcoef)


def _classes(k: int) -> dict:
    return {"task": "binary"} if k == 2 else {"task": "multiclass", "num_classes": k}


def _constant(x: torch.Tensor) -> bool:
    return x.unique().numel() <= 1


def _accuracy(preds, labels, k):
    return accuracy(preds, labels, **_classes(k), average="micro")


def _f1(preds, labels, k):
    return f1_score(preds, labels, task="binary")


def _macro_f1(preds, labels, k):
    return f1_score(preds, labels, task="multiclass", num_classes=k, average="macro")


def _mcc(preds, labels, k):
    return 0.0 if _constant(preds) or _constant(labels) else matthews_corrcoef(preds, labels, **_classes(k))


def _pearson(preds, labels, k):
    return 0.0 if _constant(preds) or _constant(labels) else pearson_corrcoef(preds.float(), labels.float())


def _spearman(preds, labels, k):
    if preds.float().std() == 0 or labels.float().std() == 0:
        return 0.0  # a constant carries no ranking
    return spearman_corrcoef(preds.float(), labels.float())


METRICS = {"accuracy": _accuracy, "f1": _f1, "macro_f1": _macro_f1, "mcc": _mcc,
           "pearson": _pearson, "spearman": _spearman}
NAMES = tuple(METRICS)
REGRESSION = ("pearson", "spearman")
CLASSIFICATION = tuple(m for m in NAMES if m not in REGRESSION)


def score(metric: str, preds: torch.Tensor, labels: torch.Tensor, num_classes: int = 2) -> float:
    """`metric` of `preds` (class indices, or real scores for a regression metric)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(NAMES)}")
    return float(METRICS[metric](preds, labels, num_classes))


def majority_label(labels: torch.Tensor) -> int:
    """The most frequent class (the lowest index among equals)."""
    return int(torch.bincount(labels).argmax())


def majority_score(metric: str, labels: torch.Tensor, majority: int, num_classes: int = 2) -> float | None:
    """The metric of always predicting class `majority` (None for a regression metric)."""
    if metric in REGRESSION:
        return None
    return score(metric, torch.full_like(labels, majority), labels, num_classes)
