"""Item 1: per-step overhead, stabilize (`method=standard`, Lightning) vs the bare loop on the same batches."""
from benchmarks.report import table
from benchmarks.stats import fmt, summary, verdict
from benchmarks.steps import ratio, shared_session

TITLE = "per-step overhead"


def run(ctx, report) -> None:
    res = shared_session(ctx)
    p = res["participants"]
    lines = []
    for name in ("bare", "standard"):
        if p[name]["error"]:
            lines.append(f"**{name} failed:** {p[name]['error']}")
    r = ratio(res, "standard", "bare")
    ctx.store["per_step"] = r
    ctx.store["session"] = {n: {k: v for k, v in q.items() if k != "digests"} for n, q in p.items()}
    lines += [
        "stabilize `train(cfg)` (LightningModule, `method=standard`, `logger=csv`, progress bar off as in "
        "sweeps) and `benchmarks.bare` (forward, loss, backward, global-norm clip, AdamW, linear schedule, "
        "zero_grad; no host sync) take turns step by step on the same batches of the real MiniLM (RTE). "
        "A step is the interval between two step starts: data fetch and collation, the step, and everything "
        f"the framework does around it. {res['warmup']} warm-up step(s) dropped.", "",
        *table(["figure", "value", "target", ""], [
            ["per-step time ratio stabilize/bare", fmt(r), "≤ 1.05", verdict(r["median"], 1.05, False)],
            ["bare step time (s)", fmt(summary(p["bare"]["times"])), "", ""],
            ["stabilize step time (s)", fmt(summary(p["standard"]["times"])), "", ""],
            ["same batches, every step", str(p["standard"]["same_batches"]), "True", ""],
        ])]
    report.add("1. Per-step overhead: stabilize vs a bare PyTorch loop", lines)
