"""Item 4: strategy overheads per step vs `standard`, and the cost of component-wise clipping alone."""
import time

from benchmarks.configs import datamodule, load_minilm
from benchmarks.report import table
from benchmarks.stats import fmt, summary, verdict
from benchmarks.steps import VARIANTS, ratio, shared_session

TITLE = "strategy overheads"


def clip_cost(ctx, reps: int) -> dict:
    """Seconds of global clipping and of component-wise clipping on MiniLM's gradients of one
    real RTE batch, alternating; what `method=component_clip` adds to a step is the difference."""
    import torch

    from stabilize.strategies.component_clip import clip_per_tensor

    sz = ctx.sizes["steps"]
    with ctx.quiet():
        model, tok = load_minilm()
        dm = datamodule("rte", tok, train_size=sz["train_size"], batch_size=sz["batch_size"],
                        max_length=sz["max_length"], cache_dir=str(ctx.cache))
        dm.setup()
    b = next(iter(dm.train_dataloader()))
    out = model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"])
    torch.nn.functional.cross_entropy(out.logits, b["labels"]).backward()
    params = [q for q in model.parameters() if q.grad is not None]
    fns = {"global": lambda: torch.nn.utils.clip_grad_norm_(params, 1e9),  # huge max_norm: grads kept
           "component": lambda: clip_per_tensor([q.grad for q in params], 1e9)}
    secs = {k: [] for k in fns}
    for r in range(reps + 1):  # the first round warms up
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:
                secs[k].append(time.perf_counter() - t0)
    return {k: summary(v) for k, v in secs.items()} | {
        "extra": summary([c - g for c, g in zip(secs["component"], secs["global"])])}


def milliseconds(s: dict) -> dict:
    return {k: v * 1e3 if k != "n" else v for k, v in s.items()}


def run(ctx, report) -> None:
    session = shared_session(ctx)
    p = session["participants"]
    rows = []
    for name, ov, target in VARIANTS:
        if name not in p:
            continue
        r = ratio(session, name, "standard")
        err = p[name]["error"]
        rows.append([name, f"`{' '.join(ov)}`", fmt(r), fmt(summary(p[name]["times"])),
                     "—" if target is None else f"≤ {target:.2f}",
                     "error: " + err if err else ("" if target is None else verdict(r["median"], target, False)),
                     str(p[name]["same_batches"])])
    lines = [
        "Each variant's step time over `standard`'s on the same step (same batches), all taking turns in "
        f"one session with item 1 ({session['warmup']} warm-up step(s) dropped). `grad_monitor` computes its "
        "norms every 20 steps, so its median is the plain step and its max the monitored one. "
        "`progress_bar` is `standard` with Lightning's progress bar on (the trainer default; sweeps turn it off). "
        "'same batches' False means the variant drew from the random generator before the first batch "
        "(Mixout: `MixLinear` builds an `nn.Linear`, whose initialization draws), so its batches differ "
        "from standard's and its per-step ratio mixes in the difference in padded widths.", "",
        *table(["variant", "overrides", "ratio to standard", "step time (s)", "target", "", "same batches"], rows),
        "", f"standard step time (s): {fmt(summary(p['standard']['times']))}"]
    cost = clip_cost(ctx, ctx.sizes["steps"]["measured"] * 5)
    share = cost["extra"]["median"] / summary(p["standard"]["times"])["median"]
    ctx.store["clip_cost"] = cost | {"share_of_step": share}
    lines += [
        "", "Step-to-step noise hides a cost this small, so it is also measured alone: clipping MiniLM's "
        "gradients of one real RTE batch, alternating global clipping (`clip_grad_norm_`, what `standard` "
        "does) and component-wise clipping (`clip_per_tensor`, which replaces it):", "",
        *table(["figure", "value", "target", ""], [
            ["global clipping (ms)", fmt(milliseconds(cost["global"]), 2), "", ""],
            ["component-wise clipping (ms)", fmt(milliseconds(cost["component"]), 2), "", ""],
            ["component-wise − global, share of standard's median step", f"{share:.2%}", "≤ 3%",
             verdict(share, 0.03, False)]])]
    report.add("4. Strategy overheads per step vs standard", lines)
