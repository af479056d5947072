"""BitFit (Ben Zaken et al., ACL 2022, section 2): train the bias terms and the head only.

Every parameter whose name ends in `bias` (attention, feed-forward, LayerNorm and pooler biases)
and the whole classifier head train; every other weight is frozen. The authors' code
(benzakenelad/BitFit) uses lr 1e-3, which stabilize/conf/method/bitfit.yaml sets; its 16 epochs and batch
of 8 are not. A model without bias terms (ModernBERT's defaults) is refused.
"""
from stabilize import layers
from stabilize.strategies.base import Strategy
from stabilize.strategies.gradual_unfreeze import GradualUnfreezing
from stabilize.strategies.lora import LoRA, trainable_fraction
from stabilize.strategies.mixout import Mixout
from stabilize.strategies.reinit import ReInit


class BitFit(Strategy):
    incompatible_with = {
        ReInit: "the re-drawn weights would stay frozen at random values",
        Mixout: "Mixout mixes weights that BitFit freezes",
        GradualUnfreezing: "unfreezing would train the frozen weights",
        LoRA: "both choose which parameters train",
    }

    def setup(self, module):
        model = module.model
        trains = {name: name.endswith("bias") or layers.layer_of(model, name) == "head"
                  for name, _ in model.named_parameters()}
        if not any(t and layers.layer_of(model, n) != "head" for n, t in trains.items()):
            raise self.error(None, f"{model.config.model_type} has no bias terms to train")
        for name, p in model.named_parameters():
            p.requires_grad_(trains[name])

    def results(self, module):
        return {"trainable_fraction": trainable_fraction(module.model)}
