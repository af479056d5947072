"""Training-set size against the step budget: the README's `sizes` and `controls` blocks.

Mosbach et al. (ICLR 2021, section 5) trace few-sample instability to too few optimizer steps, not
to too little data; study A (section 5) reports the methods' gains shrinking as data grow. The
size sweep (`sizes.sh`, section 6) runs `standard` at the study's recipe (3 epochs, MRPC 5: the
steps grow with the data) and at one budget of 800 steps for every size (`longer`), and the
methods that won at 1k at the recipe, at 100, 300, 1,000 and the largest size. Its 1,000-example
points are the study's runs (`sweep/`, `diagnosis/`), the rest are in `sweep_sizes/`, as are the two
controls at 1k (LP-FT's fitted probe; mosbach with the papers' Adam). `summarize.py` calls
`sizes_block` and `controls_block`.
"""
import json
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from clipping import runs
from stabilize.report import seeds_for_mean, seeds_for_spread, welch
from stabilize.report.plots import legend_right, line_styles
from stabilize.results import WEIGHT_CHANGE

ARMS = {"standard": "`standard`, the recipe", "longer": "`standard`, 800 steps (`longer`)",
        "reinit": "`reinit`", "llrd": "`llrd`", "no dropout": "no dropout (`mixout`, p = 0)",
        "lpft": "`lpft` (fitted probe)", "mosbach": "`mosbach` (its recipe)"}
CONTROLS = {"lpft (gradient probe)": "`lpft`, gradient probe (`sweep/`)", "lpft": "`lpft`, fitted probe",
            "mosbach": "`mosbach`, torch's AdamW (`sweep/`)", "mosbach (papers' Adam)": "`mosbach`, the papers' Adam"}
MIN_SEEDS = 5   # as summarize.py: fewer a side and a test is not made
ALPHA = 0.05    # divided by the comparisons made at a size (Bonferroni)
FOLDERS = ("sweep", "diagnosis", "sweep_sizes")
PLANNED = {"stsb": 230, "mrpc": 70}  # sizes.sh's phases 1-4 (about 40 hours), per task; MRPC's phase 5 adds 150


def arm(record: dict) -> str | None:
    """What a run is in this reading, from its method and config; None for a run it does not use."""
    method, config = record["method"], record["config"]
    own = config["method"]["strategies"].get(method.split("+")[0]) or {}
    if method == "mixout":
        return "no dropout" if own.get("p") == 0 else None
    if method == "lpft":
        return "lpft" if own.get("probe", "gradient") == "fit" else "lpft (gradient probe)"
    if method == "mosbach":
        return "mosbach" if config["optim"].get("eps_placement", "after_correction") == "after_correction" \
            else "mosbach (papers' Adam)"
    return method if method in ARMS else None


def collect(folder: Path, task: str) -> dict[tuple[str, int], list[dict]]:
    """(arm, size) -> the finished runs, from every folder of the study; `sweep/` and `diagnosis/`
    hold 1,000-example runs only, and of `diagnosis/` only the no-dropout runs are an arm; each
    record gains its folder (`run_dir`)."""
    found: dict[tuple[str, int], list[dict]] = {}
    for name in FOLDERS:
        for run_dir, record in runs(folder / name, task):
            key = arm(record)
            if key is not None and record["test"] is not None and (name != "diagnosis" or key == "no dropout"):
                found.setdefault((key, int(record["train_size"])), []).append({**record, "run_dir": run_dir})
    return found


def scores(found, key) -> np.ndarray:
    return np.array([r["test"] for r in found.get(key, [])], dtype=float)


def cell(x: np.ndarray, failed: int | None = None) -> str:
    """mean ± std (n), ×100; the failed runs when there are any."""
    if not len(x):
        return "–"
    spread = f" ± {100 * x.std(ddof=1):.1f}" if len(x) > 1 else ""
    return f"{100 * x.mean():.1f}{spread} ({len(x)}" + (f", {failed} failed" if failed else "") + ")"


def seeds_text(n: float) -> str:
    return "–" if np.isnan(n) else "> 1000" if np.isinf(n) else f"{n:.0f}"


