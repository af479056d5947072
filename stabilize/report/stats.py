"""Statistics of a method's scores over seeds, and of two methods against each other.

- `bootstrap_ci`: BCa bootstrap confidence interval of the mean (scipy.stats.bootstrap);
- `welch`: Welch's unequal-variance t-test, unpaired and two-sided;
- `expected_max`: expected maximum over n runs (Dodge et al. 2020, "Show your work", section 3);
- `aso`: Almost Stochastic Order (Dror et al. 2019, "Deep Dominance - How to Properly Compare
  Deep Neural Models", after del Barrio et al. 2018), computed by `deepsig` (Ulmer et al. 2022);
- `seeds_for_mean`, `seeds_for_spread`: the seeds a side a test needs to detect the observed
  difference with a given power (Cohen 1988, "Statistical Power Analysis for the Behavioral Sciences").
"""
import inspect
import math
import warnings

import numpy as np
from scipy import stats

N_RESAMPLES = 9999     # bootstrap resamples of the confidence interval of the mean
ALPHA = 0.05           # a table's level, Bonferroni-divided by its comparisons: ASO's, the seeds needed
ASO_TAU = 0.2          # eps_min below it: dominance (deepsig's recommendation; 0.5 is the loosest)
# deepsig's default is 1000 bootstrap iterations; its Python-level loop takes 3-10 ms an iteration.
# At 200, eps_min of 10 vs 10 scores varies by about +-0.02 between bootstrap seeds (+-0.008 at
# 1000), small next to tau, and a table of 10 methods x 10 seeds takes 5-20 s, not over a minute.
ASO_BOOTSTRAP = 200
ASO_SEED = 0
# Fewer scores a side and the bootstrap has too few distinct resamples to bound eps_W2: with
# 2 against 2, eps_min is 0 ("dominates almost surely") whenever the two sets do not overlap.
ASO_MIN_SCORES = 5
POWER = 0.8            # the power the seeds needed are solved for (Cohen 1988's convention)
SEEDS_CAP = 1000       # the most seeds a side searched; more: inf
# Replications of the spread's simulation: at power 0.8 its standard error is 0.013, a few percent
# of the seeds needed; 1000 keeps a table of 10 methods within a few seconds.
SPREAD_SIMULATIONS = 1000
SPREAD_SEED = 0


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
    return np.array([math.fsum(row) for row in weights * v])  # exact sums: the same digits on any BLAS


def aso(a, b, num_comparisons: int = 1, seed: int = ASO_SEED) -> float:
    """eps_min of "a stochastically dominates b" (higher scores better); NaN with fewer than
    ASO_MIN_SCORES finite scores on either side.

    eps_W2 is the share of the squared distance between the two quantile functions
    where a's lies below b's (Dror et al. 2019): 0 when a is above b at every
    quantile, 1 when below, 0.5 for equal score sets. eps_min is its upper confidence bound at
    level 1 - ALPHA / num_comparisons (Bonferroni), its spread estimated from
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
            eps = deepsig_aso(a, b, confidence_level=1 - ALPHA / num_comparisons, num_comparisons=1,
                              num_bootstrap_iterations=ASO_BOOTSTRAP, seed=seed, show_progress=False)
    finally:
        np.random.set_state(state)
    return float(eps)


def seeds_for_mean(a, b, alpha: float, power: float = POWER, cap: int = SEEDS_CAP) -> float:
    """The fewest seeds a side (2..cap) with which Welch's test at `alpha` (two-sided) detects the
    observed difference of means with `power`; inf beyond cap (equal means: never), NaN without
    2 finite scores a side or with no spread at all.

    Normal scores with the observed SDs are assumed. With n a side Welch's t is Student's with the
    SD pooled as sqrt((s_a^2 + s_b^2) / 2), so the effect is that Cohen's d (Cohen 1988); its power
    is statsmodels' `TTestIndPower` (noncentral t) at Welch-Satterthwaite's degrees of freedom,
    (n - 1)(s_a^2 + s_b^2)^2 / (s_a^4 + s_b^4), not Student's 2n - 2, which would overstate the
    power where the SDs differ.
    """
    from statsmodels.stats.power import TTestIndPower  # imported when a table compares methods
    a, b = _finite(a), _finite(b)
    if min(len(a), len(b)) < 2:
        return math.nan
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    if va + vb == 0:
        return math.nan
    n = np.arange(2, cap + 1)
    d = abs(a.mean() - b.mean()) / math.sqrt((va + vb) / 2)
    df = (n - 1) * (va + vb) ** 2 / (va ** 2 + vb ** 2)
    reached = TTestIndPower().power(d, n, alpha, ratio=1, df=df) >= power
    return float(n[reached.argmax()]) if reached.any() else math.inf


def seeds_for_spread(a, b, alpha: float, power: float = POWER, cap: int = SEEDS_CAP,
                     simulations: int = SPREAD_SIMULATIONS, seed: int = SPREAD_SEED) -> float:
    """The fewest seeds a side (3..cap; above 100, to 2%) with which Brown-Forsythe's test of equal
    spread at `alpha` (`scipy.stats.levene(center="median")`, the offline study's) detects the
    observed ratio of SDs with `power`; inf beyond cap (equal SDs: never), NaN without 2 finite
    scores a side or spread.

    By simulation: `simulations` pairs of normal samples with the two observed SDs (the test is
    scale-free, so only their ratio counts), the same seeded draws for every n, each n's power the
    share of pairs with p < alpha; n is found by doubling, then bisection to within 2% (the power
    grows with n; its simulation's standard error, 0.013 at power 0.8, is a few percent of n).
    Not 2 a side: two scores lie equally far from their median, and the test's p is 0.
    """
    a, b = _finite(a), _finite(b)
    if min(len(a), len(b)) < 2:
        return math.nan
    sd = np.sort([np.std(a, ddof=1), np.std(b, ddof=1)])  # the test is symmetric: either order, one answer
    if sd.max() == 0:
        return math.nan
    if sd[0] == sd[1]:
        return math.inf
    draws = np.random.default_rng(seed).standard_normal((2, simulations, cap)) * (sd / sd.max())[:, None, None]

    def enough(n):
        return np.mean(stats.levene(draws[0, :, :n], draws[1, :, :n], center="median", axis=1).pvalue < alpha) >= power

    lo, hi = 2, 3  # lo: short of `power` (or degenerate), hi: to be tested
    while not enough(hi):
        if hi == cap:
            return math.inf
        lo, hi = hi, min(2 * hi, cap)
    while hi - lo > max(1, hi // 50):  # to 2%: the simulation's own error is a few percent of n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return float(hi)


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]
