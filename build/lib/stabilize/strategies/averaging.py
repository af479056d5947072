"""Weight averaging, the shared part of EMA and SWA, on `torch.optim.swa_utils.AveragedModel`.

The average is a copy of the model made when training starts (on its device), updated after
optimizer steps; once it holds a step, evaluation, the kept best state and the test scores use
it (`evaluation_weights`), and the model keeps it when training ends. Only parameters are
averaged (BERT-style encoders have no running statistics).
"""
from torch.optim.swa_utils import AveragedModel

from stabilize.strategies.base import Strategy


class WeightAveraging(Strategy):
    """`multi_avg_fn`: how AveragedModel combines the weights (None: the equal average)."""

    def __init__(self, multi_avg_fn=None):
        self.multi_avg_fn = multi_avg_fn
        self.average: AveragedModel | None = None

    def on_train_start(self, module):
        self.average = AveragedModel(module.model, multi_avg_fn=self.multi_avg_fn)

    def update(self, module) -> bool:
        """Whether the average takes the weights after this optimizer step."""
        return True

    def after_optimizer_step(self, module, optimizer):
        if self.update(module):
            self.average.update_parameters(module.model)

    def evaluation_weights(self, module):
        if self.average is None or int(self.average.n_averaged) == 0:
            return None
        return dict(self.average.module.named_parameters())

    def results(self, module):
        return {"averaged_steps": None if self.average is None else int(self.average.n_averaged)}

    def state_dict(self, module):
        return {"average": self.average.state_dict()}

    def load_state_dict(self, module, state):
        self.on_train_start(module)
        self.average.load_state_dict(state["average"])


WeightAveraging.incompatible_with = {WeightAveraging: "two weight averages cannot both choose the evaluated weights"}
