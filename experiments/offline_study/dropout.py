"""Does `mixout` gain on STS-B by mixing, or by turning dropout off? The README's `dropout` block.

Mixout (study A, section 5; `stabilize/strategies/mixout.py`) turns every dropout off, as study A's
code does, and MiniLM trains with dropout 0.1 otherwise. At p = 0 Mixout keeps every weight
column, W~ = W, so `method=mixout method.strategies.mixout.p=0` is `standard` without dropout. Its
runs in `diagnosis/`, seed for seed against `standard` and `mixout` (p = 0.1) of `sweep/`.
`summarize.py` calls `dropout_block`.
"""
from pathlib import Path

import numpy as np

from clipping import fmt, runs, seed_table


def dropout_block(folder: Path, learns: float) -> str:
    """The block; a run "fails" below a test Spearman of `learns` (summarize.py's STSB_LEARNS)."""
    found = sorted((r["seed"], r["test"]) for _, r in runs(folder / "diagnosis")
                   if r["method"] == "mixout" and r["config"]["method"]["strategies"]["mixout"]["p"] == 0)
    if not found:
        return "Not run yet."
    test = {(r["method"], r["seed"]): r["test"] for _, r in runs(folder / "sweep")}
    seeds = [s for s, _ in found]
    columns = {"`standard` (dropout 0.1)": [test.get(("standard", s)) for s in seeds],
               "no dropout (`mixout`, p = 0)": [t for _, t in found],
               "`mixout` (p = 0.1)": [test.get(("mixout", s)) for s in seeds]}
    present = [[x for x in xs if x is not None] for xs in columns.values()]
    lines = seed_table(seeds, columns, learns)
    lines.append("| mean (std) | " + " | ".join(f"{fmt(np.mean(xs))} ({fmt(np.std(xs, ddof=1))})" if len(xs) > 1
                                                else "–" for xs in present) + " |")
    standard, no_dropout, mixout = columns.values()
    above = lambda other: sum(o is not None and x > o for x, o in zip(no_dropout, other))  # noqa: E731
    lines += ["", f"Without dropout, a run is above `standard`'s of the same seed in {above(standard)} of "
              f"{len(seeds)} seeds, and above `mixout`'s in {above(mixout)}."]
    return "\n".join(lines)
