"""The Markdown results file: its header (machine, versions, load) and one section per item."""
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from stabilize import results

ROOT = Path(__file__).resolve().parent.parent


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
    """A run's package versions (`stabilize.results`), the tokenizers package and the git commit."""
    out = results.versions()
    try:
        out["tokenizers"] = version("tokenizers")
    except PackageNotFoundError:
        out["tokenizers"] = None
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


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


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

    def close(self, seconds: float) -> None:
        self.sections.append([f"_total wall time: {seconds:.0f} s_", ""])
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.head + [line for s in self.sections for line in s]) + "\n"
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.path)
