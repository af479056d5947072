"""Does `mixout` gain by mixing, or by turning dropout off? The README's `dropout` block.

Mixout (study A, section 5; `stabilize/strategies/mixout.py`) turns every dropout off, as study A's
code does, and MiniLM trains with dropout 0.1 otherwise. At p = 0 Mixout keeps every weight
column, W~ = W, so `method=mixout method.strategies.mixout.p=0` is `standard` without dropout. Its
runs in `diagnosis/`, seed for seed against `standard` and `mixout` (p = 0.1) of `sweep/`, per task.
`summarize.py` calls `dropout_block`.
"""
from pathlib import Path

import numpy as np

from clipping import fmt, runs, seed_table


def task_rules(learns: float) -> dict:
    """Per task: its name, metric and failed run (STS-B: below a test Spearman of `learns`,
    summarize.py's STSB_LEARNS; MRPC: study A's, no better than the majority class)."""
    return {"stsb": ("STS-B", "Spearman", (f"below {learns:g}", lambda r: r["test"] < learns)),
            "mrpc": ("MRPC", "F1", ("no better than the majority class", lambda r: r["status"] == "failed"))}


def task_lines(folder: Path, task: str, metric: str, fail: tuple) -> list[str]:
    """The block's lines for one task; none where `diagnosis/` has no run of it at p = 0."""
    found = sorted((r for _, r in runs(folder / "diagnosis", task) if r["method"] == "mixout"
                    and r["config"]["method"]["strategies"]["mixout"]["p"] == 0), key=lambda r: r["seed"])
    if not found:
        return []
    swept = {(r["method"], r["seed"]): r for _, r in runs(folder / "sweep", task)}
    seeds = [r["seed"] for r in found]
    columns = {"`standard` (dropout 0.1)": [swept.get(("standard", s)) for s in seeds],
               "no dropout (`mixout`, p = 0)": found,
               "`mixout` (p = 0.1)": [swept.get(("mixout", s)) for s in seeds]}
    scores = [[r["test"] for r in rs if r is not None] for rs in columns.values()]
    lines = seed_table(seeds, columns, metric, fail)
    lines.append("| mean (std) | " + " | ".join(f"{fmt(np.mean(xs))} ({fmt(np.std(xs, ddof=1))})" if len(xs) > 1
                                                else "–" for xs in scores) + " |")
    standard, no_dropout, mixout = columns.values()
    above = lambda other: sum(o is not None and x["test"] > o["test"] for x, o in zip(no_dropout, other))  # noqa: E731
    return lines + ["", f"Without dropout, a run is above `standard`'s of the same seed in {above(standard)} of "
                    f"{len(seeds)} seeds, and above `mixout`'s in {above(mixout)}."]


def dropout_block(folder: Path, learns: float) -> str:
    parts = [f"**{name}**\n\n" + "\n".join(lines) for task, (name, metric, fail) in task_rules(learns).items()
             if (lines := task_lines(folder, task, metric, fail))]
    return "\n\n".join(parts) or "Not run yet."
