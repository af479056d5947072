"""When a run is evaluated, when it stops early, and with which weights.

Cadence (`eval`): `times` evaluations evenly spaced over training (study A's released code),
or `per_epoch` evaluations in every epoch (Mosbach et al. 2021, section 6: three), exactly one
of them set; either way the last step is evaluated. `patience` ends the run after that many
evaluations in a row without a better selection score; the step is kept as `stopped_early_at`.

Weights: a strategy may answer `evaluation_weights` (EMA, SWA); its tensors are swapped into
the model for every evaluation, so the scores, the kept best state and the history are the
averaged model's, and the model keeps them when training ends, so the test scores are too.
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from stabilize.errors import ConfigError, is_int


def eval_steps(total_steps: int, times: int) -> list[int]:
    """`times` steps evenly spaced over training, the last one at the end."""
    return sorted({max(1, round(total_steps * (i + 1) / times)) for i in range(times)})


def epoch_eval_steps(total_steps: int, steps_per_epoch: int, per_epoch: int) -> list[int]:
    """`per_epoch` steps evenly spaced over every epoch, and the last step."""
    epochs = math.ceil(total_steps / steps_per_epoch)
    steps = {max(1, round(steps_per_epoch * (e + (i + 1) / per_epoch)))
             for e in range(epochs) for i in range(per_epoch)}
    return sorted({s for s in steps if s <= total_steps} | {total_steps})


def _positive_or_null(value) -> bool:
    return value is None or (is_int(value) and value > 0)


@dataclass(frozen=True)
class EvalPlan:
    times: int | None = 10
    per_epoch: int | None = None
    patience: int | None = None

    def problems(self) -> list[str]:
        """What is wrong with the `eval` config, each naming its key."""
        found = [f"eval.{key}: {getattr(self, key)!r} is not a positive integer (or null)"
                 for key in ("times", "per_epoch", "patience") if not _positive_or_null(getattr(self, key))]
        if (self.times is None) == (self.per_epoch is None):
            found.append(f"eval.times, eval.per_epoch: set exactly one (got {self.times!r} and {self.per_epoch!r})")
        return found

    def check(self) -> "EvalPlan":
        if self.problems():
            raise ConfigError(*self.problems())
        return self

    def steps(self, total_steps: int, steps_per_epoch: int) -> set[int]:
        if self.per_epoch is not None:
            return set(epoch_eval_steps(total_steps, steps_per_epoch, self.per_epoch))
        return set(eval_steps(total_steps, self.times))

    def stale(self, history: list[dict], best_step: int) -> bool:
        """Whether the last `patience` evaluations all came after the best one."""
        return self.patience is not None and sum(h["step"] > best_step for h in history) >= self.patience


def evaluation_state(module) -> dict[str, torch.Tensor] | None:
    """The weights evaluation uses instead of the trained ones: the last strategy's answer."""
    state = None
    for s in module.strategies:
        state = s.evaluation_weights(module) or state
    return state


@torch.no_grad()
def _copy_into(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    torch._foreach_copy_([own[k] for k in state], list(state.values()))


@contextmanager
def evaluated_weights(module):
    """Inside, `module.model` holds the weights evaluation uses; the trained ones come back after."""
    state = evaluation_state(module)
    if state is None:
        yield
        return
    own = module.model.state_dict()
    trained = {k: own[k].clone() for k in state}
    _copy_into(module.model, state)
    try:
        yield
    finally:
        _copy_into(module.model, trained)


def keep_evaluation_weights(module) -> None:
    """At the end of training: the model keeps the weights evaluation used."""
    state = evaluation_state(module)
    if state is not None:
        _copy_into(module.model, state)
