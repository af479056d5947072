"""Refresh the study's reports and its README from the finished runs: `python summarize.py [FOLDER]`.

For each sweep folder (`sweep/`, `sweep_recipe/`) it writes `report/<sweep>/` (what
`stabilize-report` writes), then rewrites the README's generated blocks, each between
`<!-- begin NAME -->` and `<!-- end NAME -->`: `status`, `wall`, `results`, `recipe` (with its
own verdicts), `verdicts`, `clipping` and `dropout` (`clipping.py`, `dropout.py`, from
`diagnosis/`), `fit` (`fit.py`, from the runs' logs), and `sizes` and `controls` (`sizes.py`, from
`sweep_sizes/` beside the others). The verdicts follow the rule stated in the README's section 4
(`RULE`).
"""
import re
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

from clipping import clipping_block
from dropout import dropout_block, task_rules
from fit import fit_block
from sizes import controls_block, sizes_block
from stabilize.report import BASELINE, groups, load_runs, welch, write_report
from stabilize.report.runs import method_order
from stabilize.results import FINISHED

NAMES = {"stsb": "STS-B", "mrpc": "MRPC"}
# Neither paper defines a failed run on STS-B; this study counts one when the test Spearman is
# below the pilot's learning criterion.
STSB_LEARNS = 0.5
MIN_SEEDS = 5   # fewer finished seeds on either side: cannot tell
ALPHA = 0.05    # divided by the methods of one source compared on the task (Bonferroni)
RULE = (f"each test at α = {ALPHA}/m (Bonferroni), m the methods with at least {MIN_SEEDS} seeds a side compared "
        "on that task whose claims have the same source, the papers or section C (so that later methods leave the "
        "papers' verdicts as they were); a significant difference in the claim's direction agrees, one against it "
        "(or any, where the claim is of no difference) disagrees; no significant difference agrees where the claim "
        f"is of no difference and cannot tell where it is of one, as does a method with fewer than {MIN_SEEDS} seeds")

# What the papers found against `standard`, per method: quantity -> task -> "+", "-" or "=" (no clear
# difference). Quantities: mean (Welch's t-test), std (Brown-Forsythe's test of equal spread),
# failed (Fisher's exact test; on MRPC study A's failed runs, status failed, or study B's,
# below_threshold, as named). From ../../../shared/PAPERS.md, study A's MRPC and STS-B columns.
CLAIMS = {
    "bertadam": ("A: larger early steps, lower means, many failed runs",
                 {"mean": "-", "failed": ("+", "status")}),
    "reinit": ("A: higher means (MRPC +0.6, STS-B +0.4), smaller std (MRPC 1.3 → 0.8, STS-B 0.6 → 0.2)",
               {"mean": "+", "std": "-"}),
    "llrd": ("A: MRPC +0.5, STS-B +0.2: no clear gain", {"mean": "="}),
    "mixout": ("A: MRPC −0.4, STS-B +0.2: no clear gain", {"mean": "="}),
    "prior_wd": ("A: MRPC +0.0, STS-B +0.0", {"mean": "="}),
    "component_clip": ("B: fewer failed runs than global clipping", {"failed": ("-", "below_threshold")}),
    "gradual_unfreeze": ("B: fewer failed runs, at several times the cost", {"failed": ("-", "below_threshold")}),
    "longer": ("A: STS-B +0.6 with std 0.6 → 0.3; MRPC +0.2 with std 1.3 → 1.5",
               {"mean": {"stsb": "+", "mrpc": "="}, "std": {"stsb": "-", "mrpc": "="}}),
}
AFTER = ("section C: a smaller spread over seeds than plain fine-tuning", {"std": "-"})


def failures(runs, task: str, criterion: str = "status"):
    """Which of the finished `runs` failed: on STS-B a test score below STSB_LEARNS, else their
    status (`status`) or study B's threshold (`below_threshold`)."""
    if task == "stsb":
        return runs["test"] < STSB_LEARNS
    return runs["failed"].astype(bool) if criterion == "status" else runs["below_threshold"].astype(bool)


def compare(quantity: str, runs, base, task: str, criterion=None) -> tuple[float, float, str]:
    """(observed direction, p, text) of the method's `runs` against the baseline's `base`."""
    x, y = runs["test"].to_numpy(float), base["test"].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # p is NaN below 2 runs a side
        if quantity == "mean":
            d, p = 100 * (x.mean() - y.mean()), welch(x, y)[1]
            text = f"mean {d:+.1f}"
        elif quantity == "std":
            d, p = x.std(ddof=1) - y.std(ddof=1), stats.levene(x, y, center="median").pvalue
            text = "std –" if min(len(x), len(y)) < 2 else \
                f"std {100 * x.std(ddof=1):.1f} vs {100 * y.std(ddof=1):.1f}"
        else:
            a, b = failures(runs, task, criterion), failures(base, task, criterion)
            d, p = a.mean() - b.mean(), stats.fisher_exact([[a.sum(), (~a).sum()], [b.sum(), (~b).sum()]]).pvalue
            text = f"failed {a.sum()}/{len(a)} vs {b.sum()}/{len(b)}"
    return float(np.sign(d)), float(p), text


