"""One run's `results.json`: versions, atomic writing, and the relaunch check."""
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = "results.json"
WEIGHT_CHANGE = "weight_change.json"  # per-layer weight change, next to results.json
FINISHED = ("ok", "failed")


def versions() -> dict:
    out = {}
    for pkg in ("torch", "transformers", "pytorch-lightning", "torchmetrics", "hydra-core", "stabilize"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def write_json_atomic(path: Path, obj) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; a results file is not
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def finished_run(run_dir: Path, config: dict) -> dict | None:
    """The earlier result in `run_dir` if it finished (ok or failed) with this same config."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        return None
    try:
        earlier = read(path)
    except (OSError, ValueError):
        return None
    if earlier.get("status") in FINISHED and _identity(earlier.get("config")) == _identity(config):
        return earlier
    return None


# Keys that change how a run is executed, not what it computes (also left out of run folder
# names in conf/train.yaml): a sweep relaunched with another n_jobs still skips finished runs.
RUNTIME_KEYS = (("threads",), ("trainer", "enable_progress_bar"), ("data", "cache_dir"), ("data", "eval_batch_size"))


def _identity(config):
    if not isinstance(config, dict):
        return config
    config = json.loads(json.dumps(config))
    for key in RUNTIME_KEYS:
        node = config
        for part in key[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key[-1], None)
    return config
