"""`stabilize-report SWEEP_DIR [--out DIR]`: tables and plots from every run of a sweep.

Reads every `results.json` under SWEEP_DIR (recursively) into one DataFrame (`load_runs`,
also used by `notebooks/analyze_sweep.ipynb`) and writes, per task x training-set size:

- `table_<task>_<size>.{md,csv}`: one row per method: runs, mean, std, bootstrap 95% CI of
  the mean, min, median, max of the test score, share of failed runs (status failed) and
  of study B's failed runs (test <= the task's threshold), errored runs, and Welch's
  unequal-variance t-test against `standard` (unpaired); the best value of a column in bold;
- `expected_max_<task>_<size>.{md,csv,png}`: Dodge et al.'s (2020) expected maximum
  validation score over n = 1..N runs;
- `scores_<task>_<size>.png`: box and strip plot of the test scores per method;
- `weight_change_<task>_<size>.png`: mean per-layer L2 weight change, where runs wrote
  `weight_change.json`;

and `report.md` (everything, with the figures linked) and `runs.csv` (one row per run).
Exit status 2 when SWEEP_DIR holds no readable run.
"""
import argparse
import inspect
import json
import math
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from stabilize import results
from stabilize.tasks import TASKS

BASELINE = "standard"
N_RESAMPLES = 9999
RUN_COLUMNS = ["run_dir", "status", "task", "model", "method", "label", "seed", "train_size", "size", "metric",
               "val", "test", "test_last", "majority", "failed", "failed_b", "diverged", "threshold", "error",
               "reason", "steps", "epochs", "seconds", "has_weight_change", "path"]
# Config keys that do not tell methods apart: seeds, paths, logging, and the table's own axes.
_NOT_A_VARIANT = (*(".".join(key) for key in results.RUNTIME_KEYS), "seed", "data.seed", "paths", "name", "logger",
                  "callbacks", "data.dir", "task", "data.train_size", "method.name", "save_model", "analysis")


