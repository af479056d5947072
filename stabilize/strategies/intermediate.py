"""Intermediate-task fine-tuning (study A, section 5): start from an earlier run's weights.

The earlier run must have saved its model (`save_model=true` writes `model.pt` in its run
folder). Every tensor whose name and shape match is loaded; a head whose label count differs
(MNLI -> RTE) stays new.
"""
from pathlib import Path

import torch

from stabilize.strategies.base import Strategy

MODEL_FILE = "model.pt"


class Intermediate(Strategy):
    def __init__(self, init_from: str):
        self.init_from = init_from
        self.loaded: list[str] = []

    def setup(self, module):
        path = Path(self.init_from) / MODEL_FILE
        if not path.is_file():
            raise self.error("init_from", f"no {MODEL_FILE} in {self.init_from} "
                                          f"(run the first stage with save_model=true)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = module.model.state_dict()
        matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not any(k.startswith(module.model.base_model_prefix + ".") for k in matching):
            raise self.error("init_from", f"{path} holds no encoder weights of this model")
        module.model.load_state_dict(matching, strict=False)
        self.loaded = sorted(matching)

    def results(self, module):
        return {"init_from": self.init_from, "init_tensors_loaded": len(self.loaded)}
