"""Item 5: sweep overhead. (a) Process start to the first training step; (b) a multirun's runs
in one process: model load, data preparation (cold token cache, memory hit, disk hit) and
`train()` entry to the first step."""
import shutil
import time

import pytorch_lightning as pl

from benchmarks.configs import compose, prime_cache, threads_override, whole_overrides
from benchmarks.probes import StepOnlyFineTuner
from benchmarks.processes import launch
from benchmarks.report import table
from benchmarks.sizes import FULL
from benchmarks.stats import fmt, paired_ratios, summary, verdict

TITLE = "sweep overhead"
NAN = float("nan")

# (b): the token cache each run finds, as the first, second and a later process's run of a multirun
RUNS = [("first run (empty cache: tokenize, write)", "empty"), ("second run (memory cache hit)", "memory"),
        ("third run (disk cache hit, as in a new process)", "disk")]


class FirstStep(pl.Callback):
    """Seconds from its creation to the first training step."""

    def __init__(self):
        self.t0, self.seconds = time.perf_counter(), None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.t0


def set_cache(state: str, folder) -> None:
    """The token cache as a run of `RUNS` finds it: empty, in memory, or only on disk."""
    from stabilize.data import TOKEN_CACHE

    if state != "memory":
        TOKEN_CACHE.clear()
    if state == "empty":
        shutil.rmtree(folder, ignore_errors=True)


def start_up(cfg) -> dict:
    """Seconds of a run's model load (`models.load`) and data preparation (the data module's
    `setup`: read, split, tokenize or cache lookup), called as `stabilize.train.set_up` calls them."""
    from stabilize import models, tasks
    from stabilize.data import TaskDataModule

    spec = tasks.from_config(cfg.task)
    t0 = time.perf_counter()
    _, tok = models.load(cfg.model, spec.num_labels)
    t1 = time.perf_counter()
    TaskDataModule.from_config(cfg, spec, tok).setup()
    return {"model": t1 - t0, "data": time.perf_counter() - t1}


def multirun(ctx) -> list[dict]:
    """(b): each run's start-up pieces timed, then the run itself to its first step, the token
    cache set to the run's state before each."""
    from stabilize.train import train

    sz, cache, timings = ctx.sizes["steps"], ctx.work / "sweep-cache", []
    for i, (label, state) in enumerate(RUNS):
        cfg = compose(["task=rte", "model=minilm", f"seed={i}", "optim.max_steps=1", "eval.times=1", "trainer=cpu",
                       "trainer.enable_progress_bar=false", "logger=none", f"optim.batch_size={sz['batch_size']}",
                       f"data.max_length={FULL['steps']['max_length']}", *threads_override(ctx)],
                      ctx.work / "sweep" / f"run{i}", cache)
        with ctx.quiet():
            set_cache(state, cache)
            try:
                pieces = start_up(cfg)
            except Exception as e:  # in the table, as train() records its own errors
                pieces = {"model": NAN, "data": NAN, "error": f"{type(e).__name__}: {e}"}
            set_cache(state, cache)
            first = FirstStep()
            record = train(cfg, callbacks=[first], module_class=StepOnlyFineTuner)
        timings.append({"label": label, "first_step": NAN if first.seconds is None else first.seconds,
                        "error": record.get("error"), **pieces})
    return timings


def run(ctx, report) -> None:
    # (a) process start to first step: item 2's runs, or short runs of our own
    if "whole" in ctx.store:
        runs, src = ctx.store["whole"], "item 2's runs"
    else:
        w = ctx.sizes["whole"]
        with ctx.quiet():
            prime_cache(ctx, "rte", w["max_length"])
        runs, src = {"stabilize": [], "bare": []}, "short runs (1 step)"
        for r in range(w["repeats"]):
            for kind in (("stabilize", "bare") if r % 2 == 0 else ("bare", "stabilize")):
                ov = whole_overrides(ctx, r, max_steps=1, eval_times=1)
                runs[kind].append(launch(ctx, kind, ov, ctx.work / "first-step" / f"{kind}-r{r}"))
    fs = {k: [r.get("to_first_step") for r in runs[k] if r.get("to_first_step")] for k in ("stabilize", "bare")}
    ratio = summary(paired_ratios(fs["stabilize"], fs["bare"]))

    timings = multirun(ctx)
    rows = [[t["label"], f"{t['data']:.3f}", f"{t['model']:.3f}", f"{t['first_step']:.3f}", t["error"] or ""]
            for t in timings]
    second = timings[1]["data"]
    lines = [
        f"(a) Process start to the first training step ({src}; stabilize: `stabilize-train`, bare: "
        "`benchmarks.bare`, both import torch, transformers and Lightning, the bare one through stabilize.data):", "",
        *table(["figure", "value"], [
            ["stabilize, s", fmt(summary(fs["stabilize"]), 2)], ["bare, s", fmt(summary(fs["bare"]), 2)],
            ["ratio stabilize/bare", fmt(ratio)]]), "",
        "(b) Three runs of a multirun in one process (`train(cfg)` called in turn as Hydra's basic launcher "
        "does; RTE, MiniLM, max length 128, 1 step, evaluation stubbed). Data preparation is the data module's "
        "`setup` (read, split, tokenize or cache lookup) and model load is `models.load`, both called before "
        "each run as `set_up` calls them, the token cache then set back to the state the run finds; the last "
        "column is `train()` entry to the first training step.", "",
        *table(["run", "data preparation (s)", "model load (s)", "to first step (s)", "error"], rows), "",
        f"Target: the second run's data preparation < 1 s: {second:.3f} s, {verdict(second, 1.0, False)}."]
    report.add("5. Sweep overhead", lines)