# ------------------------------------------------------------------ loading
def load_runs(sweep_dir) -> pd.DataFrame:
    """One row per readable `results.json` under `sweep_dir` (recursively).

    Files that cannot be read or parsed are not rows: they are listed, with the reason, in
    `df.attrs["unreadable"]` as (path, reason) pairs. Columns: see `RUN_COLUMNS`; `label`
    is the method name plus the config values that differ between runs of that method
    (e.g. `reinit [reinit.num_layers=3]`), `size` the training-set size as text.
    """
    sweep_dir = Path(sweep_dir)
    rows, unreadable, configs = [], [], []
    for path in sorted(sweep_dir.rglob(results.RESULTS)):
        try:
            r = results.read(path)
            if not isinstance(r, dict) or "status" not in r:
                raise ValueError("not a stabilize results.json (no 'status')")
        except (OSError, ValueError) as e:
            unreadable.append((str(path), f"{type(e).__name__}: {e}"))
            continue
        config = r.get("config") if isinstance(r.get("config"), dict) else {}
        threshold = _get(config, "task.fail_threshold")
        test = _num(r.get("test"))
        diverged = str(r.get("reason") or "").startswith("diverged")
        failed_b = r.get("failed_b")
        if r["status"] in results.FINISHED and threshold is not None:
            if failed_b is None and test is not None:
                failed_b = test <= threshold
            elif test is None:  # diverged: no score at all, a failed run by any definition
                failed_b = True
        rows.append({
            "run_dir": str(path.parent.relative_to(sweep_dir)) if path.parent != sweep_dir else ".",
            "status": r["status"], "task": r.get("task"), "model": r.get("model"),
            "method": r.get("method") or "?", "seed": r.get("seed"), "train_size": r.get("train_size"),
            "size": str(r.get("train_size")), "metric": r.get("metric"), "val": _num(r.get("val")), "test": test,
            "test_last": _num(r.get("test_last")), "majority": _num(r.get("majority")),
            "failed": r["status"] == "failed" if r["status"] in results.FINISHED else None,
            "failed_b": None if failed_b is None else bool(failed_b), "diverged": diverged,
            "threshold": threshold, "error": r.get("error"), "reason": r.get("reason"),
            "steps": r.get("steps"), "epochs": r.get("epochs"), "seconds": r.get("seconds"),
            "has_weight_change": (path.parent / results.WEIGHT_CHANGE).is_file(), "path": str(path),
        })
        configs.append(config)
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    df["label"] = _labels(df, configs)
    for col in ("val", "test", "test_last", "majority", "threshold"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df.attrs["unreadable"] = unreadable
    df.attrs["sweep_dir"] = str(sweep_dir)
    return df


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
    groups = {}
    for i, row in enumerate(df.itertuples()):
        groups.setdefault((row.task, row.size, row.method), []).append(i)
    for idx in groups.values():
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


def groups(df: pd.DataFrame):
    """(task, size, runs) for every task x training-set size, in a stable order."""
    def size_key(s):
        return (0, int(s), s) if str(s).isdigit() else (1, 0, str(s))
    keys = sorted({(t, s) for t, s in zip(df["task"], df["size"])}, key=lambda k: (str(k[0]), size_key(k[1])))
    for task, size in keys:
        yield task, size, df[(df["task"] == task) & (df["size"] == size)]


def _order(labels) -> list[str]:
    labels = sorted(set(labels))
    return sorted(labels, key=lambda x: (x != BASELINE, not x.startswith(BASELINE + " "), x))


# ------------------------------------------------------------------ statistics
def bootstrap_ci(x, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap (BCa) confidence interval of the mean; NaN with fewer than 2 values."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=N_RESAMPLES,
                              method="BCa", **{_RNG_ARG: np.random.default_rng(seed)})
    lo, hi = res.confidence_interval
    return float(lo), float(hi)


_RNG_ARG = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"  # scipy < 1.15


def welch(a, b) -> tuple[float, float]:
    """Welch's unequal-variance t-test (two-sided, unpaired): (t, p); NaN without 2 values each."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.ttest_ind(a, b, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def expected_max(scores, n_max: int | None = None) -> np.ndarray:
    """Dodge et al. (2020): E[max of n draws with replacement] for n = 1..n_max (default N).

    Over the sorted scores v_(1) <= ... <= v_(N):
    E_n = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n).
    """
    v = np.sort(np.asarray(scores, dtype=float))
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.array([])
    big_n = len(v)
    i = np.arange(1, big_n + 1)
    n = np.arange(1, (n_max or big_n) + 1)[:, None]
    weights = (i / big_n) ** n - ((i - 1) / big_n) ** n
    return weights @ v


def summary_table(runs: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per method label of one task x size; raw metric scale (not x100)."""
    base = runs[(runs["label"] == baseline) & runs["test"].notna()]["test"].to_numpy()
    rows = []
    for label in _order(runs["label"]):
        g = runs[runs["label"] == label]
        x = g["test"].dropna().to_numpy()
        finished = g[g["status"].isin(results.FINISHED)]
        fb = finished["failed_b"].dropna()
        ci = bootstrap_ci(x)
        t, p = (math.nan, math.nan) if label == baseline else welch(x, base)
        rows.append({
            "method": label, "n": len(g), "n_scored": len(x), "mean": _stat(np.mean, x),
            "std": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan, "ci_low": ci[0], "ci_high": ci[1],
            "min": _stat(np.min, x), "median": _stat(np.median, x), "max": _stat(np.max, x),
            "failed": float((finished["status"] == "failed").mean()) if len(finished) else math.nan,
            "n_failed": int((finished["status"] == "failed").sum()), "n_finished": len(finished),
            "failed_b": float(fb.astype(bool).mean()) if len(fb) else math.nan,
            "n_failed_b": int(fb.astype(bool).sum()), "diverged": int(g["diverged"].sum()),
            "errored": int((g["status"] == "error").sum()), "welch_t": t, "p_vs_standard": p,
        })
    table = pd.DataFrame(rows)
    table["best_in"] = _best(table)
    return table


def _stat(fn, x):
    return float(fn(x)) if len(x) else math.nan


# Which way is better for the columns marked in bold.
HIGHER = ("mean", "min", "median", "max")
LOWER = ("std", "failed", "failed_b")


def _best(table: pd.DataFrame) -> list[str]:
    marks = [[] for _ in range(len(table))]
    if len(table) < 2:
        return ["" for _ in marks]
    for col in HIGHER + LOWER:
        vals = table[col].to_numpy(dtype=float)
        if np.isnan(vals).all():
            continue
        best = np.nanmax(vals) if col in HIGHER else np.nanmin(vals)
        for i, v in enumerate(vals):
            if not np.isnan(v) and np.isclose(v, best, rtol=0, atol=1e-12):
                marks[i].append(col)
    return [",".join(m) for m in marks]


