"""Layer-wise learning-rate decay (study A, section 5).

Head and pooler at lr, the top block at lr * decay, each block below multiplied by decay
again, embeddings lowest (lr * decay^(L+1)); `stabilize.layers` says which tensor is where.
Existing groups (e.g. the weight-decay split) are split further by layer, keeping their other
settings.
"""
from stabilize import layers
from stabilize.strategies.base import Strategy


def layer_lr(model, layer: str, lr: float, decay: float) -> float:
    top = len(layers.blocks(model)) + 1
    return lr * decay ** (top - layers.depth(model, layer))


class LayerwiseLRDecay(Strategy):
    def __init__(self, decay: float = 0.95):
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay!r}")
        self.decay = decay

    def setup(self, module):
        layers.check(module.model, f"method.strategies.{self.key}")

    def param_groups(self, module, groups):
        model = module.model
        split = []
        for group in groups:
            by_layer: dict[str, dict] = {}
            for p, name in zip(group["params"], group["names"]):
                layer = layers.layer_of(model, name)
                g = by_layer.setdefault(layer, {**group, "params": [], "names": [], "layer": layer,
                                                "lr": layer_lr(model, layer, module.optim.lr, self.decay)})
                g["params"].append(p)
                g["names"].append(name)
            split.extend(by_layer.values())
        return split