def verdict(claim: str, observed: float, p: float, alpha: float) -> str:
    if p < alpha:
        return "agrees" if claim != "=" and observed == (1 if claim == "+" else -1) else "disagrees"
    return "agrees (no significant difference)" if claim == "=" else "cannot tell"


def source(method: str) -> str:
    """Whose claim a method is tested on: Bonferroni's m counts the methods of one source."""
    return "the papers' methods" if method in CLAIMS else "section C's"


def verdict_rows(df, only_run: bool = False) -> tuple[list[str], list[str]]:
    """The verdict table's rows, one per method with every claimed quantity on both tasks (every
    method of the papers, or with `only_run` those in `df`), and the corrected α per task and source."""
    run = set(df["method"])
    claims = {**{m: c for m, c in CLAIMS.items() if m in run or not only_run},
              **{m: AFTER for m in sorted(run - set(CLAIMS) - {BASELINE})}}
    cells, alphas = {m: {} for m in claims}, []
    for task, _, runs in in_order(df):
        runs = scored(runs)
        base = runs[runs["method"] == BASELINE]
        enough = [m for m in claims if min(len(runs[runs["method"] == m]), len(base)) >= MIN_SEEDS]
        per_source = Counter(map(source, enough))  # Bonferroni's m
        if per_source:
            alphas.append(f"{NAMES[task]}: " + ", ".join(f"{ALPHA}/{n} = {ALPHA / n:.2g} for {who}"
                                                         for who, n in per_source.items()))
        for method, (_, quantities) in claims.items():
            mine = runs[runs["method"] == method]
            if not len(mine) or not len(base):
                continue
            parts, verdicts = [], []
            for quantity, claim in quantities.items():
                claim, criterion = claim if isinstance(claim, tuple) else (claim, None)
                claim = claim.get(task, "=") if isinstance(claim, dict) else claim
                observed, p, text = compare(quantity, mine, base, task, criterion)
                if method in enough:  # p only where the rule uses it
                    parts.append(f"{text} (p {p:.2g})")
                    verdicts.append(f"{quantity} {verdict(claim, observed, p, ALPHA / per_source[source(method)])}")
                else:
                    parts.append(text)
                    verdicts.append(f"{quantity} cannot tell (n < {MIN_SEEDS})")
            cells[method][task] = (f"{NAMES[task]} (n {len(mine)} vs {len(base)}): {'; '.join(parts)}",
                                   f"{NAMES[task]}: {', '.join(verdicts)}")
    rows = []
    for method, (papers, _) in claims.items():
        here = [cells[method][t] for t in ("stsb", "mrpc") if t in cells[method]]
        rows.append(f"| {method} | {papers} | {'<br>'.join(h for h, _ in here) or 'not run yet'} | "
                    f"{'<br>'.join(v for _, v in here) or 'cannot tell'} |")
    return rows, alphas


def verdict_table(df, only_run: bool = False) -> str:
    rows, alphas = verdict_rows(df, only_run)
    return "\n".join(["| method | the papers | here, against `standard` | verdict |", "|---|---|---|---|", *rows, "",
                      f"Corrected α: {'; '.join(alphas) or 'no method has enough seeds yet'}."])


def recipe_block(folder: Path, recipe) -> str:
    """The contrast at the paper's recipe: its tables, and study A's claims tested where study A
    made them, by section 4's rule (Bonferroni's m counted in this folder)."""
    if recipe is None:
        return "Not run yet."
    return (table_block(folder / "report" / "sweep_recipe", recipe, "report/sweep_recipe")
            + "\nStudy A's claims at study A's own recipe, by section 4's rule:\n\n" + verdict_table(recipe, True))


