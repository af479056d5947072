"""Figures of one task x training-set size: scores per method, expected maxima, weight change.

Every function draws into `ax` when given (the notebook's grid), else into a new figure.
matplotlib's backend is the caller's: Agg for the command, inline in Jupyter.
"""
import textwrap

import numpy as np
import pandas as pd

from stabilize import results
from stabilize.report.runs import method_order


def _plt():
    import matplotlib.pyplot as plt  # imported late: the command picks the backend first
    return plt


def line_styles(labels) -> dict:
    """A distinct (color, line style) per method: matplotlib's 10 colors, then the same colors
    dashed, dotted and dash-dotted, so that the methods after the seeds beside the seeds' (about
    20 in the offline study) stay apart in a legend."""
    return {label: {"color": f"C{i % 10}", "linestyle": ("-", "--", ":", "-.")[i // 10 % 4]}
            for i, label in enumerate(labels)}


def plot_scores(runs: pd.DataFrame, ax=None, title: str | None = None):
    """Box plot of test scores per method, every run as a point: failed runs as red crosses."""
    plt = _plt()
    labels = method_order(runs["label"])
    if ax is None:
        _, ax = plt.subplots(figsize=scores_figsize(labels), layout="constrained")
    data = [runs[(runs["label"] == lab)]["test"].dropna().to_numpy() for lab in labels]
    ax.boxplot(data, positions=range(len(labels)), widths=0.55, showfliers=False,
               medianprops={"color": "black"}, boxprops={"color": "0.4"}, whiskerprops={"color": "0.4"},
               capprops={"color": "0.4"})
    rng = np.random.default_rng(0)
    shown_ok = shown_failed = False
    for pos, lab in enumerate(labels):
        g = runs[(runs["label"] == lab) & runs["test"].notna()]
        bad = ((g["status"] == results.FAILED) | (g["below_threshold"] == True)).to_numpy()  # noqa: E712 (None: no)
        jitter = rng.uniform(-0.15, 0.15, len(g))
        ok, fl = g[~bad], g[bad]
        ax.scatter(pos + jitter[~bad], ok["test"], s=22, color="tab:blue", alpha=0.75, zorder=3,
                   label=None if shown_ok or not len(ok) else "run")
        ax.scatter(pos + jitter[bad], fl["test"], s=34, marker="x", color="tab:red", zorder=4,
                   label=None if shown_failed or not len(fl) else "failed run (status, or study B's threshold)")
        shown_ok, shown_failed = shown_ok or bool(len(ok)), shown_failed or bool(len(fl))
    threshold = runs["threshold"].dropna()
    if len(threshold):
        ax.axhline(threshold.iloc[0], color="tab:red", ls="--", lw=1,
                   label=f"study B threshold ({threshold.iloc[0]:g})")
    majority = runs["majority"].dropna()
    if len(majority):
        ax.axhline(majority.median(), color="0.5", ls=":", lw=1.2,
                   label=f"majority predictor ({majority.median():.3f})")
    ticks = []
    for lab in labels:
        g = runs[runs["label"] == lab]
        extra = [f"n={len(g)}"]
        if g["diverged"].sum():
            extra.append(f"{int(g['diverged'].sum())} diverged")
        if (g["status"] == results.ERRORED).sum():
            extra.append(f"{int((g['status'] == results.ERRORED).sum())} errored")
        ticks.append(textwrap.fill(lab, 22) + "\n" + ", ".join(extra))
    crowded = len(labels) > 8
    ax.set_xticks(range(len(labels)), ticks, rotation=30 if crowded else 0, ha="right" if crowded else "center",
                  fontsize=8 if crowded else 9)
    metric = runs["metric"].dropna().iloc[0] if runs["metric"].notna().any() else "score"
    ax.set_ylabel(f"test {metric}")
    ax.grid(axis="y", alpha=0.3)
    legend_right(ax)
    if title:
        ax.set_title(title)
    return ax


def scores_figsize(labels) -> tuple[float, float]:
    """Wide enough for every method's tick label."""
    width = max(min(len(str(x)), 22) for x in labels) if len(labels) else 8
    return max(7.0, len(labels) * max(1.3, 0.085 * width) + 3.0), 4.8


def plot_expected_max(table: pd.DataFrame, ax=None, title: str | None = None, metric: str = "score"):
    """Expected maximum validation score against the number of runs, one line per method."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    styles = line_styles(table.columns)
    for label in table.columns:
        s = table[label].dropna()
        ax.plot(s.index, s.to_numpy(), marker="o" if len(s) <= 30 else None, ms=3.5, label=label, **styles[label])
    ax.set_xlabel("number of runs n (random seeds)")
    ax.set_ylabel(f"expected max validation {metric}")
    if len(table) > 1:
        ax.set_xlim(1, len(table))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    legend_right(ax)
    if title:
        ax.set_title(title)
    return ax


def plot_weight_change(wc: pd.DataFrame, ax=None, title: str | None = None):
    """Mean (± std over runs) L2 distance of each layer's weights from their start, per method."""
    plt = _plt()
    if ax is None:
        n_layers = wc["layer"].nunique() if len(wc) else 1
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * n_layers + 2.5), 4.2), layout="constrained")
    order = wc.drop_duplicates("layer").sort_values("position")["layer"].tolist()
    labels = method_order(wc["label"])
    styles = line_styles(labels)
    for label in labels:
        g = wc[wc["label"] == label].groupby("layer")["l2"].agg(["mean", "std", "count"]).reindex(order)
        x = np.arange(len(order))
        ax.plot(x, g["mean"], marker="o", ms=4, label=f"{label} ({int(g['count'].max())} runs)", **styles[label])
        ax.fill_between(x, g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0), alpha=0.15,
                        color=styles[label]["color"])
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("layer (bottom → top)")
    ax.set_ylabel("L2 distance to start weights")
    positive = wc["l2"][wc["l2"] > 0]
    if len(positive) and positive.max() / positive.min() > 30:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    legend_right(ax)
    if title:
        ax.set_title(title)
    return ax


def legend_right(ax) -> None:
    """Legend right of the axes, long method labels wrapped so the axes keep their width."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, [textwrap.fill(x, 30) for x in labels], fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
