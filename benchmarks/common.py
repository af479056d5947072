"""Shared pieces of the benchmarks: composed configs, statistics, the report, the step turnstile."""
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- configs

def compose(overrides, run_dir, cache_dir):
    """`conf/train.yaml` composed with `overrides`, run folder and token cache set (as tests do)."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import open_dict

    from stabilize.train import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.data.cache_dir = str(cache_dir)
    return cfg


def add_callback(cfg, name: str, target: str, **kwargs):
    """Add one Lightning callback node to a composed config (instantiated by train())."""
    from omegaconf import open_dict

    with open_dict(cfg):
        if cfg.get("callbacks") is None:
            cfg.callbacks = {}
        cfg.callbacks[name] = {"_target_": target, **kwargs}
    return cfg


# ---------------------------------------------------------------- statistics

def summary(xs) -> dict:
    xs = [float(x) for x in xs]
    if not xs:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s: dict, digits: int = 3) -> str:
    if not s["n"]:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])} (min {f.format(s['min'])}, max {f.format(s['max'])}, n {s['n']})"


def paired_ratios(num, den) -> list[float]:
    return [a / b for a, b in zip(num, den) if b > 0]


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    if value != value:  # nan
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "meets" if ok else "misses"


# ---------------------------------------------------------------- batches

def digest(batch: dict) -> str | None:
    """A short hash of a batch's token ids (None for a batch on an accelerator: no host sync)."""
    ids = batch["input_ids"]
    if ids.device.type != "cpu":
        return None
    return hashlib.blake2b(ids.contiguous().numpy().tobytes(), digest_size=8).hexdigest()


def combine(digests) -> str | None:
    """One hash for a run's batches; None when some were not hashed (on an accelerator)."""
    if any(d is None for d in digests):
        return None
    return hashlib.blake2b("".join(digests).encode(), digest_size=8).hexdigest()


# ---------------------------------------------------------------- probes in runs

try:
    import pytorch_lightning as _pl

    class RunProbe(_pl.Callback):
        """Injected into a stabilize run: wall time of the first training step, batch hashes."""

        def __init__(self, path: str):
            self.path, self.first_step, self.digests = Path(path), None, []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.first_step is None:
                self.first_step = time.time()
            self.digests.append(digest(batch))

        def on_train_end(self, trainer, pl_module):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"first_step": self.first_step, "steps": len(self.digests),
                                             "batches": combine(self.digests)}))

    class GateCallback(_pl.Callback):
        """Ends a step of a per-step session (benchmarks.session) at every step start."""

        def __init__(self, clock):
            self.clock = clock

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.clock.gate(batch)
except ImportError:  # pragma: no cover
    pass

_REGISTRY: dict[str, object] = {}


def registered(key: str):
    """`_target_` for an object built in this process (a callback holding a clock)."""
    return _REGISTRY[key]


# ---------------------------------------------------------------- subprocesses

def run_process(cmd, log_path: Path, env=None, timeout=None) -> dict:
    """Run `cmd`; wall time from just before the start, exit code, peak RSS of that child (MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    hwm = 0.0
    with open(log_path, "w") as log:
        t0 = time.time()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = None if timeout is None else t0 + timeout
        while True:
            # VmHWM: the process's own peak RSS since exec (ru_maxrss of a child starts from the
            # parent's RSS at fork, so it is not used)
            hwm = max(hwm, _vm_hwm(p.pid))
            pid, status = os.waitpid(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.time() > deadline:
                p.kill()
                deadline = None
            time.sleep(0.02)
        t1 = time.time()
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"start": t0, "end": t1, "rc": p.returncode, "peak_rss_mib": hwm, "log": str(log_path)}


def _vm_hwm(pid: int) -> float:
    """Peak resident set size (MiB) of a running process, 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tree_bytes(path: Path) -> dict:
    """Files under `path` and their sizes; model-weight-like files listed apart."""
    files = {str(p.relative_to(path)): p.stat().st_size for p in sorted(Path(path).rglob("*")) if p.is_file()}
    weights = [f for f in files if f.endswith((".pt", ".bin", ".safetensors", ".ckpt", ".pth"))]
    return {"total": sum(files.values()), "files": files, "weights": weights}


# ---------------------------------------------------------------- the report

def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        ram = "?"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"platform": platform.platform(), "cpu": cpu, "cpu count": os.cpu_count(), "usable cores": cores,
            "torch threads": torch.get_num_threads(), "memory": ram, "gpu": gpu, "python": sys.version.split()[0]}


def versions() -> dict:
    out = {}
    for pkg in ("torch", "transformers", "pytorch-lightning", "tokenizers", "torchmetrics", "hydra-core", "stabilize"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        out["git"] = commit + (" (uncommitted changes)" if dirty.strip() else "")
    except OSError:
        pass
    return out


def loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


class Report:
    """The Markdown results file, rewritten after every item so a crash keeps what was measured."""

    def __init__(self, path: Path, command: str, mode: str, sizes: dict):
        self.path, self.sections = Path(path), []
        self.head = [
            "# stabilize performance benchmarks", "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"- command: `{command}`",
            f"- mode: {mode}; sizes: " + ", ".join(f"{k}={v}" for k, v in sizes.items()),
            "- machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()),
            "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
            f"- load average (1/5/15 min) at start: {loadavg()}",
            "",
            "Every figure is a ratio measured in this one invocation against its baseline measured alongside: "
            "median (min, max, n) over steps or repeats. Per-step figures come from participant processes "
            "taking turns step by step on identical batches (`benchmarks/session.py`), so load from other "
            "processes falls on both sides alike. Whole runs are separate processes run one after the other, "
            "order rotated per repeat. A `--quick` run keeps the code paths but not the sizes: its figures "
            "check that the benchmark works, they are not the results.", ""]

    def add(self, title: str, lines: list[str]) -> None:
        self.sections.append([f"## {title}", "", *lines, "", f"_load average after this item: {loadavg()}_", ""])
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.head + [line for s in self.sections for line in s]) + "\n"
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.path)


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out
