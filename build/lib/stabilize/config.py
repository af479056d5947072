"""The resolvers `stabilize/conf/` uses, and the one check of a composed config before any work.

`validate` looks at everything a run will use (plain values, the task and its data files,
the method's strategies against their signatures, the model's path and position limit, the
Trainer, logger and callback nodes, what a run on several devices refuses) without loading
data or weights, and reports every problem at once, each naming its key.
"""
import hashlib
import importlib
import inspect
import json
import re
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from transformers import CONFIG_MAPPING

from stabilize import distributed, preempt, sweep, tasks
from stabilize.errors import ConfigError, is_int
from stabilize.evaluation import EvalPlan
from stabilize.optimizers import EPS_PLACEMENTS
from stabilize.strategies.base import Strategy, build_method


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


RESOLVERS = {"stabilize.package_model": package_model, "stabilize.dirname": run_dirname,
             "stabilize.threads": sweep.default_threads, "stabilize.launch_record": sweep.launch_record}


def register_resolvers() -> None:
    """Make `${stabilize.*:}` known to OmegaConf; call before composing `stabilize/conf/`."""
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


# Trainer arguments that `stabilize.train` sets itself: a value in `trainer` would be ignored.
TRAINER_OWNED = ("max_steps", "max_epochs", "logger", "callbacks", "enable_checkpointing",
                 "num_sanity_val_steps", "default_root_dir", "use_distributed_sampler")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def validate(cfg: DictConfig) -> list[Strategy]:
    """Every problem of `cfg` in one ConfigError; else the method's strategies, built."""
    problems = [*_values(cfg), *tasks.check(cfg), *_model(cfg), *_trainer(cfg.trainer),
                *_targets(cfg, "logger"), *_targets(cfg, "callbacks")]
    strategies = []
    try:
        strategies = build_method(cfg.method)
    except ConfigError as e:
        problems.extend(e.problems)
    problems.extend(distributed.problems(cfg, strategies))
    if problems:
        raise ConfigError(*problems)
    return strategies


def _values(cfg: DictConfig) -> list[str]:
    problems = []
    if cfg.seed is not None and not (is_int(cfg.seed) and cfg.seed >= 0):
        problems.append(f"seed: {cfg.seed!r} is not a non-negative integer (0 is valid)")
    per_gpu = cfg.device.jobs_per_gpu
    if not (is_int(per_gpu) and per_gpu >= 1):
        problems.append(f"device.jobs_per_gpu: {per_gpu!r} is not a positive integer")
    if cfg.threads is not None and not (is_int(cfg.threads) and cfg.threads > 0):
        problems.append(f"threads: {cfg.threads!r} is not a positive integer (null: torch's choice)")
    minutes = cfg.get("checkpoint_minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes < 0):
        problems.append(f"checkpoint_minutes: {minutes!r} is not a number >= 0 (null: never)")
    try:
        preempt.signal_numbers(cfg.get("preempt_signals"))
    except ValueError as e:
        problems.append(str(e))
    o = cfg.optim
    if not (isinstance(o.lr, (int, float)) and o.lr > 0):
        problems.append(f"optim.lr: {o.lr!r} is not a positive number")
    if o.max_steps is None and not (is_int(o.max_epochs) and o.max_epochs > 0):
        problems.append(f"optim.max_epochs: {o.max_epochs!r} is not a positive integer (or set optim.max_steps)")
    if o.max_steps is not None and not (is_int(o.max_steps) and o.max_steps > 0):
        problems.append(f"optim.max_steps: {o.max_steps!r} is not a positive integer")
    if not (is_int(o.batch_size) and o.batch_size > 0):
        problems.append(f"optim.batch_size: {o.batch_size!r} is not a positive integer")
    if not (isinstance(o.warmup_ratio, (int, float)) and 0 <= o.warmup_ratio < 1):
        problems.append(f"optim.warmup_ratio: {o.warmup_ratio!r} is not in [0, 1)")
    if o.get("eps_placement") not in EPS_PLACEMENTS:
        problems.append(f"optim.eps_placement: {o.get('eps_placement')!r} is not one of {', '.join(EPS_PLACEMENTS)}")
    e = cfg.eval
    return problems + EvalPlan(e.times, e.get("per_epoch"), e.get("patience")).problems()


def _model(cfg: DictConfig) -> list[str]:
    """model.path names a folder or a hub id; data.max_length fits the model's positions."""
    m, max_length = cfg.model, cfg.data.max_length
    if not (is_int(max_length) and max_length >= 2):
        return [f"data.max_length: {max_length!r} is not an integer >= 2 (a row needs [CLS] and [SEP])"]
    if m.get("random_config") is not None:
        model_config = OmegaConf.to_container(m.random_config)
        if model_config.get("model_type", "bert") not in CONFIG_MAPPING:
            return [f"model.random_config.model_type: {model_config['model_type']!r} is not a transformers model type"]
    elif m.path is None:
        return ["model.path: null, and no model.random_config to build a random model from"]
    elif Path(str(m.path)).expanduser().is_dir():
        config_file = Path(str(m.path)).expanduser() / "config.json"
        if not config_file.is_file():  # else the tokenizer fails first, naming neither the key nor the file
            return [f"model.path: the folder {str(config_file.parent)!r} has no config.json "
                    f"(not a transformers model folder: save one with save_pretrained)"]
        model_config = json.loads(config_file.read_text())
    elif _HUB_ID.match(str(m.path)) and not str(m.path).startswith((".", "~")):
        return []  # a hub id: its limits are known once it is downloaded
    else:
        return [f"model.path: {m.path!r} is no folder here and does not look like a hub id (name or org/name)"]
    limit = model_config.get("max_position_embeddings", 512)
    if "roberta" in str(model_config.get("model_type", "")):
        limit -= 2  # RoBERTa's positions start after the padding index
    if max_length > limit:
        return [f"data.max_length: {max_length} is above the model's limit of {limit} positions"]
    return []


def _trainer(trainer: DictConfig) -> list[str]:
    accepted = inspect.signature(pl.Trainer).parameters
    problems = []
    for key in trainer:
        if key in TRAINER_OWNED:
            problems.append(f"trainer.{key}: set by stabilize itself "
                            f"(use optim.max_steps / optim.max_epochs, logger=..., callbacks=...)")
        elif key not in accepted:
            problems.append(f"trainer.{key}: not an argument of pytorch_lightning.Trainer")
    return problems


def _targets(cfg: DictConfig, group: str) -> list[str]:
    """Every node of a logger or callbacks file names an importable `_target_`."""
    problems = []
    for key, node in (cfg.get(group) or {}).items():
        if node is None:
            continue
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if target is None:
            problems.append(f"{group}.{key}: needs a `_target_`")
            continue
        try:
            get_object(target)
        except ImportError as e:  # hydra's message spans lines: its cause is the one-line reason
            problems.append(f"{group}.{key}._target_: cannot import {target!r} ({e.__cause__ or e})")
    return problems
