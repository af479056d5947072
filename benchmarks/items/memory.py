"""Item 6: peak resident memory and bytes written per run, and over a long multirun."""
import sys
from pathlib import Path

from benchmarks.configs import load_minilm, whole_overrides
from benchmarks.items.whole_run import whole_runs
from benchmarks.processes import launch, run_process
from benchmarks.report import table
from benchmarks.stats import fmt, paired_ratios, summary
from stabilize import results

TITLE = "memory and disk"


def tree_bytes(path: Path) -> dict:
    """Files under `path` and their sizes; model-weight-like files listed apart."""
    files = {str(p.relative_to(path)): p.stat().st_size for p in sorted(Path(path).rglob("*")) if p.is_file()}
    weights = [f for f in files if f.endswith((".pt", ".bin", ".safetensors", ".ckpt", ".pth"))]
    return {"total": sum(files.values()), "files": files, "weights": weights}


def mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def multirun_peak(ctx, n: int) -> dict:
    """Peak RSS (MiB) of one `stabilize-train -m` process, Hydra's basic launcher running seeds
    0..n-1 one after the other at item 2's sizes cut to `multirun_steps` steps; and the statuses."""
    m = ctx.sizes["memory"]
    overrides = [o for o in whole_overrides(ctx, 0, max_steps=m["multirun_steps"], eval_times=2)
                 if not o.startswith("seed=")]
    folder = ctx.work / "memory" / f"multirun-{n}"
    cmd = [sys.executable, "-m", "stabilize.train", "-m", *overrides, f"seed={','.join(map(str, range(n)))}",
           f"hydra.sweep.dir={folder}", f"data.cache_dir={ctx.cache}"]
    out = run_process(cmd, folder.parent / f"multirun-{n}.log")
    out["statuses"] = [results.load(p)["status"] for p in sorted(folder.glob(f"*/{results.RESULTS}"))]
    return out


def multirun_lines(ctx) -> list[str]:
    """A multirun's peak against a single run's: each run must free the one before it."""
    n = ctx.sizes["memory"]["multirun"]
    one, many = multirun_peak(ctx, 1), multirun_peak(ctx, n)
    ratio = many["peak_rss_mib"] / one["peak_rss_mib"]
    return ["", f"A long multirun: one `stabilize-train -m` process (basic launcher) running {n} runs one after "
            f"the other ({ctx.sizes['memory']['multirun_steps']} steps, 2 evaluations each, item 2's other "
            f"sizes) against one running a single run: peak RSS {many['peak_rss_mib']:.0f} MiB against "
            f"{one['peak_rss_mib']:.0f} MiB, ratio {ratio:.3f} (target ≤ 1.10: a run frees the one before it), "
            f"{(many['peak_rss_mib'] - one['peak_rss_mib']) / (n - 1):.0f} MiB more per extra run. "
            f"Statuses: {', '.join(one['statuses'] + many['statuses']) or 'none (see the logs)'}."]


def run(ctx, report) -> None:
    from types import SimpleNamespace

    from stabilize.strategies import Mixout

    runs = whole_runs(ctx)
    rss = {k: [r["peak_rss_mib"] for r in v] for k, v in runs.items()}
    rows = [[k, fmt(summary(v), 0), fmt(summary(paired_ratios(v, rss["bare"])), 3)] for k, v in rss.items()]
    with ctx.quiet():
        model, _ = load_minilm()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    Mixout(0.1).setup(SimpleNamespace(model=model))
    extra = sum(b.numel() * b.element_size() for n, b in model.named_buffers() if n.endswith("target"))
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
        t = tree_bytes(Path(r["run_dir"]))
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
    if ctx.sizes["memory"]["multirun"]:
        lines += multirun_lines(ctx)
    report.add("6. Memory and disk", lines)
