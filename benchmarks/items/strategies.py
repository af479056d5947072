"""Item 4: strategy overheads per step vs `standard`, the one-time work of some methods, and the cost of
component-wise clipping alone."""
import math
import time

from benchmarks.configs import datamodule, load_minilm
from benchmarks.report import table
from benchmarks.stats import fmt, summary, verdict
from benchmarks.steps import ONE_TIME, VARIANTS, cpu_sessions, ratio

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


def default_run(ctx) -> tuple[int, int]:
    """(epochs, training steps) of a run at the session's data sizes with the default recipe."""
    from omegaconf import OmegaConf

    from stabilize.train import CONF_DIR

    sz = ctx.sizes["steps"]
    epochs = OmegaConf.load(f"{CONF_DIR}/train.yaml").optim.max_epochs
    return epochs, epochs * math.ceil(sz["train_size"] / sz["batch_size"])


def variant_rows(ctx, sessions) -> list[list]:
    """One row per variant measured: its ratio to the `standard` of its own session."""
    rows, store = [], {}
    for k, session in enumerate(sessions, 1):
        p = session["participants"]
        for name, ov, target in VARIANTS:
            if name not in p:
                continue
            r, err = ratio(session, name, "standard"), p[name]["error"]
            store[name] = {"session": k, "ratio": r, "times": p[name]["times"],
                           "standard_times": p["standard"]["times"], "step": summary(p[name]["times"]),
                           "same_batches": p[name]["same_batches"], "error": err,
                           "hooks": p[name]["hooks"], "peak_rss_mib": p[name]["peak_rss_mib"]}
            rows.append([name, f"`{' '.join(ov)}`", k, fmt(r), fmt(summary(p[name]["times"])),
                         "—" if target is None else f"≤ {target:.2f}",
                         "error: " + err if err else ("" if target is None else verdict(r["median"], target, False)),
                         str(p[name]["same_batches"]), f"{p[name]['peak_rss_mib'] or 0:.0f}"])
    ctx.store["strategies"] = store
    return rows


def one_time_rows(ctx, sessions) -> list[list]:
    """The one-time work of ONE_TIME's methods: its hook's seconds over standard's same hook in
    the same session, in standard's median steps and as a share of a default run's steps."""
    rows, store, (_, n_run) = [], {}, default_run(ctx)
    for k, session in enumerate(sessions, 1):
        p = session["participants"]
        step = summary(p["standard"]["times"])["median"]
        for name, (hook, what) in ONE_TIME.items():
            if name not in p or not p[name]["hooks"] or not p["standard"]["hooks"]:
                continue
            own, ref = p[name]["hooks"].get(hook, float("nan")), p["standard"]["hooks"].get(hook, float("nan"))
            steps = (own - ref) / step
            store[name] = {"session": k, "hook": hook, "seconds": own, "standard_seconds": ref,
                           "standard_steps": steps, "share_of_default_run": steps / n_run}
            rows.append([name, what, f"`{hook}`", f"{own:.2f}", f"{ref:.3f}", f"{steps:.1f}",
                         f"{steps / n_run:.1%}"])
    ctx.store["one_time"] = store | {"default_run_steps": n_run}
    return rows


def run(ctx, report) -> None:
    sessions = cpu_sessions(ctx)
    sz = ctx.sizes["steps"]
    rows, (epochs, n_run) = variant_rows(ctx, sessions), default_run(ctx)
    lines = [
        "Each variant's step time over `standard`'s on the same step, taking turns in a session with a "
        f"`standard` of its own: {len(sessions)} session(s) of at most {sz['group']} variant(s) (every "
        "participant holds a model; session 1 is item 1's when it runs). "
        f"{sessions[0]['warmup']} warm-up step(s) dropped. `grad_monitor` computes its norms every 20 steps, "
        "so its median is the plain step and its max the monitored one. `progress_bar` is `standard` with "
        "Lightning's progress bar on (the trainer default; sweeps turn it off). The methods after the seeds "
        "run at the session's batch size, length and single evaluation: `mosbach` is then `standard` with "
        "eps 1e-6 and weight decay 0.01 (its cost is its length: 20 epochs at batch 16); `swa` averages "
        "from the first step (`start=0`; by default only the last quarter of a run). One-time work before "
        "the first step (NoisyTune's noise, ChildTuning-D's Fisher pass, LP-FT's probe) is not in the "
        "steps: it is in the table after. 'same batches' False means the variant drew from the random "
        "generator before the first batch (NoisyTune's noise, LoRA's initialization, the passes over the "
        "training data of ChildTuning-D and LP-FT), so the shuffle differs from standard's; at the full "
        "sizes 98% of RTE batches are padded to 128 either way, so the widths hardly differ. Peak RSS: the "
        "participant process's VmHWM.", "",
        *table(["variant", "overrides", "session", "ratio to standard", "step time (s)", "target", "",
                "same batches", "peak RSS (MiB)"], rows), ""]
    for k, session in enumerate(sessions, 1):
        p = session["participants"]["standard"]
        lines.append(f"- session {k}, standard step time (s): {fmt(summary(p['times']))}, "
                     f"peak RSS {p['peak_rss_mib'] or 0:.0f} MiB")
    once = one_time_rows(ctx, sessions)
    if once:
        lines += [
            "", "One-time work, timed once (n 1) in the participant as the FineTuner hook that runs it "
            "(`benchmarks.probes.StepOnlyFineTuner`: `setup` is the constructor, which runs every "
            "strategy's `setup`; `on_train_start` the strategies' work before the first batch), the same "
            "hook of the session's `standard` subtracted, divided by that standard's median step; the share "
            f"is of a default run's {n_run} training steps at these sizes ({epochs} epochs; evaluations and start-up "
            "not counted, so the share of a whole run is a little smaller):", "",
            *table(["method", "work", "hook", "seconds", "standard's hook (s)", "extra, in standard steps",
                    "share of a default run's steps"], once)]
    if "component_clip" not in ctx.store["strategies"]:
        report.add("4. Strategy overheads per step vs standard", lines)
        return
    p = sessions[ctx.store["strategies"]["component_clip"]["session"] - 1]["participants"]
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
