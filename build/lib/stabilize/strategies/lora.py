"""LoRA (Hu et al., ICLR 2022, section 4) through the `peft` package.

Each targeted Linear layer W gets a trainable low-rank update (alpha / r) · B A (A random, B zero,
so training starts from the pre-trained function); every other pre-trained weight is frozen and
the classifier head trains in full. Defaults as the authors' GLUE scripts (microsoft/LoRA,
examples/NLU): r 8, alpha 16, query and value projections, no LoRA dropout; their learning rate
(5e-4 for RTE) is in stabilize/conf/method/lora.yaml, their 30 to 80 epochs are not. Adapters are injected
in place (`peft.inject_adapter_in_model`), so the model keeps its class; a wrapped layer's weight
is renamed `<layer>.base_layer.weight`.
"""
from peft import LoraConfig, inject_adapter_in_model

from stabilize import layers
from stabilize.strategies.base import Strategy
from stabilize.strategies.gradual_unfreeze import GradualUnfreezing
from stabilize.strategies.mixout import Mixout
from stabilize.strategies.reinit import ReInit


def trainable_fraction(model) -> float:
    """The share of the model's parameter entries that train."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad) / sum(p.numel() for p in params)


class LoRA(Strategy):
    incompatible_with = {
        ReInit: "re-drawn blocks would stay frozen (or the LoRA matrices re-drawn)",
        Mixout: "Mixout would replace the LoRA layers' Linear modules",
        GradualUnfreezing: "unfreezing would train the frozen pre-trained weights",
    }

    def __init__(self, r: int = 8, alpha: float = 16, dropout: float = 0.0,
                 target_modules: tuple[str, ...] | list[str] = ("query", "value")):
        if not (isinstance(r, int) and r > 0) or not 0 <= dropout < 1:
            raise ValueError(f"r must be a positive integer and dropout in [0, 1), got {r!r} and {dropout!r}")
        self.config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))

    def setup(self, module):
        model = module.model
        try:
            inject_adapter_in_model(self.config, model)
        except ValueError as e:
            raise self.error("target_modules", str(e)) from None
        for name, p in model.named_parameters():
            if layers.layer_of(model, name) == "head":
                p.requires_grad_(True)

    def results(self, module):
        return {"trainable_fraction": trainable_fraction(module.model)}
