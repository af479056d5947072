"""The seeds a side a test needs to detect an observed difference (Cohen 1988): Welch's for the
mean, by statsmodels at Welch's degrees of freedom; Brown-Forsythe's for the spread, by simulation;
and their columns in the report's table."""
import math

import numpy as np
import pytest
from scipy import stats

from stabilize import report
from tests.helpers import write_run


def _pair(mean, sd):
    """Two scores with this mean and SD (ddof 1)."""
    return mean + sd * np.array([-1, 1]) / math.sqrt(2)


def test_seeds_for_mean_match_cohens_table_and_welchs_degrees_of_freedom():
    # Cohen (1988), table 2.4.1, two-sided α 0.05, power 0.8: d 0.5 needs 64 a side, d 0.8 26
    assert report.seeds_for_mean(_pair(0.5, 1), _pair(0, 1), 0.05) == 64
    assert report.seeds_for_mean(_pair(0, 10), _pair(8, 10), 0.05) == 26  # d, either direction
    assert report.seeds_for_mean(_pair(0.5, 1), _pair(0, 1), 0.05 / 9) > 64  # a corrected α needs more
    # SDs 1 and 3, difference 1: d = 1 / sqrt(5); by hand, a noncentral t at Welch–Satterthwaite's
    # degrees of freedom reaches 0.8 at 81 a side; Student's 2n - 2 would say 80

    def welch_power(n):
        df = (n - 1) * (1 + 9) ** 2 / (1 + 81)
        nc, crit = 1 / math.sqrt((1 + 9) / n), stats.t.ppf(1 - 0.05 / 2, df)
        return stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    assert welch_power(80) < 0.8 <= welch_power(81)
    assert report.seeds_for_mean(_pair(1, 1), _pair(0, 3), 0.05) == 81
    from statsmodels.stats.power import TTestIndPower
    assert math.ceil(TTestIndPower().solve_power(1 / math.sqrt(5), alpha=0.05, power=0.8)) == 80
    assert math.isinf(report.seeds_for_mean(_pair(0, 1), _pair(0, 1), 0.05))      # equal means: never
    assert math.isinf(report.seeds_for_mean(_pair(0.05, 1), _pair(0, 1), 0.05))   # d 0.05: about 6300 a side
    assert math.isnan(report.seeds_for_mean([0.7], _pair(0, 1), 0.05))            # one score: no SD
    assert math.isnan(report.seeds_for_mean([0.7, 0.7], [0.6, 0.6], 0.05))        # no spread: no d


def test_seeds_for_spread_by_simulation():
    n = report.seeds_for_spread(_pair(0, 2), _pair(0, 1), 0.05)
    rng = np.random.default_rng(123)

    def power(k):  # other draws: 4000 pairs
        x, y = rng.normal(0, 2, (4000, k)), rng.normal(0, 1, (4000, k))
        return np.mean(stats.levene(x, y, center="median", axis=1).pvalue < 0.05)
    assert power(int(n)) == pytest.approx(0.8, abs=0.03) and power(int(n) - 3) < 0.77
    # a bigger ratio needs fewer seeds; a smaller α more; the order of the sides and their scale change nothing
    by_ratio = [report.seeds_for_spread(_pair(0, r), _pair(0, 1), 0.05) for r in (1.5, 2, 3, 5)]
    assert by_ratio == sorted(by_ratio, reverse=True) and len(set(by_ratio)) == 4 and by_ratio[1] == n
    assert report.seeds_for_spread(_pair(0, 2), _pair(0, 1), 0.05 / 9) > n
    assert report.seeds_for_spread(_pair(0, 1), _pair(0, 2), 0.05) == n
    assert report.seeds_for_spread(_pair(7, 20), _pair(3, 10), 0.05) == n
    # seeded: the same scores give the same answer
    assert report.seeds_for_spread(_pair(0, 1.3), _pair(0, 1), 0.01) == report.seeds_for_spread(
        _pair(0, 1.3), _pair(0, 1), 0.01)
    assert math.isinf(report.seeds_for_spread(_pair(0, 1), _pair(5, 1), 0.05))     # equal SDs: never
    assert math.isinf(report.seeds_for_spread(_pair(0, 1.05), _pair(0, 1), 0.05))  # more than 1000 a side
    assert math.isnan(report.seeds_for_spread([0.7], _pair(0, 1), 0.05))
    assert math.isnan(report.seeds_for_spread([0.7, 0.7], [0.6, 0.6], 0.05))


def test_seeds_columns_use_the_tables_bonferroni_alpha(tmp_path, monkeypatch):
    monkeypatch.setattr("stabilize.report.tables.aso", lambda *a, **kw: 0.5)  # not under test here
    scores = {"standard": [0.60, 0.66, 0.70, 0.52, 0.64], "same": [0.60, 0.66, 0.70, 0.52, 0.64],
              "wider": [0.45, 0.75, 0.95, 0.60, 0.85], "one": [0.7]}
    for method, xs in scores.items():
        for seed, x in enumerate(xs):
            write_run(tmp_path, f"method={method},seed={seed}", method=method, seed=seed, test=x, val=x)
    table = report.summary_table(report.load_runs(tmp_path)).set_index("method")
    assert table["aso_comparisons"].max() == 2  # same and wider: α 0.05/2
    w = table.loc["wider"]
    assert w["seeds_needed_mean"] == report.seeds_for_mean(scores["wider"], scores["standard"], 0.025)
    assert w["seeds_needed_spread"] == report.seeds_for_spread(scores["wider"], scores["standard"], 0.025)
    assert report.seeds_for_mean(scores["wider"], scores["standard"], 0.05) < w["seeds_needed_mean"]
    md = report.table_markdown(table.reset_index(), "rte", "100", "f1").splitlines()
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[-3:-1]] for line in md
             if line.startswith("| ")}
    assert cells["standard"] == ["–", "–"] and cells["one"] == ["–", "–"]   # the baseline; one score: no SD
    assert cells["same"] == ["> 1000", "> 1000"]                             # equal means and SDs: never
    assert cells["wider"] == [f"{w.seeds_needed_mean:.0f}", f"{w.seeds_needed_spread:.0f}"]
    assert "α/m = 0.025" in md[2]
