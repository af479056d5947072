"""Statistics of a method's scores over seeds, and of two methods against each other.

- `bootstrap_ci`: BCa bootstrap confidence interval of the mean (scipy.stats.bootstrap);
- `welch`: Welch's unequal-variance t-test, unpaired and two-sided;
- `expected_max`: expected maximum over n runs (Dodge et al. 2020, "Show your work", section 3);
- `aso`: Almost Stochastic Order (Dror et al. 2019, "Deep Dominance - How to Properly Compare
  Deep Neural Models", after del Barrio et al. 2018), computed by `deepsig` (Ulmer et al. 2022).
"""
import inspect
import math
import warnings

import numpy as np
from scipy import stats

N_RESAMPLES = 9999     # bootstrap resamples of the confidence interval of the mean
ASO_ALPHA = 0.05       # significance level of ASO, Bonferroni-divided by the comparisons of a table
ASO_TAU = 0.2          # eps_min below it: dominance (deepsig's recommendation; 0.5 is the loosest)
# deepsig's default is 1000 bootstrap iterations; its Python-level loop takes 3-10 ms an iteration.
# At 200, eps_min of 10 vs 10 scores varies by about +-0.02 between bootstrap seeds (+-0.008 at
# 1000), small next to tau, and a table of 10 methods x 10 seeds takes 5-20 s, not over a minute.
ASO_BOOTSTRAP = 200
ASO_SEED = 0
# Fewer scores a side and the bootstrap has too few distinct resamples to bound eps_W2: with
# 2 against 2, eps_min is 0 ("dominates almost surely") whenever the two sets do not overlap.
ASO_MIN_SCORES = 5


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


def aso(a, b, num_comparisons: int = 1, seed: int = ASO_SEED) -> float:
    """eps_min of "a stochastically dominates b" (higher scores better); NaN with fewer than
    ASO_MIN_SCORES finite scores on either side.

    eps_W2 is the share of the squared distance between the two quantile functions
    where a's lies below b's (Dror et al. 2019): 0 when a is above b at every
    quantile, 1 when below, 0.5 for equal score sets. eps_min is its upper confidence bound at
    level 1 - ASO_ALPHA / num_comparisons (Bonferroni), its spread estimated from
    ASO_BOOTSTRAP seeded bootstrap resamples. a dominates b almost surely when eps_min < ASO_TAU;
    for two samples of one distribution eps_min stays well above it (near 1 with 10 seeds).

    The level is passed to deepsig as 1 - alpha/m itself: its `num_comparisons` raises the level
    to 1 - alpha + alpha/m, which is Bonferroni's only for m = 2.
    """
    a, b = (np.asarray(x, dtype=float) for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if min(len(a), len(b)) < ASO_MIN_SCORES:
        return math.nan
    from deepsig import aso as deepsig_aso  # imports torch: only when a table compares methods
    state = np.random.get_state()  # deepsig seeds numpy's global generator: the caller's is kept
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "division by zero" for equal score sets: eps_W2 = 0.5
            eps = deepsig_aso(a, b, confidence_level=1 - ASO_ALPHA / num_comparisons, num_comparisons=1,
                              num_bootstrap_iterations=ASO_BOOTSTRAP, seed=seed, show_progress=False)
    finally:
        np.random.set_state(state)
    return float(eps)
