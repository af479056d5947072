"""Gradual (top-down) unfreezing (Yang & Ma 2022, section 2; Howard & Ruder 2018).

Stage k (k = 0 .. L-1) trains the head, the pooler and the top k+1 blocks for
`epochs_per_stage` epochs; then the next block down is unfrozen. After the L stages the
whole model (embeddings included) trains for the run's usual length, so a run lasts
L * epochs_per_stage epochs longer; `results.json` reports it. Frozen tensors get no
gradient, hence no update and no weight decay; a block's optimizer state starts at its
first update after unfreezing.
"""
from stabilize import layers
from stabilize.strategies.base import Strategy


class GradualUnfreezing(Strategy):
    single_process_only = ("it freezes blocks epoch by epoch, and DDP expects a gradient for every tensor "
                           "it was built with")

    def __init__(self, epochs_per_stage: int = 1):
        if not isinstance(epochs_per_stage, int) or epochs_per_stage < 1:
            raise ValueError(f"epochs_per_stage must be a positive integer, got {epochs_per_stage!r}")
        self.epochs_per_stage = epochs_per_stage
        self.stages: list[dict] = []
        self.extra_steps = 0

    def setup(self, module):
        layers.check(module.model, f"method.strategies.{self.key}")

    def training_steps(self, module, steps_per_epoch, steps):
        self.extra_steps = len(layers.blocks(module.model)) * self.epochs_per_stage * steps_per_epoch
        return steps + self.extra_steps

    def trainable_depth(self, module, epoch: int) -> int:
        """Lowest depth that trains at `epoch` (0 = embeddings: everything trains)."""
        n_blocks = len(layers.blocks(module.model))
        stage = epoch // self.epochs_per_stage
        return 0 if stage >= n_blocks else n_blocks - stage

    def on_train_epoch_start(self, module, epoch):
        lowest = self.freeze_below(module, epoch)
        if not self.stages or self.stages[-1]["lowest_depth"] != lowest:
            self.stages.append({"epoch": epoch, "step": module.global_step, "lowest_depth": lowest})

    def results(self, module):
        return {"unfreeze_stages": self.stages, "extra_steps_for_unfreezing": self.extra_steps}

    def state_dict(self, module):
        return {"stages": self.stages}

    def load_state_dict(self, module, state):
        self.stages = state["stages"]
        self.freeze_below(module, module.current_epoch)  # a run resumed mid-epoch: no epoch start comes

    def freeze_below(self, module, epoch: int) -> int:
        """Train only the layers from `epoch`'s lowest trainable depth up; returns that depth."""
        model, lowest = module.model, self.trainable_depth(module, epoch)
        for name, p in model.named_parameters():
            p.requires_grad_(layers.depth(model, layers.layer_of(model, name)) >= lowest)
        return lowest
