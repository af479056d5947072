"""Item 2: whole runs, stabilize vs the bare loop doing what the authors' code does, plus
stabilize with `data.group_by_length=true`; timed, and their scores compared.

(a) sequential: each run its own process, from process start to its results.json (these runs
feed items 5 and 6); (b) in turns: the runs as session participants, step by step."""
from benchmarks import bare
from benchmarks.configs import compose, prime_cache, whole_overrides
from benchmarks.processes import launch
from benchmarks.report import table
from benchmarks.session import run_session
from benchmarks.stats import fmt, paired_ratios, summary, verdict

TITLE = "whole runs"

# (b): whole runs taking turns step by step (evaluations included), so drift in the machine's
# speed over the minutes of a run falls on every participant alike.
TURNS = [("bare", []), ("stabilize, eval batch 128", ["data.eval_batch_size=128"]), ("stabilize", []),
         ("stabilize, group_by_length", ["data.group_by_length=true"])]


def whole_runs(ctx, gpu=False) -> dict:
    """(a): seeds 0..repeats-1 of stabilize, bare and stabilize grouped, order rotated (kept in the store)."""
    key = "whole-gpu" if gpu else "whole"
    if key in ctx.store:
        return ctx.store[key]
    w = ctx.sizes["whole"]
    with ctx.quiet():
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


def whole_turns(ctx, gpu=False) -> list[dict]:
    """(b): one session per seed, the bare loop and stabilize variants, whole runs in turns."""
    w = ctx.sizes["whole"]
    with ctx.quiet():
        prime_cache(ctx, "rte", w["max_length"])
    out = []
    for seed in range(ctx.sizes["turns"]):
        folder = ctx.work / ("turns-gpu" if gpu else "turns") / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        specs = {}
        for name, extra in TURNS:
            cfg = compose(whole_overrides(ctx, seed, gpu) + extra, folder / name.replace(" ", "_"), ctx.cache)
            log = str(folder / f"{name.replace(' ', '_')}.log")
            if name == "bare":
                specs[name] = {"kind": "bare", "settings": bare.settings(cfg), "cuda": gpu, "whole": True, "log": log}
            else:
                specs[name] = {"kind": "stabilize", "cfg": cfg, "cuda": gpu, "whole": True, "log": log}
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


def measure(ctx, report, gpu=False) -> dict:
    """Both parts on the CPU or the GPU, their section added; the speed-up of stabilize over bare."""
    title = "2. Whole run: stabilize vs the authors' loop" + (" (GPU)" if gpu else "")
    turns = whole_turns(ctx, gpu) if ctx.sizes["turns"] else []
    if turns:
        ctx.store["turns-gpu" if gpu else "turns"] = turns
    if not ctx.sizes["whole"]["repeats"]:
        report.add(title, ["(a) Sequential runs: not run (`--repeats 0`).", "", *turns_lines(turns)])
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
    written = sorted({f for k in ("stabilize", "stabilize+grouped") for r in runs[k] for f in r["cache_written"]})
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
        + str(written or "none"),
        *([""] + errors if errors else []),
        *(["", *turns_lines(turns)] if turns else [])]
    report.add(title, lines)
    return speed


def run(ctx, report) -> None:
    measure(ctx, report)
