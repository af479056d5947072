"""One run's record, `results.json`: its file names, status values, keys, and the verdict.

The one definition of what a run writes; `train`, `sweep`, the report, the notebook and the
tests read the names from here. A run is *failed* when (checked in this order):

- it diverged: the training loss became NaN or infinite (`diverged` is true, no scores);
- classification: its test accuracy is no better than the majority class's test accuracy
  (study A, section 3; Mosbach et al. 2021, section 4 define a failed run this way; on MRPC
  the all-"paraphrase" predictor has F1 0.81, so the accuracy, not the F1, is compared), or
  it predicts one class for every row;
- regression: it predicts one value for every row (it carries no ranking).

Study B's failed run is separate: `below_threshold` is true when the test score is at most
the task's `fail_threshold` (Yang & Ma 2022, section 4), null when the task sets none.
Strategies add keys of their own (their `results` hook), e.g. `trainable_fraction` (LoRA, BitFit).
"""
import json
import os
import re
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import OmegaConf

# ---------------------------------------------------------------- files of a run folder
RESULTS = "results.json"
WEIGHT_CHANGE = "weight_change.json"  # per-layer weight change (analysis.py)
MODEL = "model.pt"                    # the best state, written with save_model=true
ERROR = "error.txt"                   # the traceback of a run whose status is "error"
CHECKPOINT = "resume.ckpt"            # while a long run trains: where a relaunch resumes (resume.py)
CHECKPOINT_CONFIG = "resume.json"     # the config that checkpoint belongs to

# ---------------------------------------------------------------- status values
OK, FAILED, ERRORED = "ok", "failed", "error"
INTERRUPTED = "interrupted"  # stopped by a signal after writing its checkpoint (preempt.py): not a result
STATUSES = (OK, FAILED, ERRORED, INTERRUPTED)
FINISHED = (OK, FAILED)  # a finished run is skipped when its sweep is launched again; the others run again

# ---------------------------------------------------------------- the record
KEYS = {
    "status": "ok | failed | error | interrupted (by a stop signal, checkpointed: a relaunch resumes it)",
    "error": "exception type and message when status is error, else null",
    "reason": "why a failed run failed, e.g. 'test accuracy 0.49 <= majority 0.53', or what stopped an "
              "interrupted one, e.g. 'stopped by SIGTERM at step 17'; else null",
    "task": "task name", "model": "model name", "method": "method name",
    "seed": "training seed used (drawn and recorded when the config says null)",
    "train_size": "training examples (an int, or 'full')",
    "metric": "the task's metric, e.g. accuracy, f1, spearman, mcc",
    "val": "best validation score (of the selection metric's best state, in `metric`)",
    "best_step": "step of that state",
    "test": "test score of that state", "test_last": "test score of the state at the end of training",
    "accuracy": "test accuracy of the kept state (null for regression)",
    "majority": "the majority-class predictor's test score in `metric` (null for regression)",
    "majority_accuracy": "the majority class's test accuracy (null for regression)",
    "majority_label": "the majority class of the validation half (null for regression)",
    "constant": "the kept state predicts one class (or value) for every test row",
    "constant_label": "the class it predicts for every test row when `constant` (null otherwise, for "
                      "regression, and in records written before this key)",
    "diverged": "the training loss became NaN or infinite",
    "below_threshold": "study B: test <= task.fail_threshold (null without a threshold)",
    "history": "list of {step, val, <select metric>} evaluations",
    "stopped_early_at": "step of the evaluation that ended the run early (eval.patience), else null",
    "resumed_at": "steps at which the run resumed from its checkpoint after an interruption, else null",
    "steps": "optimizer steps taken", "epochs": "epochs taken",
    "seconds": "wall time (a resumed run: the last launch's, plus the earlier ones' up to its checkpoint)",
    "config": "the fully resolved config", "versions": "package versions",
}


def new_record(**known) -> dict:
    """A record with every key, as an errored run before anything is known."""
    record = dict.fromkeys(KEYS)
    record.update(status=ERRORED, diverged=False, history=[], steps=0, epochs=0, versions=versions())
    record.update(known)
    return record


def verdict(record: dict, threshold: float | None) -> dict:
    """status, reason and below_threshold of a scored (or diverged) record."""
    if record["diverged"]:
        return {"status": FAILED, "reason": record["reason"], "below_threshold": None if threshold is None else True}
    below = None if threshold is None else bool(record["test"] <= threshold)
    if record["constant"]:
        label = record.get("constant_label")  # the predicted class, not the majority class
        return {"status": FAILED, "below_threshold": below,
                "reason": "constant predictions" + (f" (always {label!r})" if label is not None else "")}
    acc, majority = record.get("accuracy"), record.get("majority_accuracy")
    if acc is not None and majority is not None and acc <= majority + 1e-9:
        return {"status": FAILED, "below_threshold": below,
                "reason": f"test accuracy {acc:.4f} <= majority {majority:.4f}"}
    return {"status": OK, "reason": None, "below_threshold": below}