def table_block(report: Path, df, link: str) -> str:
    """Per task: the summary table (from the report), its figures, and the failed runs' criterion."""
    out = []
    for task, size, runs in in_order(df):
        stem = f"{task}_{size}"
        table = [line for line in (report / f"table_{stem}.md").read_text().splitlines() if line.startswith("|")]
        metric = "Spearman" if task == "stsb" else "F1"
        figures = [f"![{name}]({link}/{file})" for name, file in
                   (("test scores", f"scores_{stem}.png"), ("expected maximum", f"expected_max_{stem}.png"),
                    ("weight change per layer", f"weight_change_{stem}.png")) if (report / file).is_file()]
        out.append(f"#### {NAMES.get(task, task)} (test {metric} × 100)\n\n" + "\n".join(table) + "\n\n"
                   f"The columns are explained in [{link}/report.md]({link}/report.md).\n\n"
                   + "\n".join(figures) + "\n")
        finished = scored(runs)
        per_method = [(m, finished[finished["method"] == m]) for m in method_order(finished["method"])]
        if task == "stsb":
            low = [f"{m} {(g['test'] < STSB_LEARNS).sum()}/{len(g)}" for m, g in per_method]
            out.append(f"Runs below Spearman {STSB_LEARNS} (this study's failed runs on STS-B; neither paper "
                       f"defines one): {', '.join(low)}.\n")
        elif finished["accuracy"].notna().any():
            acc = [f"{m} {g['accuracy'].mean():.3f}" for m, g in per_method]
            majority = finished["majority"].iloc[0]
            above = [m for m, g in per_method if g["test"].mean() > majority]
            out.append(f"Mean test accuracy (the majority class's: {finished['majority_accuracy'].iloc[0]:.3f}): "
                       f"{', '.join(acc)}. The majority class, answered for every test pair, scores "
                       f"{metric} {100 * majority:.2f}; methods whose mean test {metric} is above it: "
                       f"{', '.join(above) or 'none'}.\n")
    return "\n".join(out)


PLANNED = {"stsb": 180, "mrpc": 190, "recipe": 40}   # runs of run.sh's phases, per task and in sweep_recipe/


def status_text(df, recipe) -> str:
    counts = {t: r["status"].isin(FINISHED).sum() for t, _, r in in_order(df)}
    counts["recipe"] = 0 if recipe is None else recipe["status"].isin(FINISHED).sum()
    done = all(counts.get(k, 0) >= n for k, n in PLANNED.items())
    sweep = ", ".join(f"{NAMES.get(t, t)} {n}" for t, n in counts.items() if t != "recipe")
    return (f"**Status of this commit: {'finished' if done else 'in progress'}.** Finished runs in `sweep/`: "
            f"{sweep} (of {PLANNED['stsb']} on STS-B and {PLANNED['mrpc']} on MRPC), in `sweep_recipe/`: "
            f"{counts['recipe']} of {PLANNED['recipe']}. "
            + ("Every run of `run.sh` is in; relaunching it skips them all." if done else
               "Relaunch `run.sh` to go on; `python summarize.py` refreshes this README."))


def wall_text(df) -> str:
    parts = []
    for task, _, runs in in_order(df):
        runs = runs[runs["status"].isin(FINISHED)]
        for steps in sorted(runs["steps"].dropna().unique()):
            same = runs[runs["steps"] == steps]
            s = same["seconds"].dropna()
            runs_text = f"{len(s)} run" + "s" * (len(s) > 1)
            parts.append(f"{NAMES.get(task, task)}, {steps:.0f} steps ({', '.join(method_order(same['method']))}): "
                         f"{s.min():.0f}–{s.max():.0f} s (median {s.median():.0f} s, {runs_text})")
    return "\n".join(f"- {p}" for p in parts) + f"\n\nIn all, {df['seconds'].sum() / 3600:.1f} hours of runs in `sweep/`."


def scored(runs):
    """The finished runs with a test score (a diverged run has none)."""
    return runs[runs["status"].isin(FINISHED) & runs["test"].notna()]


def in_order(df):
    """groups(df), STS-B (the study's first task) before MRPC."""
    order = list(NAMES)
    return sorted(groups(df), key=lambda g: order.index(g[0]) if g[0] in order else len(order))


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- begin {name} -->\n).*?(<!-- end {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"summarize.py: README.md has no block `<!-- begin {name} -->` ... `<!-- end {name} -->`")
    return pattern.sub(lambda m: m.group(1) + body.strip() + "\n" + m.group(2), text)


def main(folder: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    frames = {}
    for sweep in ("sweep", "sweep_recipe"):
        if (folder / sweep).is_dir():
            df = load_runs(folder / sweep)
            if len(df):
                write_report(df, folder / "report" / sweep)
                frames[sweep] = df
    df, recipe = frames.get("sweep"), frames.get("sweep_recipe")
    if df is None:
        raise SystemExit(f"summarize.py: no finished run under {folder / 'sweep'}")
    readme = folder / "README.md"
    text = readme.read_text()
    blocks = {"status": status_text(df, recipe), "wall": wall_text(df),
              "results": table_block(folder / "report" / "sweep", df, "report/sweep"),
              "recipe": recipe_block(folder, recipe), "verdicts": f"Rule: {RULE}.\n\n" + verdict_table(df),
              "clipping": clipping_block(folder, STSB_LEARNS), "dropout": dropout_block(folder, STSB_LEARNS),
              "fit": fit_block(folder, NAMES), "sizes": sizes_block(folder, task_rules(STSB_LEARNS)),
              "controls": controls_block(folder, task_rules(STSB_LEARNS))}
    for name, body in blocks.items():
        text = replace_block(text, name, body)
    readme.write_text(text)
    print(f"summarize.py: {len(df)} runs in sweep/, "
          f"{0 if recipe is None else len(recipe)} in sweep_recipe/ -> {readme}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
