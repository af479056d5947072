"""OmegaConf resolvers used by `conf/`, and the up-front check of a composed config.

Every problem is reported at once, each naming its key, before any data or model is loaded.
"""
import hashlib
import importlib

from omegaconf import DictConfig, OmegaConf

from stabilize import sweep
from stabilize.errors import ConfigError
from stabilize.tasks import TASKS


def package_model(package: str) -> str:
    """Folder of a model shipped by a PyPI package with `get_model_path()` (offline)."""
    return str(importlib.import_module(package).get_model_path())


def run_dirname(override_dirname: str) -> str:
    """Run folder named from its overrides, `default` when there are none; a name too long
    for the file system keeps its first 150 characters and a hash of the whole."""
    name = override_dirname.replace("/", "_") or "default"
    if len(name.encode()) > 200:
        name = f"{name[:150]}...{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return name


for _name, _fn in {"stabilize.package_model": package_model, "stabilize.dirname": run_dirname,
                   "stabilize.threads": sweep.default_threads}.items():
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def validate(cfg: DictConfig) -> None:
    problems = []
    if cfg.task.name not in TASKS:
        problems.append(f"task.name: unknown task {cfg.task.name!r}; choose one of {sorted(TASKS)}")
    if cfg.seed is not None and (isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0):
        problems.append(f"seed: {cfg.seed!r} is not a non-negative integer (0 is valid)")
    size = cfg.data.train_size
    if size != "full" and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        problems.append(f"data.train_size: {size!r} is neither a positive integer nor 'full'")
    o = cfg.optim
    if not (isinstance(o.lr, (int, float)) and o.lr > 0):
        problems.append(f"optim.lr: {o.lr!r} is not a positive number")
    if o.max_steps is None and not (isinstance(o.max_epochs, int) and o.max_epochs > 0):
        problems.append(f"optim.max_epochs: {o.max_epochs!r} is not a positive integer (or set optim.max_steps)")
    if o.max_steps is not None and not (isinstance(o.max_steps, int) and o.max_steps > 0):
        problems.append(f"optim.max_steps: {o.max_steps!r} is not a positive integer")
    if not (isinstance(o.batch_size, int) and o.batch_size > 0):
        problems.append(f"optim.batch_size: {o.batch_size!r} is not a positive integer")
    if not 0 <= o.warmup_ratio < 1:
        problems.append(f"optim.warmup_ratio: {o.warmup_ratio!r} is not in [0, 1)")
    if not (isinstance(cfg.eval.times, int) and cfg.eval.times > 0):
        problems.append(f"eval.times: {cfg.eval.times!r} is not a positive integer")
    if cfg.model.path is None and cfg.model.get("random_config") is None:
        problems.append("model.path: null, and no model.random_config to build a random model from")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
