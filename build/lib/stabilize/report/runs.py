"""Every run of a sweep as one DataFrame row (`load_runs`), and the runs' weight changes.

Each `results.json` is read with `results.load`: today's record, a file of an earlier version
upgraded (`failed_b` -> `below_threshold`, `diverged` from its reason). Nothing is judged
here: `status`, `diverged` and `below_threshold` are the record's (stabilize/results.py).
"""
import json
import math
from pathlib import Path

import pandas as pd

from stabilize import results

BASELINE = "standard"  # plain fine-tuning: the method every other one is compared with

_FROM_RECORD = ("status", "task", "model", "method", "seed", "train_size", "metric", "val", "test", "test_last",
                "majority", "accuracy", "majority_accuracy", "diverged", "below_threshold", "error", "reason",
                "steps", "epochs", "seconds")
_SCORES = ("val", "test", "test_last", "majority", "accuracy", "majority_accuracy")
RUN_COLUMNS = {
    "run_dir": "the run folder, relative to the sweep folder",
    **{key: results.KEYS[key] for key in _FROM_RECORD},
    "label": "the method plus the config values that differ between its runs, e.g. `reinit [reinit.num_layers=3]`",
    "size": "train_size as text",
    "failed": "status is failed (null for an errored or interrupted run)",
    "threshold": "the task's fail_threshold (study B), null when it sets none",
    "has_weight_change": f"the run wrote {results.WEIGHT_CHANGE}",
    "path": f"its {results.RESULTS}",
}
# Config keys that do not tell methods apart: seeds, paths, logging, and the table's own axes.
_NOT_A_VARIANT = (*(".".join(key) for key in results.RUNTIME_KEYS), "seed", "data.seed", "paths", "name", "logger",
                  "callbacks", "data.dir", "task", "data.train_size", "method.name", "save_model", "analysis")


def load_runs(sweep_dir) -> pd.DataFrame:
    """One row per readable `results.json` under `sweep_dir` (recursively); columns: `RUN_COLUMNS`.

    Files that cannot be read, are not a run's record or carry a status outside
    `results.STATUSES` are not rows: they are listed, with the reason, in
    `df.attrs["unreadable"]` as (path, reason) pairs.
    """
    sweep_dir = Path(sweep_dir)
    rows, unreadable, configs = [], [], []
    for path in sorted(sweep_dir.rglob(results.RESULTS)):
        try:
            r = results.load(path)
            if r["status"] not in results.STATUSES:
                raise ValueError(f"unknown status {r['status']!r}")
        except (OSError, ValueError) as e:
            unreadable.append((str(path), f"{type(e).__name__}: {e}"))
            continue
        config = r["config"] if isinstance(r["config"], dict) else {}
        row = {key: r[key] for key in _FROM_RECORD}
        row.update({key: _num(r[key]) for key in _SCORES})
        row.update(
            run_dir=str(path.parent.relative_to(sweep_dir)) if path.parent != sweep_dir else ".",
            method=r["method"] or "?", size=str(r["train_size"]),
            failed=r["status"] == results.FAILED if r["status"] in results.FINISHED else None,
            diverged=bool(r["diverged"]),
            below_threshold=None if r["below_threshold"] is None else bool(r["below_threshold"]),
            threshold=_get(config, "task.fail_threshold"),
            has_weight_change=(path.parent / results.WEIGHT_CHANGE).is_file(), path=str(path))
        rows.append(row)
        configs.append(config)
    df = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    df["label"] = _labels(df, configs)
    for col in (*_SCORES, "threshold"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df.attrs["unreadable"] = unreadable
    df.attrs["sweep_dir"] = str(sweep_dir)
    return df


def groups(df: pd.DataFrame):
    """(task, size, runs) for every task x training-set size, in a stable order; interrupted runs
    (checkpointed, to be resumed: not results yet) left out."""
    def size_key(s):
        return (0, int(s), s) if str(s).isdigit() else (1, 0, str(s))
    df = df[df["status"] != results.INTERRUPTED]
    keys = sorted({(t, s) for t, s in zip(df["task"], df["size"])}, key=lambda k: (str(k[0]), size_key(k[1])))
    for task, size in keys:
        yield task, size, df[(df["task"] == task) & (df["size"] == size)]


def method_order(labels) -> list[str]:
    """The distinct labels: the baseline first, then its variants, then the others by name."""
    labels = sorted(set(labels))
    return sorted(labels, key=lambda x: (x != BASELINE, not x.startswith(BASELINE + " "), x))


def load_weight_change(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table (label, run_dir, layer, position, l2) of the runs that wrote weight_change.json."""
    rows = []
    for row in runs[runs["has_weight_change"]].itertuples():
        try:
            wc = json.loads((Path(row.path).parent / results.WEIGHT_CHANGE).read_text())
            for pos, (layer, l2) in enumerate(zip(wc["layers"], wc["l2"])):
                rows.append({"label": row.label, "run_dir": row.run_dir, "layer": layer, "position": pos,
                             "l2": float(l2)})
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a half-written or foreign file: the figure leaves that run out
    return pd.DataFrame(rows, columns=["label", "run_dir", "layer", "position", "l2"])


def _num(x):
    if x is None or isinstance(x, bool):
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _get(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _flatten(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True, default=str)
    return out


def _labels(df: pd.DataFrame, configs: list[dict]) -> list[str]:
    """The method name, plus `[key=value, ...]` for config keys that vary within that method."""
    labels = list(df["method"]) if len(df) else []
    flat = [_flatten(c) for c in configs]
    by_method = {}
    for i, row in enumerate(df.itertuples()):
        by_method.setdefault((row.task, row.size, row.method), []).append(i)
    for idx in by_method.values():
        keys = sorted(set().union(*(flat[i] for i in idx)))
        varying = []
        for k in keys:
            if any(k == p or k.startswith(p + ".") for p in _NOT_A_VARIANT):
                continue
            if k.startswith("model.") and k != "model.name":
                continue  # model.name stands for the whole model node
            if len({flat[i].get(k) for i in idx}) > 1:
                varying.append(k)
        if not varying:
            continue
        for i in idx:
            parts = [f"{k.removeprefix('method.strategies.')}={_short(flat[i].get(k))}" for k in varying]
            labels[i] = f"{labels[i]} [{', '.join(parts)}]"
    return labels


def _short(v: str | None) -> str:
    if v is None:
        return "unset"
    try:
        v = json.loads(v)
    except ValueError:
        pass
    return f"{v:g}" if isinstance(v, float) else str(v)