def size_table(found, sizes, failed) -> list[str]:
    steps = {s: sorted({r["steps"] for r in found.get(("standard", s), [])}) for s in sizes}
    lines = ["| | " + " | ".join(f"{s:,}" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|",
             "| steps at the recipe | " + " | ".join("/".join(map(str, steps[s])) or "–" for s in sizes) + " |"]
    for key, name in ARMS.items():
        if any((key, s) in found for s in sizes):
            lines.append(f"| {name} | " + " | ".join(
                cell(scores(found, (key, s)), sum(map(failed, found.get((key, s), [])))) for s in sizes) + " |")
    return lines


def spread_lines(found, sizes) -> list[str]:
    """Does `standard`'s spread over seeds stay flat across sizes? Brown–Forsythe across the sizes
    with enough seeds, at the recipe and at the fixed budget."""
    out = []
    for key in ("standard", "longer"):
        groups = {s: scores(found, (key, s)) for s in sizes if len(scores(found, (key, s))) >= MIN_SEEDS}
        if len(groups) < 2:
            out.append(f"- {ARMS[key]}: fewer than two sizes with {MIN_SEEDS} seeds; no test yet.")
            continue
        stds = ", ".join(f"{s:,}: {100 * x.std(ddof=1):.1f}" for s, x in groups.items())
        p = stats.levene(*groups.values(), center="median").pvalue
        small, large = groups[min(groups)], groups[max(groups)]
        need = seeds_for_spread(small, large, ALPHA / 2)
        out.append(f"- {ARMS[key]}: std {stds}; Brown–Forsythe across these sizes p {p:.2g} (α {ALPHA}/2, the two "
                   f"budgets); seeds a side to tell the smallest size's spread from the largest's: {seeds_text(need)}.")
    return out


def gain_table(found, sizes) -> list[str]:
    """Each method against `standard` at the recipe, size by size: the mean difference, Welch's p,
    and the seeds a side that would detect it (power 0.8) at α/m, m the methods compared there."""
    methods = [k for k in ARMS if k not in ("standard", "longer") and any((k, s) in found for s in sizes)]
    if not methods:
        return []
    lines = ["| against `standard` (the recipe) | " + " | ".join(f"{s:,}" for s in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    compared = {s: [m for m in methods if min(len(scores(found, (m, s))), len(scores(found, ("standard", s))))
                    >= MIN_SEEDS] for s in sizes}
    for m in methods:
        cells = []
        for s in sizes:
            x, y = scores(found, (m, s)), scores(found, ("standard", s))
            if m not in compared[s]:
                cells.append(f"{100 * (x.mean() - y.mean()):+.1f} (n < {MIN_SEEDS})" if len(x) and len(y) else "–")
                continue
            alpha = ALPHA / len(compared[s])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = welch(x, y)[1]
            cells.append(f"{100 * (x.mean() - y.mean()):+.1f} (p {p:.2g}{' ✓' if p < alpha else ''}; "
                         f"{seeds_text(seeds_for_mean(x, y, alpha))} seeds)")
        lines.append(f"| {ARMS[m]} | " + " | ".join(cells) + " |")
    return lines + ["", f"✓: significant at α {ALPHA}/m, m the methods with {MIN_SEEDS} seeds a side at that size; "
                    "seeds: a side, to detect the observed difference with power 0.8 at that α "
                    "(`stabilize.report.seeds_for_mean`)."]


def size_figure(found, sizes, path: Path, title: str, metric: str) -> None:
    """Each arm's test scores against the training-set size (log axis): a dot a seed, the mean ±
    std over the seeds joined across sizes. The backend is the caller's (summarize.py: Agg)."""
    import matplotlib.pyplot as plt
    arms = [k for k in ARMS if any((k, s) in found for s in sizes)]
    styles = line_styles(arms)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for i, key in enumerate(arms):
        shift = 1.04 ** (i - (len(arms) - 1) / 2)  # the arms side by side at each size
        at = {s: x for s in sizes if len(x := scores(found, (key, s)))}
        for s, x in at.items():
            ax.scatter(np.full(len(x), s * shift), 100 * x, s=9, alpha=0.5, color=styles[key]["color"])
        mean = [100 * x.mean() for x in at.values()]
        std = [100 * x.std(ddof=1) if len(x) > 1 else 0 for x in at.values()]
        ax.errorbar([s * shift for s in at], mean, yerr=std, marker="o", capsize=3, label=ARMS[key].replace("`", ""),
                    **styles[key])
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes], minor=False)
    ax.minorticks_off()
    ax.set_xlabel("training examples")
    ax.set_ylabel(f"test {metric} × 100")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_right(ax)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sizes_block(folder: Path, rules: dict) -> str:
    """Per task (`rules`: task -> (name, metric, (failed label, record -> bool)), dropout.task_rules),
    with its figure in report/sizes_<task>.png."""
    parts = []
    for task, (name, metric, (label, failed)) in rules.items():
        found = collect(folder, task)
        sizes = sorted({s for (k, s) in found if k in ARMS})
        new = sum(1 for _, r in runs(folder / "sweep_sizes", task))
        if sizes in ([], [1000]):
            parts.append(f"**{name}**: no run of the size sweep yet.")
            continue
        figure = f"report/sizes_{task}.png"
        size_figure(found, sizes, folder / figure, f"{name}: test {metric} against the training-set size", metric)
        parts.append(f"**{name}** ({new} of the {PLANNED[task]} planned runs of `sweep_sizes/` finished; test "
                     f"{metric} × 100: mean ± std over the seeds in; failed: {label})\n\n"
                     + "\n".join([*size_table(found, sizes, failed), "", f"![{name} against the size]({figure})", "",
                                  *spread_lines(found, sizes), "", *gain_table(found, sizes)]))
    return "\n\n".join(parts)


def controls_block(folder: Path, rules: dict) -> str:
    """LP-FT's fitted probe against the gradient probe (both tasks), and mosbach with the papers'
    Adam against torch's (STS-B), all at 1,000 examples, with their failed runs: Welch's and
    Brown–Forsythe's p, α 0.05/2; then the fitted probe's fit per task."""
    lines = ["| task | control | against | mean ± std (n) | Welch p | Brown–Forsythe p |", "|---|---|---|---|---|---|"]
    probes = []
    for task, (name, _, (_, failed)) in rules.items():
        found = collect(folder, task)
        probes += probe_lines(found, name)
        for new, old in (("lpft", "lpft (gradient probe)"), ("mosbach (papers' Adam)", "mosbach")):
            x, y = scores(found, (new, 1000)), scores(found, (old, 1000))
            if not len(x):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = welch(x, y)[1] if min(len(x), len(y)) >= 2 else np.nan
                q = stats.levene(x, y, center="median").pvalue if min(len(x), len(y)) >= 2 else np.nan
            fails = [sum(map(failed, found.get((key, 1000), []))) for key in (new, old)]
            lines.append(f"| {name} | {CONTROLS[new]} | {CONTROLS[old]} | {cell(x, fails[0])} vs {cell(y, fails[1])} "
                         f"| {p:.2g} | {q:.2g} |")
    return "\n".join([*lines, "", *probes]) if len(lines) > 2 else "Not run yet."


def probe_lines(found, name: str) -> list[str]:
    """The fitted probe's `probe_*` keys (lpft's results) over its runs at 1k, beside the gradient
    probe's last training-batch loss, and how far each moved the encoder against `standard`:
    medians over the seeds, [min, max] where they differ."""
    fitted, gradient = found.get(("lpft", 1000), []), found.get(("lpft (gradient probe)", 1000), [])
    if not fitted:
        return []

    def median(records, key, digits=3):
        x = np.array([r[key] for r in records], dtype=float)
        low, high = f"{x.min():.{digits}g}", f"{x.max():.{digits}g}"
        return f"{np.median(x):.{digits}g}" + ("" if low == high else f" [{low}, {high}]")
    first = fitted[0]
    converged = [r["probe_converged"] for r in fitted if r["probe_converged"] is not None]
    text = (f"- {name}, the fitted probe ({first['probe_model']}, {len(fitted)} runs; medians [min, max]): "
            f"loss on the eval-mode training features {median(fitted, 'probe_init_loss')} (the random head) → "
            f"{median(fitted, 'probe_train_loss')}; validation {first['config']['task']['select_metric']} "
            f"{median(fitted, 'probe_val')}; "
            f"{first['probe_reg_name']} {median(fitted, 'probe_reg', 2)}")
    text += f"; converged: {sum(converged)} of {len(converged)}" if converged else ""
    if gradient:
        text += (f". The gradient probe (`sweep/`, {len(gradient)} runs) ended at a training-batch loss of "
                 f"{median(gradient, 'probe_last_loss')} (dropout on)")
    changes = ((label, encoder_change(found.get((key, 1000), []))) for label, key in
               (("fitted probe", "lpft"), ("gradient probe", "lpft (gradient probe)"), ("`standard`", "standard")))
    moved = [f"{label} {np.median(x):.2f}" for label, x in changes if len(x)]
    return [text + ". The encoder's weight change (L2 distance from the pretrained weights, mean over its "
            f"layers; median over the runs): {', '.join(moved)}."]


def encoder_change(records) -> np.ndarray:
    """Per run, the mean over the encoder's layers (`layer.*` of weight_change.json) of the L2
    distance they moved in training; runs without the file are left out."""
    files = [r["run_dir"] / WEIGHT_CHANGE for r in records]
    changes = [json.loads(f.read_text()) for f in files if f.is_file()]
    return np.array([np.mean([d for name, d in zip(c["layers"], c["l2"]) if name.startswith("layer.")])
                     for c in changes])
