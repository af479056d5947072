"""The `Strategy` base class and the method: an ordered list of strategies built from config.

Every hook is a no-op here; a strategy overrides only the hooks its method needs. The
training module calls the hooks of all strategies in the order the method lists them
(the order of the keys under `method.strategies`), at these points:

    setup                 once, after the pre-trained model is loaded (ReInit, Mixout, NoisyTune, LoRA, ...)
    training_steps        may change the run's length in optimizer steps (GradualUnfreezing)
    param_groups          when the optimizer is built; each strategy may re-split the groups
    build_optimizer       the last strategy returning an optimizer wins; default AdamW
    lr_scheduler          right after, given the schedule so far (default: warmup, then linear
                          decay); each strategy may wrap or replace it (SWA's SWALR phase)
    on_train_start        once, before the first batch: the model on its device, the optimizer
                          built; `module.train_batches(epochs)` gives passes over the training
                          data (ChildTuning-D's Fisher information, LP-FT's linear probe)
    loss                  extra loss terms added to the task loss (R3F)
    before_optimizer_step after backward (and AMP unscaling), before clipping
    clip_gradients        the first strategy returning True replaces global-norm clipping
    after_clipping        after clipping, right before the optimizer step (ChildTuning's masks)
    after_optimizer_step  after every optimizer step (PriorWeightDecay, EMA, SWA)
    on_train_epoch_start  at each epoch boundary (GradualUnfreezing)
    evaluation_weights    at every evaluation and when training ends: weights that evaluation,
                          the kept best state and the test scores use instead of the trained
                          ones (EMA, SWA); the last answer wins, and the model keeps it at the end
    results               extra keys for `results.json`
    state_dict            what the strategy holds that a resumed run needs (stabilize.resume):
    load_state_dict       what `on_train_start` made, and anything updated while training;
                          a resumed run calls load_state_dict instead of on_train_start

A strategy that cannot work beside another names that class in `incompatible_with`, with the
reason; `build_method` refuses the pair (LoRA with ReInit, say). One that cannot run on several
processes (trainer.devices > 1, stabilize.distributed) says why in `single_process_only`.
"""
import inspect

import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig

from stabilize.errors import ConfigError


class Strategy:
    """A stabilization method, or one part of it. Subclass and override hooks."""

    key = "strategy"  # the config key it was built from, for error messages
    incompatible_with: dict[type, str] = {}  # class -> why the two cannot be combined
    single_process_only: str | None = None  # why it cannot run on several processes (DDP), or None

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

    def lr_scheduler(self, module, optimizer, scheduler):
        """Return the learning-rate schedule, given the one so far (stepped every optimizer step)."""
        return scheduler

    def on_train_start(self, module) -> None:
        """Called once before the first batch."""

    def loss(self, module, batch: dict, outputs) -> torch.Tensor | None:
        """Return a term to add to the loss, or None."""
        return None

    def before_optimizer_step(self, module, optimizer) -> None:
        """Called with the gradients in place, before clipping and the step."""

    def clip_gradients(self, module, optimizer) -> bool:
        """Clip the gradients and return True to replace global-norm clipping."""
        return False

    def after_clipping(self, module, optimizer) -> None:
        """Called with the clipped gradients, right before the optimizer step."""

    def after_optimizer_step(self, module, optimizer) -> None:
        """Called after every optimizer step."""

    def on_train_epoch_start(self, module, epoch: int) -> None:
        """Called at the start of every training epoch; not again for the epoch a run resumes in
        mid-epoch (stabilize.preempt): `load_state_dict` restores what it set."""

    def evaluation_weights(self, module) -> dict[str, torch.Tensor] | None:
        """Tensors (state-dict names) to evaluate with instead of the trained ones, or None."""
        return None

    def results(self, module) -> dict:
        """Extra entries for `results.json`."""
        return {}

    def state_dict(self, module) -> dict:
        """What a resumed run needs: what `on_train_start` made, and what training updates
        (tensors, numbers, strings, lists and dicts of them)."""
        return {}

    def load_state_dict(self, module, state: dict) -> None:
        """Restore `state_dict`'s answer when an interrupted run resumes, in place of `on_train_start`
        (the model on its device, the checkpoint's weights loaded)."""

    def error(self, field: str | None, message: str) -> ConfigError:
        """A ConfigError naming `method.strategies.<key>.<field>` (the strategy's key when field is None)."""
        where = f"method.strategies.{self.key}" + (f".{field}" if field else "")
        return ConfigError(f"{where}: {message}")


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
            problems.append(f"{where}._target_: cannot import {target!r} ({e.__cause__ or e})")
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
    problems.extend(conflicts(strategies))
    if problems:
        raise ConfigError(*problems)
    return strategies


def conflicts(strategies: list[Strategy]) -> list[str]:
    """One line for each pair of strategies that `incompatible_with` says cannot work together."""
    found = []
    for i, a in enumerate(strategies):
        for b in strategies[i + 1:]:
            why = _reason(a, b) or _reason(b, a)
            if why:
                found.append(f"method.strategies.{b.key}: cannot be combined with method.strategies.{a.key}: {why}")
    return found


def _reason(a: Strategy, b: Strategy) -> str | None:
    return next((why for cls, why in a.incompatible_with.items() if isinstance(b, cls)), None)


def method_name(method_cfg: DictConfig) -> str:
    """`method.name` if set, else the selected method files and any other active strategy, joined by '+'."""
    if method_cfg.get("name"):
        return str(method_cfg.name)
    active = [k for k, v in (method_cfg.get("strategies") or {}).items() if v is not None]
    return "+".join(dict.fromkeys([*(method_cfg.get("parts") or {}), *active])) or "standard"