def expected_max_table(runs: pd.DataFrame, key: str = "val") -> pd.DataFrame:
    """Expected maximum of `key` over n = 1..N runs, one column per method (NaN past its N)."""
    curves = {label: expected_max(runs[runs["label"] == label][key].dropna()) for label in _order(runs["label"])}
    n_max = max((len(c) for c in curves.values()), default=0)
    table = pd.DataFrame({label: pd.Series(c, index=np.arange(1, len(c) + 1)) for label, c in curves.items()},
                         index=pd.Index(np.arange(1, n_max + 1), name="n"))
    return table


# ------------------------------------------------------------------ Markdown
def _pct(share, k, n):
    return "–" if n == 0 or share is None or math.isnan(share) else f"{100 * share:.0f}% ({k}/{n})"


def _score(x):
    return "–" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def _p(p):
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def table_markdown(table: pd.DataFrame, task: str, size: str, metric: str | None, threshold=None) -> str:
    metric = metric or (TASKS[task].metric if task in TASKS else "score")
    head = (f"### {task} — train_size={size} — test {metric} × 100\n\n"
            f"n: runs; mean, std (ddof 1), min, median, max over runs with a test score; "
            f"95% CI: bootstrap (BCa, {N_RESAMPLES} resamples) of the mean; "
            f"failed: status failed (no better than the majority class, or diverged) among finished runs; "
            f"failed (B): study B's criterion, test ≤ {threshold if threshold is not None else 'n/a'}; "
            f"errored: runs that raised (not in the shares); "
            f"p: Welch's unequal-variance t-test (unpaired, two-sided, scipy.stats.ttest_ind equal_var=False) "
            f"against `{BASELINE}`, not corrected for multiple comparisons. Bold: best in its column.\n\n")
    out = []
    for row in table.itertuples():
        best = set(row.best_in.split(",")) if row.best_in else set()

        def b(col, text):
            return f"**{text}**" if col in best and text != "–" else text
        ci = "–" if math.isnan(row.ci_low) else f"[{100 * row.ci_low:.2f}, {100 * row.ci_high:.2f}]"
        out.append({
            "method": row.method, "n": row.n, "mean": b("mean", _score(row.mean)), "std": b("std", _score(row.std)),
            "95% CI": ci, "min": b("min", _score(row.min)), "median": b("median", _score(row.median)),
            "max": b("max", _score(row.max)), "failed": b("failed", _pct(row.failed, row.n_failed, row.n_finished)),
            "failed (B)": b("failed_b", _pct(row.failed_b, row.n_failed_b, row.n_finished)),
            "errored": row.errored, "p (Welch vs standard)": "–" if row.method == BASELINE else _p(row.p_vs_standard),
        })
    body = pd.DataFrame(out).to_markdown(index=False, colalign=["left"] + ["right"] * 11, disable_numparse=True)
    return head + body + "\n"


def expected_max_markdown(table: pd.DataFrame) -> str:
    n_max = len(table)
    shown = [n for n in (1, 2, 3, 5, 10, 20, 50, 100) if n < n_max] + ([n_max] if n_max else [])
    sub = table.loc[shown].T.apply(lambda col: col.map(lambda x: "–" if pd.isna(x) else f"{100 * x:.2f}"))
    sub.columns = [f"n={n}" for n in shown]
    sub.index.name = "method"
    body = sub.to_markdown(disable_numparse=True, colalign=["left"] + ["right"] * len(shown))
    return ("Expected maximum validation score × 100 over n runs (Dodge et al., 2020; "
            "closed form over the sorted scores, draws with replacement):\n\n" + body + "\n")


# ------------------------------------------------------------------ plots
def _plt():
    import matplotlib.pyplot as plt  # the backend is the caller's: Agg for the command, inline in Jupyter
    return plt


