"""Whole runs as processes of their own: `stabilize-train` or `benchmarks.bare`, timed from
process start, with the child's peak resident memory."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import bare
from benchmarks.configs import compose
from stabilize import results

ROOT = Path(__file__).resolve().parent.parent


def run_process(cmd, log_path: Path) -> dict:
    """Run `cmd`; wall time from just before the start, exit code, peak RSS of that child (MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOKENIZERS_PARALLELISM": "false"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    hwm = 0.0
    with open(log_path, "w") as log:
        t0 = time.time()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        while True:
            # VmHWM: the process's own peak RSS since exec (ru_maxrss of a child starts from the
            # parent's RSS at fork, so it is not used)
            hwm = max(hwm, vm_hwm(p.pid))
            pid, status = os.waitpid(p.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        t1 = time.time()
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped above: Popen must not wait again
    return {"start": t0, "end": t1, "rc": p.returncode, "peak_rss_mib": hwm, "log": str(log_path)}


def vm_hwm(pid: int) -> float:
    """Peak resident set size (MiB) of a running process, 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def launch(ctx, kind: str, overrides: list[str], run_dir: Path) -> dict:
    """One run in its own process: `stabilize-train` (kind 'stabilize') or `benchmarks.bare`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if kind == "stabilize":
        cmd = [sys.executable, "-m", "stabilize.train", *overrides, f"hydra.run.dir={run_dir}",
               f"data.cache_dir={ctx.cache}", "+callbacks.bench_probe._target_=benchmarks.probes.RunProbe",
               f"+callbacks.bench_probe.path={run_dir / 'bench_probe.json'}"]
    else:
        spath = run_dir.parent / f"{run_dir.name}.settings.json"
        results.write_json_atomic(spath, bare.settings(compose(overrides, run_dir, ctx.cache)))
        cmd = [sys.executable, "-m", "benchmarks.bare", "--settings", str(spath), "--out", str(run_dir)]
    cache_before = sorted(p.name for p in ctx.cache.glob("*.pt"))
    proc = run_process(cmd, run_dir.parent / f"{run_dir.name}.log")
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
