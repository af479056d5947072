"""Why `component_clip` fails at this study's setting: the README's `clipping` block, from `diagnosis/`.

Study B (`../../../shared/PAPERS.md`, section B) replaces global gradient-norm clipping with
clipping each tensor's gradient on its own. Two diagnoses on STS-B, both run with the project
(the commands are in the README):
- `standard` without any clipping (`optim.clip_norm=null`), seed for seed against `standard`
  and `component_clip` of `sweep/`;
- the gradient norm of every tensor before clipping, at every step (`callbacks=grad_monitor`), in
  `standard` and `component_clip`, seed 0: how many tensors clipping at c = 1 scales, how global
  clipping scales the encoder's gradient over the run, how far the layers move.
`summarize.py` calls `clipping_block`; the tensor names are BERT's (MiniLM).
"""
import json
from pathlib import Path

import numpy as np

from stabilize.monitor import MONITOR_FILE
from stabilize.results import FINISHED, RESULTS, load

EARLY, LATE = 20, 48   # steps [0, EARLY) against [LATE, end): the first fifth, the second half of 96
ENCODER = (".embeddings.", ".encoder.")  # the tensors below the pooler and the head


def runs(folder: Path, task: str = "stsb") -> list[tuple[Path, dict]]:
    """The finished runs of `task` under `folder` with their folders; none where it does not exist."""
    return [(p.parent, r) for p in sorted(folder.glob(f"*/{RESULTS}"))
            if (r := load(p))["status"] in FINISHED and r["task"] == task]


def fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def seed_table(seeds: list[int], columns: dict[str, list], metric: str, fail: tuple) -> list[str]:
    """Markdown lines: each column's test `metric` seed for seed (a column lists results, or None
    where a seed has none), then its count of failed runs, `fail` = (label, result -> bool)."""
    label, failed = fail
    below = lambda rs: f"{sum(r is not None and failed(r) for r in rs)}/{len(rs)}"  # noqa: E731
    lines = [f"Test {metric}, seed for seed:", "",
             "| seed | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {s} | " + " | ".join(fmt(None if v[i] is None else v[i]["test"]) for v in columns.values()) + " |"
              for i, s in enumerate(seeds)]
    return [*lines, f"| {label} | " + " | ".join(below(v) for v in columns.values()) + " |"]


def gradients(monitor: dict, c: float, component: bool) -> dict:
    """From a run's grad_monitor.json (`monitor`): the global norm per step, the tensors above `c` per step,
    and the encoder tensors' gradient after clipping at `c` (per tensor if `component`, else
    global), late against early."""
    recorded = monitor["grad_norm"]
    norms = np.array(recorded["values"])
    total = np.sqrt((norms ** 2).sum(axis=1))
    after = np.minimum(norms, c) if component else norms * np.minimum(1.0, c / total)[:, None]
    encoder = np.array([any(part in name for part in ENCODER) for name in recorded["tensors"]])
    rms = lambda x: np.sqrt((x[:, encoder] ** 2).mean(axis=0))  # noqa: E731
    above = norms > c
    often = [i for i in np.argsort(-above.sum(axis=0), kind="stable")[:3] if above[:, i].any()]
    return {"steps": len(norms), "tensors": norms.shape[1], "encoder": int(encoder.sum()), "total": total,
            "above": above.sum(axis=1), "often": ", ".join(f"`{recorded['tensors'][i]}`" for i in often),
            "late_over_early": float(np.median(rms(after[LATE:]) / rms(after[:EARLY])))}


def layer_moves(monitor: dict) -> list[tuple[int, float]]:
    """(evaluation step, mean over the embedding and encoder layers of the largest RMS change)."""
    change = monitor["rms_change"]
    lower = [i for i, name in enumerate(change["layers"]) if name not in ("pooler", "head")]
    return [(step, float(np.mean(np.array(row)[lower]))) for step, row in zip(change["steps"], change["values"])]


def clipping_block(folder: Path, learns: float) -> str:
    """The block; a run "fails" below a test Spearman of `learns` (summarize.py's STSB_LEARNS)."""
    found = runs(folder / "diagnosis")
    if not found:
        return "Not run yet."
    swept = {(r["method"], r["seed"]): r for _, r in runs(folder / "sweep")}
    unclipped = sorted((r for _, r in found if r["config"]["optim"]["clip_norm"] is None), key=lambda r: r["seed"])
    seeds = [r["seed"] for r in unclipped]
    lines = seed_table(seeds, {"`standard` (global clipping)": [swept.get(("standard", s)) for s in seeds],
                               "no clipping": unclipped,
                               "`component_clip`": [swept.get(("component_clip", s)) for s in seeds]},
                       "Spearman", (f"below {learns:g}", lambda r: r["test"] < learns))
    monitored = {r["method"]: (run, r) for run, r in found if (run / MONITOR_FILE).is_file() and r["seed"] == 0}
    if {"standard", "component_clip"} <= monitored.keys():
        std_run, std = monitored["standard"]
        cc_run, cc = monitored["component_clip"]
        m_std, m_cc = (json.loads((run / MONITOR_FILE).read_text()) for run in (std_run, cc_run))
        c_global = std["config"]["optim"]["clip_norm"]
        c = cc["config"]["method"]["strategies"]["component_clip"]["max_norm"]
        g_std, g_cc = gradients(m_std, c_global, component=False), gradients(m_cc, c, component=True)
        total = g_std["total"]
        lines += ["", f"Gradient norms before clipping, seed 0 ({g_std['tensors']} tensors, {g_std['encoder']} of "
                  "them in the embeddings and the encoder; test Spearman "
                  f"{fmt(std['test'])} for `standard`, {fmt(cc['test'])} for `component_clip`):", "",
                  f"- `standard`: the global norm is above c = {c_global:g} at {int((total > c_global).sum())} "
                  f"of {g_std['steps']} steps "
                  f"({total[:EARLY].min():.1f} to {total[:EARLY].max():.1f} in the first {EARLY}, median "
                  f"{np.median(total[LATE:]):.1f} from step {LATE} on), so global clipping scales every tensor's "
                  "gradient down by it, by less as the norm falls. The encoder's gradient after clipping "
                  "grows: its RMS from step "
                  f"{LATE} on is {g_std['late_over_early']:.2f} times that of the first {EARLY} steps "
                  f"(median over the {g_std['encoder']} tensors).",
                  f"- `component_clip`: a median of {np.median(g_cc['above'][:EARLY]):.0f} of {g_cc['tensors']} "
                  f"tensors per step have a norm above c = {c:g} in the first {EARLY} steps (most often "
                  f"{g_cc['often']}), {np.median(g_cc['above'][LATE:]):.0f} from step {LATE} on; the others are "
                  "not scaled at all. The encoder's clipped gradient from step "
                  f"{LATE} on is {g_cc['late_over_early']:.2f} times that of the first {EARLY} steps.",
                  "", "Largest RMS weight change per evaluation interval, mean over the embedding and encoder layers:",
                  "", "| step | `standard` | `component_clip` |", "|---|---|---|"]
        lines += [f"| {s} | {a:.2e} | {b:.2e} |" for (s, a), (_, b) in zip(layer_moves(m_std), layer_moves(m_cc))]
    return "\n".join(lines)
