"""The gradient monitor writes every tensor's norm at the expected steps, and per-layer changes."""
import json
import math

import torch

from stabilize.monitor import MONITOR_FILE
from stabilize.train import train


def test_monitor_file_has_every_tensor_and_step(cfg_factory, tmp_path):
    r = train(cfg_factory("callbacks=grad_monitor", "callbacks.grad_monitor.every_n_steps=3",
                          "optim.max_steps=7", "eval.times=2"))
    assert r["status"] in ("ok", "failed"), r["error"]
    m = json.loads((tmp_path / "run" / MONITOR_FILE).read_text())
    g = m["grad_norm"]
    assert g["steps"] == [0, 3, 6]
    assert len(g["tensors"]) == 41 and "classifier.weight" in g["tensors"]
    assert all(len(row) == 41 and all(math.isfinite(v) and v >= 0 for v in row) for row in g["values"])
    assert any(v > 0 for v in g["values"][0])
    c = m["rms_change"]
    assert c["steps"] == [4, 7] and c["layers"] == ["embeddings", "layer.0", "layer.1", "pooler", "head"]
    assert all(v > 0 for row in c["values"] for v in row)  # everything trains under `standard`


def test_monitor_rms_change_is_the_largest_tensor_rms(cfg_factory, tmp_path):
    """Frozen layers (gradual unfreezing, stage 0) show exactly zero change."""
    r = train(cfg_factory("callbacks=grad_monitor", "method=gradual_unfreeze", "optim.max_steps=null",
                          "optim.max_epochs=1", "eval.times=3", "data.train_size=64"))
    m = json.loads((tmp_path / "run" / MONITOR_FILE).read_text())
    first = dict(zip(m["rms_change"]["layers"], m["rms_change"]["values"][0]))
    assert first["embeddings"] == 0 and first["layer.0"] == 0 and first["layer.1"] > 0 and first["head"] > 0
    assert r["status"] in ("ok", "failed")
    assert torch.tensor(m["grad_norm"]["values"][0]).isnan().any()  # frozen tensors have no gradient