def plot_scores(runs: pd.DataFrame, ax=None, title: str | None = None):
    """Box plot of test scores per method, every run as a point: failed runs as red crosses."""
    plt = _plt()
    labels = _order(runs["label"])
    if ax is None:
        _, ax = plt.subplots(figsize=_scores_figsize(labels), layout="constrained")
    data = [runs[(runs["label"] == lab)]["test"].dropna().to_numpy() for lab in labels]
    ax.boxplot(data, positions=range(len(labels)), widths=0.55, showfliers=False,
               medianprops={"color": "black"}, boxprops={"color": "0.4"}, whiskerprops={"color": "0.4"},
               capprops={"color": "0.4"})
    rng = np.random.default_rng(0)
    shown_ok = shown_failed = False
    for pos, lab in enumerate(labels):
        g = runs[(runs["label"] == lab) & runs["test"].notna()]
        bad = (g["status"] == "failed") | (g["failed_b"] == True)  # noqa: E712 (None stays False)
        jitter = rng.uniform(-0.15, 0.15, len(g))
        ok = g[~bad.to_numpy()]
        fl = g[bad.to_numpy()]
        ax.scatter(pos + jitter[~bad.to_numpy()], ok["test"], s=22, color="tab:blue", alpha=0.75, zorder=3,
                   label=None if shown_ok or not len(ok) else "run")
        ax.scatter(pos + jitter[bad.to_numpy()], fl["test"], s=34, marker="x", color="tab:red", zorder=4,
                   label=None if shown_failed or not len(fl) else "failed run (status or study B)")
        shown_ok, shown_failed = shown_ok or bool(len(ok)), shown_failed or bool(len(fl))
    threshold = runs["threshold"].dropna()
    if len(threshold):
        ax.axhline(threshold.iloc[0], color="tab:red", ls="--", lw=1,
                   label=f"study B threshold ({threshold.iloc[0]:g})")
    majority = runs["majority"].dropna()
    if len(majority):
        ax.axhline(majority.median(), color="0.5", ls=":", lw=1.2, label=f"majority class ({majority.median():.3f})")
    ticks = []
    for lab in labels:
        g = runs[runs["label"] == lab]
        extra = [f"n={len(g)}"]
        if g["diverged"].sum():
            extra.append(f"{int(g['diverged'].sum())} diverged")
        if (g["status"] == "error").sum():
            extra.append(f"{int((g['status'] == 'error').sum())} errored")
        ticks.append(textwrap.fill(lab, 22) + "\n" + ", ".join(extra))
    crowded = len(labels) > 8
    ax.set_xticks(range(len(labels)), ticks, rotation=30 if crowded else 0, ha="right" if crowded else "center",
                  fontsize=8 if crowded else 9)
    metric = runs["metric"].dropna().iloc[0] if runs["metric"].notna().any() else "score"
    ax.set_ylabel(f"test {metric}")
    ax.grid(axis="y", alpha=0.3)
    _legend(ax)
    if title:
        ax.set_title(title)
    return ax


def _legend(ax) -> None:
    """Legend right of the axes, long method labels wrapped so the axes keep their width."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, [textwrap.fill(x, 30) for x in labels], fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _scores_figsize(labels) -> tuple[float, float]:
    width = max(min(len(str(x)), 22) for x in labels) if len(labels) else 8
    return max(7.0, len(labels) * max(1.3, 0.085 * width) + 3.0), 4.8


def plot_expected_max(table: pd.DataFrame, ax=None, title: str | None = None, metric: str = "score"):
    """Expected maximum validation score against the number of runs, one line per method."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for label in table.columns:
        s = table[label].dropna()
        ax.plot(s.index, s.to_numpy(), marker="o" if len(s) <= 30 else None, ms=3.5, label=label)
    ax.set_xlabel("number of runs n (random seeds)")
    ax.set_ylabel(f"expected max validation {metric}")
    if len(table) > 1:
        ax.set_xlim(1, len(table))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    _legend(ax)
    if title:
        ax.set_title(title)
    return ax


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


def plot_weight_change(wc: pd.DataFrame, ax=None, title: str | None = None):
    """Mean (± std over runs) L2 distance of each layer's weights from their start, per method."""
    plt = _plt()
    if ax is None:
        n_layers = wc["layer"].nunique() if len(wc) else 1
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * n_layers + 2.5), 4.2), layout="constrained")
    order = wc.drop_duplicates("layer").sort_values("position")["layer"].tolist()
    for label in _order(wc["label"]):
        g = wc[wc["label"] == label].groupby("layer")["l2"].agg(["mean", "std", "count"]).reindex(order)
        x = np.arange(len(order))
        ax.plot(x, g["mean"], marker="o", ms=4, label=f"{label} ({int(g['count'].max())} runs)")
        ax.fill_between(x, g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0), alpha=0.15)
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("layer (bottom → top)")
    ax.set_ylabel("L2 distance to start weights")
    positive = wc["l2"][wc["l2"] > 0]
    if len(positive) and positive.max() / positive.min() > 30:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    _legend(ax)
    if title:
        ax.set_title(title)
    return ax


