"""`stabilize-report SWEEP_DIR [--out DIR]`: tables and plots from every run of a sweep.

Reads every `results.json` under SWEEP_DIR (recursively) into one DataFrame (`load_runs`,
also used by `notebooks/analyze_sweep.ipynb`) and writes, per task x training-set size:

- `table_<task>_<size>.{md,csv}`: one row per method: runs, mean, std, bootstrap 95% CI of
  the mean, min, median, max of the test score, share of failed runs (status failed) and
  of study B's failed runs (`below_threshold`: test <= the task's threshold), errored runs,
  Welch's unequal-variance t-test against `standard` (unpaired), Almost Stochastic
  Order's eps_min against `standard` (Dror et al. 2019; Bonferroni over the table's methods),
  and the seeds a side Welch's and Brown-Forsythe's tests would need to detect the observed
  differences of mean and spread (power 0.8, the same corrected level); the best value of a
  column in bold;
- `expected_max_<task>_<size>.{md,csv,png}`: Dodge et al.'s (2020) expected maximum
  validation score over n = 1..N runs;
- `scores_<task>_<size>.png`: box and strip plot of the test scores per method;
- `weight_change_<task>_<size>.png`: mean per-layer L2 weight change, where runs wrote
  `weight_change.json`;

and `report.md` (everything, with the figures linked) and `runs.csv` (one row per run).
Exit status 2 when SWEEP_DIR holds no readable run.
"""
import argparse
import sys
from pathlib import Path

import pandas as pd

from stabilize import results
from stabilize.report.plots import plot_expected_max, plot_scores, plot_weight_change, scores_figsize
from stabilize.report.runs import groups, load_runs, load_weight_change
from stabilize.report.tables import expected_max_markdown, expected_max_table, summary_table, table_markdown


def write_report(df: pd.DataFrame, out: Path) -> list[Path]:
    """Write tables, curves and figures for every task x size of `df` into `out`; the paths written."""
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        written.append(out / name)
        return name

    df.drop(columns=["path"]).to_csv(out / "runs.csv", index=False)
    written.append(out / "runs.csv")
    md = [f"# Report of {df.attrs.get('sweep_dir', '')}\n", f"{len(df)} runs: {_counts(df)}\n"]
    unreadable = df.attrs.get("unreadable", [])
    if unreadable:
        md.append(f"**{len(unreadable)} unreadable {results.RESULTS}** (left out):\n")
        md += [f"- `{p}`: {why}" for p, why in unreadable] + [""]
    errors = df[df["status"] == results.ERRORED]
    if len(errors):
        md.append(f"Errored runs (see {results.ERROR} in each folder):\n")
        md += [f"- `{r.run_dir}`: {r.error}" for r in errors.itertuples()] + [""]
    interrupted = df[df["status"] == results.INTERRUPTED]
    if len(interrupted):  # not results yet: `groups` leaves them out of the tables and figures
        md.append("Interrupted runs (checkpointed; launching the sweep again resumes them; not in the tables):\n")
        md += [f"- `{r.run_dir}`: {r.reason}" for r in interrupted.itertuples()] + [""]
    for task, size, runs in groups(df):
        stem = f"{task}_{size}"
        metric = runs["metric"].dropna().iloc[0] if runs["metric"].notna().any() else None
        thresholds = runs["threshold"].dropna()
        table = summary_table(runs)
        table.to_csv(out / f"table_{stem}.csv", index=False)
        tmd = table_markdown(table, task, size, metric, thresholds.iloc[0] if len(thresholds) else None)
        (out / f"table_{stem}.md").write_text(tmd)
        written += [out / f"table_{stem}.csv", out / f"table_{stem}.md"]
        md += [f"## {task}, train_size={size}\n", tmd]

        fig, ax = plt.subplots(figsize=scores_figsize(runs["label"].unique()), layout="constrained")
        plot_scores(runs, ax=ax, title=f"{task}, train_size={size}: test {metric or 'score'} per run")
        md.append(f"![scores]({save(fig, f'scores_{stem}.png')})\n")

        em = expected_max_table(runs)
        if len(em):
            em.to_csv(out / f"expected_max_{stem}.csv")
            (out / f"expected_max_{stem}.md").write_text(expected_max_markdown(em))
            written += [out / f"expected_max_{stem}.csv", out / f"expected_max_{stem}.md"]
            fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
            plot_expected_max(em, ax=ax, title=f"{task}, train_size={size}: expected max over runs",
                              metric=metric or "score")
            md += [expected_max_markdown(em), f"![expected max]({save(fig, f'expected_max_{stem}.png')})\n"]

        wc = load_weight_change(runs)
        if len(wc):
            fig, ax = plt.subplots(figsize=(max(6.5, 0.45 * wc["layer"].nunique() + 3), 4.5), layout="constrained")
            plot_weight_change(wc, ax=ax, title=f"{task}, train_size={size}: weight change per layer")
            md.append(f"![weight change]({save(fig, f'weight_change_{stem}.png')})\n")
    (out / "report.md").write_text("\n".join(md))
    written.append(out / "report.md")
    return written


def _counts(df: pd.DataFrame) -> str:
    counts = {s: int((df["status"] == s).sum()) for s in results.STATUSES}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n or s != results.INTERRUPTED)


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
    print(f"stabilize-report: {len(df)} runs ({_counts(df)}) in {df.groupby(['task', 'size']).ngroups} "
          f"task x size table(s); {len(df.attrs['unreadable'])} unreadable -> {out / 'report.md'}")
