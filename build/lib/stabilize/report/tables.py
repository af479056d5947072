"""The tables of one task x training-set size: a summary row per method, and expected maxima.

`summary_table` and `expected_max_table` keep the metric's raw scale (the CSV files);
`table_markdown` and `expected_max_markdown` show it x 100 with a legend of every column.
"""
import math

import numpy as np
import pandas as pd

from stabilize import results
from stabilize.report.runs import BASELINE, method_order
from stabilize.report.stats import (ALPHA, ASO_BOOTSTRAP, ASO_MIN_SCORES, ASO_SEED, ASO_TAU, N_RESAMPLES, POWER,
                                    SEEDS_CAP, SPREAD_SIMULATIONS, aso, bootstrap_ci, expected_max, seeds_for_mean,
                                    seeds_for_spread, welch)

# Which way is better for the columns marked in bold.
HIGHER = ("mean", "min", "median", "max")
LOWER = ("std", "failed", "below_threshold")


def summary_table(runs: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per method label of one task x size; raw metric scale (not x100).

    `aso_eps_min`: ASO of the method against the baseline, Bonferroni-corrected over the
    `aso_comparisons` methods of this table that have ASO_MIN_SCORES scores or more (as the
    baseline must). `seeds_needed_mean` and `seeds_needed_spread`: the seeds a side with which
    Welch's test and Brown-Forsythe's detect the observed difference with power POWER at the
    same corrected level, ALPHA / `aso_comparisons` (at least 1); inf: more than SEEDS_CAP.
    """
    scores = {label: runs[runs["label"] == label]["test"].dropna().to_numpy() for label in method_order(runs["label"])}
    base = scores.get(baseline, np.array([]))
    compared = [label for label, x in scores.items() if label != baseline and len(x) >= ASO_MIN_SCORES] \
        if len(base) >= ASO_MIN_SCORES else []
    alpha = ALPHA / max(len(compared), 1)
    rows = []
    for label, x in scores.items():
        g = runs[runs["label"] == label]
        finished = g[g["status"].isin(results.FINISHED)]
        failed = finished["status"] == results.FAILED
        below = finished["below_threshold"].dropna().astype(bool)
        ci = bootstrap_ci(x)
        t, p = (math.nan, math.nan) if label == baseline else welch(x, base)
        rows.append({
            "method": label, "n": len(g), "n_scored": len(x), "mean": _stat(np.mean, x),
            "std": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan, "ci_low": ci[0], "ci_high": ci[1],
            "min": _stat(np.min, x), "median": _stat(np.median, x), "max": _stat(np.max, x),
            "failed": float(failed.mean()) if len(finished) else math.nan,
            "n_failed": int(failed.sum()), "n_finished": len(finished),
            "below_threshold": float(below.mean()) if len(below) else math.nan,
            "n_below_threshold": int(below.sum()), "diverged": int(g["diverged"].sum()),
            "errored": int((g["status"] == results.ERRORED).sum()), "welch_t": t, "p_vs_standard": p,
            "aso_eps_min": aso(x, base, num_comparisons=len(compared)) if label in compared else math.nan,
            "aso_comparisons": len(compared),
            "seeds_needed_mean": math.nan if label == baseline else seeds_for_mean(x, base, alpha),
            "seeds_needed_spread": math.nan if label == baseline else seeds_for_spread(x, base, alpha),
        })
    table = pd.DataFrame(rows)
    table["best_in"] = _best(table)
    return table


def expected_max_table(runs: pd.DataFrame, key: str = "val") -> pd.DataFrame:
    """Expected maximum of `key` over n = 1..N runs, one column per method (NaN past its N)."""
    curves = {label: expected_max(runs[runs["label"] == label][key].dropna()) for label in method_order(runs["label"])}
    n_max = max((len(c) for c in curves.values()), default=0)
    return pd.DataFrame({label: pd.Series(c, index=np.arange(1, len(c) + 1)) for label, c in curves.items()},
                        index=pd.Index(np.arange(1, n_max + 1), name="n"))


def table_markdown(table: pd.DataFrame, task: str, size: str, metric: str | None, threshold=None) -> str:
    """The summary table x 100, with its legend."""
    metric = metric or "score"
    m = int(table["aso_comparisons"].max()) if len(table) else 0
    head = (f"### {task} — train_size={size} — test {metric} × 100\n\n"
            f"n: runs; mean, std (ddof 1), min, median, max over runs with a test score; "
            f"95% CI: bootstrap (BCa, {N_RESAMPLES} resamples) of the mean; "
            f"failed: status failed (no better than the majority class, or diverged) among finished runs; "
            f"failed (B): study B's failed runs (`below_threshold`): test ≤ the task's fail_threshold "
            f"({threshold if threshold is not None else 'none set'}), diverged runs included; "
            f"errored: runs that raised (not in the shares); "
            f"p: Welch's unequal-variance t-test (unpaired, two-sided, scipy.stats.ttest_ind equal_var=False) "
            f"against `{BASELINE}`, not corrected for multiple comparisons; "
            f"ε_min: Almost Stochastic Order (Dror et al. 2019; deepsig) of the method against `{BASELINE}`: "
            f"the upper bound of the share of their quantile functions' squared distance where the method is "
            f"below, at confidence 1 − α/m = {1 - ALPHA / max(m, 1):.4f} (α = {ALPHA}, Bonferroni over "
            f"the m = {m} methods compared here; {ASO_BOOTSTRAP} bootstrap resamples, seed {ASO_SEED}; "
            f"only with {ASO_MIN_SCORES} scores or more a side); "
            f"0: above at every quantile, 1: below; "
            f"✓: ε_min < τ = {ASO_TAU}, the method stochastically dominates `{BASELINE}` almost surely. "
            f"seeds (mean), seeds (spread): the seeds a side with which the observed difference from `{BASELINE}` "
            f"would be detected with power {POWER} at the same α/m = {ALPHA / max(m, 1):.2g} (two-sided; normal "
            f"scores with the observed SDs assumed; a planning figure, as noisy as the observed difference): of the "
            f"means by Welch's t-test (Cohen 1988's d over the SD √((s² + s_{BASELINE}²)/2); statsmodels "
            f"TTestIndPower at Welch's degrees of freedom), of the SDs by Brown–Forsythe's test "
            f"(scipy.stats.levene center='median'; {SPREAD_SIMULATIONS} seeded simulations an n, to 2% above 100); "
            f"> {SEEDS_CAP}: more than {SEEDS_CAP} (equal means or SDs: none would do); –: the baseline, or fewer "
            f"than 2 scores a side. "
            f"Bold: best in its column.\n\n")
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
            "failed (B)": b("below_threshold", _pct(row.below_threshold, row.n_below_threshold, row.n_finished)),
            "errored": row.errored, f"p (Welch vs {BASELINE})": _p(row.p_vs_standard),
            f"ε_min (ASO vs {BASELINE})": _eps(row.aso_eps_min),
            "seeds (mean)": _seeds(row.seeds_needed_mean), "seeds (spread)": _seeds(row.seeds_needed_spread),
        })
    body = pd.DataFrame(out).to_markdown(index=False, colalign=["left"] + ["right"] * 14, disable_numparse=True)
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


def _stat(fn, x):
    return float(fn(x)) if len(x) else math.nan


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


def _pct(share, k, n):
    return "–" if n == 0 or share is None or math.isnan(share) else f"{100 * share:.0f}% ({k}/{n})"


def _score(x):
    return "–" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def _p(p):
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _eps(eps):
    if eps is None or math.isnan(eps):
        return "–"
    return f"{eps:.2f}" + (" ✓" if eps < ASO_TAU else "")


def _seeds(n):
    if n is None or math.isnan(n):
        return "–"
    return f"> {SEEDS_CAP}" if math.isinf(n) else f"{n:.0f}"