# ------------------------------------------------------------------ the whole report
def write_report(df: pd.DataFrame, out: Path) -> list[Path]:
    """Write tables, curves and figures for every task x size of `df` into `out`."""
    plt = _plt()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    df.drop(columns=["path"]).to_csv(out / "runs.csv", index=False)
    written.append(out / "runs.csv")
    sweep = df.attrs.get("sweep_dir", "")
    md = [f"# Report of {sweep}\n",
          f"{len(df)} runs: " + ", ".join(f"{(df['status'] == s).sum()} {s}" for s in ("ok", "failed", "error")) + "\n"]
    unreadable = df.attrs.get("unreadable", [])
    if unreadable:
        md.append(f"**{len(unreadable)} unreadable results.json** (left out):\n")
        md += [f"- `{p}`: {why}" for p, why in unreadable] + [""]
    errors = df[df["status"] == "error"]
    if len(errors):
        md.append("Errored runs (see error.txt in each folder):\n")
        md += [f"- `{r.run_dir}`: {r.error}" for r in errors.itertuples()] + [""]
    for task, size, runs in groups(df):
        stem = f"{task}_{size}"
        metric = runs["metric"].dropna().iloc[0] if runs["metric"].notna().any() else None
        thresholds = runs["threshold"].dropna()
        threshold = thresholds.iloc[0] if len(thresholds) else None
        table = summary_table(runs)
        table.to_csv(out / f"table_{stem}.csv", index=False)
        tmd = table_markdown(table, task, size, metric, threshold)
        (out / f"table_{stem}.md").write_text(tmd)
        written += [out / f"table_{stem}.csv", out / f"table_{stem}.md"]
        md += [f"## {task}, train_size={size}\n", tmd]

        fig, ax = plt.subplots(figsize=_scores_figsize(runs["label"].unique()), layout="constrained")
        plot_scores(runs, ax=ax, title=f"{task}, train_size={size}: test {metric or 'score'} per run")
        fig.savefig(out / f"scores_{stem}.png", dpi=120)
        plt.close(fig)
        written.append(out / f"scores_{stem}.png")
        md.append(f"![scores](scores_{stem}.png)\n")

        em = expected_max_table(runs)
        if len(em):
            em.to_csv(out / f"expected_max_{stem}.csv")
            (out / f"expected_max_{stem}.md").write_text(expected_max_markdown(em))
            fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
            plot_expected_max(em, ax=ax, title=f"{task}, train_size={size}: expected max over runs",
                              metric=metric or "score")
            fig.savefig(out / f"expected_max_{stem}.png", dpi=120)
            plt.close(fig)
            written += [out / f"expected_max_{stem}.{x}" for x in ("csv", "md", "png")]
            md += [expected_max_markdown(em), f"![expected max](expected_max_{stem}.png)\n"]

        wc = load_weight_change(runs)
        if len(wc):
            fig, ax = plt.subplots(figsize=(max(6.5, 0.45 * wc["layer"].nunique() + 3), 4.5), layout="constrained")
            plot_weight_change(wc, ax=ax, title=f"{task}, train_size={size}: weight change per layer")
            fig.savefig(out / f"weight_change_{stem}.png", dpi=120)
            plt.close(fig)
            written.append(out / f"weight_change_{stem}.png")
            md.append(f"![weight change](weight_change_{stem}.png)\n")
    (out / "report.md").write_text("\n".join(md))
    written.append(out / "report.md")
    return written


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="stabilize-report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", type=Path, help="a sweep folder (e.g. multirun/<name>) or any folder of runs")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: SWEEP_DIR/report)")
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    if not args.sweep_dir.is_dir():
        print(f"stabilize-report: {args.sweep_dir} is not a folder", file=sys.stderr)
        sys.exit(2)
    df = load_runs(args.sweep_dir)
    for path, why in df.attrs["unreadable"]:
        print(f"stabilize-report: unreadable {path}: {why}", file=sys.stderr)
    if df.empty:
        print(f"stabilize-report: no readable {results.RESULTS} under {args.sweep_dir}; nothing to report",
              file=sys.stderr)
        sys.exit(2)
    out = args.out or args.sweep_dir / "report"
    write_report(df, out)
    counts = ", ".join(f"{(df['status'] == s).sum()} {s}" for s in ("ok", "failed", "error"))
    print(f"stabilize-report: {len(df)} runs ({counts}) in {df.groupby(['task', 'size']).ngroups} "
          f"task x size table(s); {len(df.attrs['unreadable'])} unreadable -> {out / 'report.md'}")


if __name__ == "__main__":
    main()
