"""Under-trained or over-fit? The README's `fit` block: training loss and validation, epoch by epoch.

Study A (`../../../shared/PAPERS.md`, section A) reads `longer`'s gain as the baseline's too few
steps. Whether that holds here is in each run's logs in `sweep/`: the training loss (the csv
logger's, every 10 steps, dropout on) and the evaluation history in `results.json`. Per task
and epoch, averaged over the seeds: the mean training loss, and the validation score (accuracy
too, where the task has it) at the epoch's last evaluation, for `standard` and the two methods
of the papers that train more steps. A resumed run's log starts at its resumption
(`stabilize/resume.py`), so its earlier epochs count no loss. `summarize.py` calls `fit_block`.
"""
import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from stabilize.results import FINISHED, RESULTS, load

METHODS = ("standard", "longer", "gradual_unfreeze")
SHOWN = 11  # epochs shown one by one; a longer run adds its last


def epochs(run: Path, record: dict) -> dict[str, dict[int, float]] | None:
    """One run's quantities by epoch (from 1): training loss, validation score, accuracy; None
    without the csv logger's file."""
    log = run / "logs" / "metrics.csv"
    if not log.is_file():
        return None
    losses = defaultdict(list)
    with open(log) as f:
        for row in csv.DictReader(f):
            if row.get("train/loss"):
                losses[int(row["epoch"]) + 1].append(float(row["train/loss"]))
    per_epoch = record["steps"] / record["epochs"]
    out = {"training loss": {e: float(np.mean(v)) for e, v in losses.items()}, "val": {}, "val accuracy": {}}
    for entry in record["history"]:  # in step order: an epoch keeps its last evaluation
        epoch = math.ceil(entry["step"] / per_epoch)
        out["val"][epoch] = entry["val"]
        if entry.get("accuracy") is not None:
            out["val accuracy"][epoch] = entry["accuracy"]
    return out


def task_table(found: dict[str, list[dict]], metric: str) -> list[str]:
    last = max(max(q, default=0) for runs in found.values() for r in runs for q in r.values())
    shown = list(range(1, min(SHOWN, last) + 1)) + ([last] if last > SHOWN else [])
    lines = ["| method | epoch | " + " | ".join(map(str, shown)) + " |", "|---|---|" + "---|" * len(shown)]
    for method, runs in found.items():
        for quantity in ("training loss", "val", "val accuracy"):
            cells = [[r[quantity][e] for r in runs if e in r[quantity]] for e in shown]
            if any(cells):
                label = f"val {metric}" if quantity == "val" else quantity
                lines.append(f"| `{method}` ({len(runs)}) | {label} | "
                             + " | ".join(f"{np.mean(c):.3f}" if c else "–" for c in cells) + " |")
    return lines


def fit_block(folder: Path, names: dict[str, str]) -> str:
    """The block, a table per task of `names` ({task: name shown}) with runs in `folder / "sweep"`."""
    found = defaultdict(lambda: defaultdict(list))
    metrics = {}
    for path in sorted((folder / "sweep").glob(f"*/{RESULTS}")):
        record = load(path)
        if record["status"] in FINISHED and record["method"] in METHODS and record["task"] in names:
            if (by_epoch := epochs(path.parent, record)) is not None:
                found[record["task"]][record["method"]].append(by_epoch)
                metrics[record["task"]] = record["metric"]
    if not found:
        return "Not run yet."
    return "\n\n".join(
        f"{name} (seeds in parentheses; each value the mean over them):\n\n"
        + "\n".join(task_table({m: found[task][m] for m in METHODS if m in found[task]}, metrics[task]))
        for task, name in names.items() if task in found)
