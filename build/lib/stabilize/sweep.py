"""Sweep-level pieces: the end-of-sweep summary, the HPO objective, and threads per run.

- `SweepSummary` (registered under `hydra.callbacks` in `conf/train.yaml`): when a
  multirun ends, counts the `results.json` files of the sweep folder by status, prints one
  block, and exits with status 1 when a run of this launch errored.
- `default_threads`: the `${stabilize.threads:}` resolver behind `threads` in
  `conf/train.yaml`: cores // n_jobs under the joblib launcher, `cpus_per_task` under
  submitit, otherwise null (torch's own choice).
- `launch_record`: the `${stabilize.launch_record:}` resolver behind `hydra.output_subdir`:
  Hydra writes a run's `.hydra/` before the run starts, so without it a relaunch would
  replace the launch record of every finished run it skips with its own.

Kept free of torch and pandas: Hydra imports this module in the launching process.
"""
import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from stabilize import results

def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int | None:
    """Torch threads per run for the launcher in use, so parallel runs do not oversubscribe."""
    try:
        launcher = HydraConfig.get().launcher
    except ValueError:  # no Hydra run (a config composed in a test or a notebook)
        return None
    target = str(launcher.get("_target_", ""))
    cores = available_cores()
    if "joblib" in target.lower():
        n_jobs = launcher.get("n_jobs") or -1
        if n_jobs < 0:  # joblib's convention: -1 all CPUs, -2 all but one, ...
            n_jobs = max(1, cores + 1 + n_jobs)
        return max(1, cores // n_jobs)
    if "submitit" in target.lower():
        return launcher.get("cpus_per_task") or None
    return None


def launch_record(*, _root_: DictConfig) -> str | None:
    """Where Hydra writes a run's launch record: `.hydra`, or nowhere (None) for a run that
    `train` will skip because it finished earlier with this config (the same test as `train`'s)."""
    try:
        run_dir = OmegaConf.select(HydraConfig.get(), "runtime.output_dir")
    except ValueError:  # no Hydra run (a config composed in a test or a notebook)
        run_dir = None
    if run_dir is None:
        return ".hydra"
    try:
        config = results.resolved_config(OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"]))
    except Exception:  # a config that does not resolve: `train` reports it, naming the key
        return ".hydra"
    return None if results.finished_run(run_dir, config) else ".hydra"


def scan(sweep_dir: Path) -> dict[Path, dict | None]:
    """Every `results.json` under `sweep_dir`: its record, or None when it cannot be read."""
    found = {}
    for path in sorted(Path(sweep_dir).rglob(results.RESULTS)):
        try:
            found[path] = results.load(path)
        except (OSError, ValueError):
            found[path] = None
    return found


def _stamp(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class SweepSummary(Callback):
    """Prints a one-block summary at the end of a multirun; exit status 1 if a run errored.

    A run belongs to "this launch" when its `results.json` was (re)written since the sweep
    started (compared by inode and mtime, so clocks of other machines do not matter); runs
    skipped because they finished earlier keep their file untouched.
    """

    def __init__(self, exit_on_error: bool = True, max_listed: int = 10):
        self.exit_on_error = exit_on_error
        self.max_listed = max_listed
        self._before: dict[Path, Any] = {}

    def _sweep_dir(self, config: DictConfig) -> Path:
        return Path(str(OmegaConf.select(config, "hydra.sweep.dir")))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = self._sweep_dir(config)
        self._before = {p: _stamp(p) for p in sweep_dir.rglob(results.RESULTS)} if sweep_dir.is_dir() else {}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = self._sweep_dir(config)
        found = scan(sweep_dir) if sweep_dir.is_dir() else {}
        now = {p: r for p, r in found.items() if self._before.get(p) != _stamp(p)}
        errored = [(p, r) for p, r in now.items() if r is not None and r["status"] == results.ERRORED]
        lines = [f"[stabilize] sweep {sweep_dir}",
                 f"[stabilize]   this launch:  {_counts(now.values())}",
                 f"[stabilize]   whole folder: {_counts(found.values())}"]
        diverged = sum(1 for r in now.values() if r and r["diverged"])
        if diverged:
            lines.append(f"[stabilize]   {diverged} run(s) of this launch diverged (status failed)")
        for p, r in errored[: self.max_listed]:
            lines.append(f"[stabilize]   error in {p.parent}: {r.get('error')}")
        if len(errored) > self.max_listed:
            lines.append(f"[stabilize]   ... and {len(errored) - self.max_listed} more errored runs")
        unreadable = [p for p, r in found.items() if r is None]
        for p in unreadable[: self.max_listed]:
            lines.append(f"[stabilize]   unreadable: {p}")
        if errored:
            lines.append("[stabilize]   see error.txt in each run folder; launching the same command again "
                         "re-runs only the errored and missing runs")
        lines.append(f"[stabilize]   report: stabilize-report {sweep_dir}")
        if errored and len(errored) == len(now):  # the last line: nothing of this launch finished
            p, r = errored[0]
            lines.append(f"[stabilize]   every run of this launch errored ({len(errored)}): {r.get('error')}, "
                         f"see {p.parent / results.ERROR}")
        print("\n".join(lines), flush=True)
        if errored and self.exit_on_error:
            sys.stdout.flush()
            sys.exit(1)  # SystemExit passes through Hydra's callback guard: the command fails


def _counts(records) -> str:
    records = list(records)
    counts = {s: 0 for s in results.STATUSES}
    other = 0
    for r in records:
        status = r.get("status") if r is not None else None
        if status in counts:
            counts[status] += 1
        else:
            other += 1
    parts = [f"{counts[s]} {s}" for s in results.STATUSES if counts[s] or s != results.INTERRUPTED]
    if other:
        parts.append(f"{other} unreadable")
    return f"{len(records)} runs: " + ", ".join(parts)