def upgrade(record: dict) -> dict:
    """A record written by an earlier version, with today's keys (a copy; nothing re-judged).

    A key it lacks is null, `constant_label` included: its "constant predictions (always ...)"
    reason named the majority class, which need not be the class it predicted."""
    r = {**dict.fromkeys(KEYS), **record}
    reason = str(record.get("reason") or "")
    if "diverged" not in record:
        r["diverged"] = reason.startswith("diverged")
    if "failed_b" in record and "below_threshold" not in record:  # its name until version 0.1
        r["below_threshold"] = r.pop("failed_b")
    threshold = ((record.get("config") or {}).get("task") or {}).get("fail_threshold")
    if r["below_threshold"] is None and threshold is not None and r["status"] in FINISHED:
        r["below_threshold"] = True if r["test"] is None else bool(r["test"] <= threshold)
    r["config"] = with_added_keys(r["config"])
    return r


# ---------------------------------------------------------------- reading and writing
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
    path = Path(path)
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


def load(path: Path) -> dict:
    """A `results.json` as today's record; ValueError when it is not one."""
    record = read(path)
    if not isinstance(record, dict) or "status" not in record:
        raise ValueError("not a stabilize results.json (no 'status')")
    return upgrade(record)


def resolved_config(cfg) -> dict:
    """The config as `results.json` records it: resolved, JSON types only."""
    return json.loads(json.dumps(OmegaConf.to_container(cfg, resolve=True), default=str))


def finished_run(run_dir: Path, config: dict) -> dict | None:
    """The earlier result in `run_dir` if it finished (ok or failed) with this same config."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        return None
    try:
        earlier = read(path)
    except (OSError, ValueError):
        return None
    if earlier.get("status") in FINISHED and same_config(earlier.get("config"), config):
        return earlier
    return None


def same_config(a: dict, b: dict) -> bool:
    """Whether two resolved configs compute the same run (the runtime keys and the run folder aside)."""
    return _identity(a) == _identity(b)


# Keys that change how or where a run is executed, not what it computes (also left out of run
# folder names in stabilize/conf/train.yaml): a sweep relaunched with another n_jobs still skips finished
# runs, and so does a sweep folder committed and relaunched from a clone at another path.
RUNTIME_KEYS = (("threads",), ("verbose",), ("checkpoint_minutes",), ("preempt_signals",),
                ("trainer", "enable_progress_bar"),
                ("data", "cache_dir"), ("data", "eval_batch_size"), ("device", "jobs_per_gpu"),
                ("paths", "output_dir"))


# Keys added to the config after runs were recorded, each with the value that computes what a
# config without it computed: a record that lacks one reads as having that value, so finished
# runs of an earlier version are still skipped by a relaunch and fall in the same report row. A
# key is filled only where its parent is in the config (the lpft keys only in an lpft run's).
ADDED_KEYS = {
    ("trainer", "strategy"): "auto",                            # Lightning's choice, one process (distributed.py)
    ("optim", "eps_placement"): "after_correction",             # torch.optim.AdamW (stabilize/optimizers.py)
    ("method", "strategies", "lpft", "probe"): "gradient",      # LP-FT's probe trained by AdamW steps
    ("method", "strategies", "lpft", "grid"): None,             # the fitted probe's C grid (unused by gradient)
}


def with_added_keys(config):
    """A copy of a resolved config with every key of `ADDED_KEYS` it lacks, at its earlier value."""
    if not isinstance(config, dict):
        return config
    config = json.loads(json.dumps(config))
    for key, value in ADDED_KEYS.items():
        if (node := _parent(config, key)) is not None:
            node.setdefault(key[-1], value)
    return config


def _parent(config: dict, key: tuple) -> dict | None:
    """The dict that holds `key`'s last part, None where the config has no such node."""
    for part in key[:-1]:
        config = config.get(part) if isinstance(config, dict) else None
    return config if isinstance(config, dict) else None


# A folder inside an installed package (the offline model's, `${stabilize.package_model:...}`) up to
# its environment's site-packages: the same model in another virtual environment or clone.
_INSTALLED = re.compile(r'[^"]*/(?:site|dist)-packages/')


def _identity(config):
    """The config without its runtime keys, the run's own folder written as `<run dir>` wherever
    a value holds it (a logger's save_dir, a callback's out_dir), a path into an installed package
    from `<site-packages>` on, the keys added since filled in."""
    if not isinstance(config, dict):
        return config
    text = json.dumps(with_added_keys(config))
    run_dir = (config.get("paths") or {}).get("output_dir")
    if isinstance(run_dir, str) and run_dir:
        text = text.replace(json.dumps(run_dir)[1:-1], "<run dir>")
    config = json.loads(_INSTALLED.sub("<site-packages>/", text))
    for key in RUNTIME_KEYS:
        if (node := _parent(config, key)) is not None:
            node.pop(key[-1], None)
    return config
