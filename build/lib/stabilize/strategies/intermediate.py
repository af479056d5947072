"""Intermediate-task fine-tuning (study A, section 5): start from an earlier run's encoder.

The earlier run saved its best state (`save_model=true` writes `model.pt` in its run folder).
Its encoder is loaded; the classification head stays new, whatever the two tasks' classes
(MNLI's 3 -> RTE's 2, or STS-B's score -> RTE).
"""
from pathlib import Path

import torch

from stabilize import results
from stabilize.strategies.base import Strategy


class Intermediate(Strategy):
    def __init__(self, init_from: str):
        self.init_from = init_from
        self.loaded: list[str] = []

    def setup(self, module):
        path = Path(self.init_from) / results.MODEL
        if not path.is_file():
            raise self.error("init_from", f"no {results.MODEL} in {self.init_from} "
                                          f"(run the first stage with save_model=true)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        prefix = module.model.base_model_prefix + "."
        encoder = {k: v for k, v in module.model.state_dict().items() if k.startswith(prefix)}
        other = [k for k, v in encoder.items() if k not in state or state[k].shape != v.shape]
        if other:
            raise self.error("init_from", f"{path} holds another model's encoder: {len(other)} of its "
                                          f"{len(encoder)} tensors are missing or of another shape, e.g. {other[0]}")
        module.model.load_state_dict({k: state[k] for k in encoder}, strict=False)
        self.loaded = sorted(encoder)

    def results(self, module):
        return {"init_from": self.init_from, "init_tensors_loaded": len(self.loaded)}
