"""stabilize vs a bare PyTorch loop: per-step overhead, whole runs, padding, strategies, sweeps, memory.

    python -m benchmarks.run                       # all items -> benchmarks/results/<date>.md (1.5 h on 2 quiet cores before
                                                   # item 4 had the methods after the seeds: ~0.5 h more, estimated)
    python -m benchmarks.run --quick               # same code paths, small sizes -> benchmarks/RESULTS-quick.md
    python -m benchmarks.run --only 1 4            # some items
    python -m benchmarks.run --only 3 --grouping-seeds 5   # + 5 MRPC seeds with and without grouping

Items (the issue's numbering), one module each in `benchmarks/items/`:
 1. per-step overhead: stabilize (`method=standard`, Lightning) vs `benchmarks.bare` on the same batches
    (`per_step`)
 2. whole run, process start to results.json: stabilize vs the bare loop doing what the authors' code
    does; plus stabilize with `data.group_by_length=true`; scores compared (`whole_run`)
 3. padding: tokens per epoch and examples/s for padding to 128, dynamic padding, grouping (RTE, MRPC)
    (`padding`)
 4. strategy overheads per step vs standard (component-wise clipping, Mixout, LLRD, prior weight decay,
    gradient monitor, the progress bar, the methods after the seeds), in sessions of a few variants
    each with its own `standard`, and the one-time work of NoisyTune, ChildTuning-D and LP-FT
    (`strategies`; `--variants` picks some)
 5. sweep overhead: process start to first step; data preparation and model load of a multirun's second
    run (`sweep`)
 6. peak resident memory and bytes written per run, and a long multirun's peak over a single run's (`memory`)
 7. the accelerator path (trainer=gpu, bf16) when a GPU is there, skipped cleanly otherwise (`accelerator`)

Per-step items run each participant in its own process (forked from a preloaded fork server) and
let them take turns step by step (`benchmarks.session`): each timed interval has the machine to
itself as far as this benchmark goes, and load from other processes falls on all participants
alike. In those items evaluation is stubbed out (untimed anyway); item 2 times everything.
"""
import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.sizes import sizes_for
from benchmarks.context import Context, silence_libraries
from benchmarks.items import accelerator, memory, padding, per_step, strategies, sweep, whole_run
from benchmarks.report import Report
from benchmarks.steps import variant_names
from stabilize import results

HERE = Path(__file__).resolve().parent

# In the order they run: items 1 and 4 share one per-step session; 2's runs feed 5 and 6.
ITEMS = {1: per_step, 4: strategies, 2: whole_run, 3: padding, 5: sweep, 6: memory, 7: accelerator}


def parse_args(argv):
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
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="per-step items: measured steps per participant (default 20; 2 with --quick)")
    p.add_argument("--variants", nargs="*", default=None, metavar="NAME",
                   help="item 4: only these variants (names as in benchmarks/steps.py VARIANTS; default all)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in every run and participant (default: torch's choice; 1 with --quick)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (runs, logs) instead of deleting it")
    return p.parse_args(argv)


def selected(args) -> list[int]:
    """The items to run, in numeric order (--grouping-seeds brings item 3)."""
    items = sorted({int(x) for v in args.only or [] for x in str(v).split(",") if x.strip()})
    bad = [i for i in items if i not in ITEMS]
    if bad:
        raise SystemExit(f"--only: no item(s) {bad}; items are 1..7")
    items = items or sorted(ITEMS)
    return sorted({*items, 3}) if args.grouping_seeds else items


def raw(ctx) -> dict:
    """Raw figures next to the Markdown file (whole runs without their configs)."""
    out = {"per_step": ctx.store.get("per_step"), "session": ctx.store.get("session"),
           "clip_cost": ctx.store.get("clip_cost"), "strategies": ctx.store.get("strategies"),
           "one_time": ctx.store.get("one_time")}
    for key in ("whole", "whole-gpu"):
        if key in ctx.store:
            out[key] = {k: [{f: r.get(f) for f in ("seconds", "to_first_step", "peak_rss_mib", "rc", "batches")}
                            | {"scores": {s: r["results"].get(s) for s in ("status", "val", "test", "test_last")}}
                            for r in v] for k, v in ctx.store[key].items()}
    for key in ("turns", "turns-gpu"):
        if key in ctx.store:
            out[key] = [{n: {k: v for k, v in r.items() if k != "digests"} for n, r in t.items()} for t in ctx.store[key]]
    return out


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    items = selected(args)
    out = args.out or (HERE / "RESULTS-quick.md" if args.quick else HERE / "results" / f"{time.strftime('%Y-%m-%d-%H%M')}.md")
    variant_names(args.variants)  # unknown names refused before anything runs
    sizes = sizes_for(args.quick, args.threads, args.repeats, args.turns, args.steps)
    if sizes["threads"]:
        import torch

        torch.set_num_threads(sizes["threads"])  # this process's own steps (items 3, 4, 5)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = Path(tempfile.mkdtemp(prefix="stabilize-bench-"))
    ctx = Context(args, sizes, items, work)
    t0 = time.time()
    print(f"[bench] items {items}, {'quick' if args.quick else 'full'} sizes; work folder {work}; results -> {out}",
          flush=True)
    silence_libraries()
    report = Report(out, "python -m benchmarks.run" + "".join(f" {shlex.quote(a)}" for a in argv),
                    "quick" if args.quick else "full", sizes)
    try:
        for i, item in ITEMS.items():
            if i in items:
                print(f"[bench] item {i}: {item.TITLE} ({time.time() - t0:.0f}s so far)", flush=True)
                item.run(ctx, report)
    finally:
        report.close(time.time() - t0)
        results.write_json_atomic(out.with_suffix(".json"), raw(ctx))
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


if __name__ == "__main__":
    main()
