"""The `Strategy` base class and the method: an ordered list of strategies built from config.

Every hook is a no-op here; a strategy overrides only the hooks its method needs. The
training module calls the hooks of all strategies in the order the method lists them
(the order of the keys under `method.strategies`), at these points:

    setup                 once, after the pre-trained model is loaded (ReInit, Mixout, ...)
    training_steps        may change the run's length in optimizer steps (GradualUnfreezing)
    param_groups          when the optimizer is built; each strategy may re-split the groups
    build_optimizer       the last strategy returning an optimizer wins; default AdamW
    loss                  extra loss terms added to the task loss
    before_optimizer_step after backward (and AMP unscaling), before clipping
    clip_gradients        the first strategy returning True replaces global-norm clipping
    after_optimizer_step  after every optimizer step (PriorWeightDecay)
    on_train_epoch_start  at each epoch boundary (GradualUnfreezing)
    results               extra keys for `results.json`
"""
import inspect

import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig

from stabilize.errors import ConfigError


class Strategy:
    """A stabilization method, or one part of it. Subclass and override hooks."""

    key = "strategy"  # the config key it was built from, for error messages

    def setup(self, module) -> None:
        """Change the model once after loading; `module.model` is the HF classifier."""

    def training_steps(self, module, steps_per_epoch: int, steps: int) -> int:
        """Return the run's length in optimizer steps, given the length so far."""
        return steps

    def param_groups(self, module, groups: list[dict]) -> list[dict]:
        """Return the optimizer's parameter groups (each a dict with `params`, `names`, ...)."""
        return groups

    def build_optimizer(self, module, groups: list[dict]) -> torch.optim.Optimizer | None:
        """Return an optimizer to replace the default AdamW, or None."""
        return None

    def loss(self, module, batch: dict, outputs) -> torch.Tensor | None:
        """Return a term to add to the loss, or None."""
        return None

    def before_optimizer_step(self, module, optimizer) -> None:
        """Called with the gradients in place, before clipping and the step."""

    def clip_gradients(self, module, optimizer) -> bool:
        """Clip the gradients and return True to replace global-norm clipping."""
        return False

    def after_optimizer_step(self, module, optimizer) -> None:
        """Called after every optimizer step."""

    def on_train_epoch_start(self, module, epoch: int) -> None:
        """Called at the start of every training epoch."""

    def results(self, module) -> dict:
        """Extra entries for `results.json`."""
        return {}

    def error(self, field: str, message: str) -> ConfigError:
        return ConfigError(f"method.strategies.{self.key}.{field}: {message}")


def build_method(method_cfg: DictConfig) -> list[Strategy]:
    """Instantiate `method.strategies` in order; null entries are switched off.

    Keyword arguments are checked against each class's signature first, and every problem
    is reported at once, each naming its key.
    """
    strategies, problems = [], []
    for key, node in (method_cfg.get("strategies") or {}).items():
        if node is None:
            continue
        where = f"method.strategies.{key}"
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if target is None:
            problems.append(f"{where}: needs a `_target_` naming a Strategy class")
            continue
        try:
            cls = get_object(target)
        except ImportError as e:
            problems.append(f"{where}._target_: cannot import {target!r} ({e})")
            continue
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            problems.append(f"{where}._target_: {target!r} is not a subclass of stabilize.strategies.Strategy")
            continue
        params = inspect.signature(cls).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in node if not k.startswith("_") and k not in params and not takes_any]
        if unknown:
            problems.append(f"{where}: {cls.__name__} takes no argument(s) {unknown}; "
                            f"it takes {[p for p in params]}")
            continue
        try:
            strategy = instantiate(node, _convert_="all")
        except Exception as e:  # the class's own checks, e.g. a negative probability (hydra wraps them)
            problems.append(f"{where}: {e.__cause__ or e}")
            continue
        strategy.key = key
        strategies.append(strategy)
    if problems:
        raise ConfigError(*problems)
    return strategies


def method_name(method_cfg: DictConfig) -> str:
    """`method.name` if set, else the selected method files and any other active strategy, joined by '+'."""
    if method_cfg.get("name"):
        return str(method_cfg.name)
    active = [k for k, v in (method_cfg.get("strategies") or {}).items() if v is not None]
    return "+".join(dict.fromkeys([*(method_cfg.get("parts") or {}), *active])) or "standard"
