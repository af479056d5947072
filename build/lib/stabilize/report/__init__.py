"""The report of a sweep (`stabilize-report`, `notebooks/analyze_sweep.ipynb`), one concern a module:

- `runs`: every `results.json` of a sweep as one DataFrame (`load_runs`);
- `stats`: bootstrap CI of the mean, Welch's t-test, expected maximum (Dodge et al. 2020),
  Almost Stochastic Order (Dror et al. 2019), the seeds a test needs (Cohen 1988);
- `tables`: per task x training-set size, a summary row per method and the expected maxima;
- `plots`: the figures;
- `cli`: `write_report` and the command, `main`.
"""
from stabilize.report.cli import main, write_report
from stabilize.report.plots import plot_expected_max, plot_scores, plot_weight_change
from stabilize.report.runs import BASELINE, RUN_COLUMNS, groups, load_runs, load_weight_change
from stabilize.report.stats import aso, bootstrap_ci, expected_max, seeds_for_mean, seeds_for_spread, welch
from stabilize.report.tables import expected_max_markdown, expected_max_table, summary_table, table_markdown

__all__ = ["BASELINE", "RUN_COLUMNS", "aso", "bootstrap_ci", "expected_max", "expected_max_markdown",
           "expected_max_table", "groups", "load_runs", "load_weight_change", "main", "plot_expected_max",
           "plot_scores", "plot_weight_change", "seeds_for_mean", "seeds_for_spread", "summary_table",
           "table_markdown", "welch", "write_report"]
