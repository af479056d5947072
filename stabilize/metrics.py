"""Task metrics (torchmetrics) and the majority-class baseline; the verdict is in results.py.

torchmetrics' Matthews correlation of constant predictions is not 0: it is set to 0 here.
"""
import torch
from torchmetrics.functional import accuracy, f1_score, matthews_corrcoef, spearman_corrcoef


def score(metric: str, preds: torch.Tensor, labels: torch.Tensor) -> float:
    """`preds` are class indices, or real scores for `spearman`."""
    if metric == "spearman":
        if preds.float().std() == 0:
            return 0.0  # a constant prediction carries no ranking
        return float(spearman_corrcoef(preds.float(), labels.float()))
    if metric == "accuracy":
        return float(accuracy(preds, labels, task="binary"))
    if metric == "f1":
        return float(f1_score(preds, labels, task="binary"))
    if metric == "mcc":
        if preds.unique().numel() == 1:
            return 0.0  # Matthews correlation is 0 by definition for a constant predictor
        return float(matthews_corrcoef(preds, labels, task="binary"))
    raise ValueError(f"unknown metric {metric!r}")


def majority_label(labels: torch.Tensor) -> int:
    return int(torch.bincount(labels).argmax())


def majority_score(metric: str, labels: torch.Tensor, majority: int) -> float | None:
    """The metric of always predicting `majority` (None for regression)."""
    if metric == "spearman":
        return None
    return score(metric, torch.full_like(labels, majority), labels)

