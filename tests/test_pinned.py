"""A seeded `standard` run of the tiny model gives the numbers pinned before the design refactor
(tests/pinned/standard_tiny.json, all four vendored tasks, taken with the code of commit ed2c944):
a change that alters results fails here."""
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl

from stabilize.train import train
from tests.conftest import make_cfg

PINNED = json.loads((Path(__file__).parent / "pinned" / "standard_tiny.json").read_text())


class LossCurve(pl.Callback):
    """The training loss of every step, as the module returned it."""

    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


@pytest.mark.parametrize("task", sorted(PINNED))
def test_seeded_standard_run_gives_the_pinned_numbers(tmp_path, task):
    pinned, curve = PINNED[task], LossCurve()
    record = train(make_cfg(tmp_path, *pinned["overrides"]), callbacks=[curve])
    assert record["error"] is None
    assert curve.losses == pytest.approx(pinned["losses"], abs=1e-4)
    assert [h["step"] for h in record["history"]] == [h["step"] for h in pinned["history"]]
    assert [h["val"] for h in record["history"]] == pytest.approx([h["val"] for h in pinned["history"]], abs=1e-4)
    for key in ("val", "test", "test_last", "majority", "steps", "epochs"):
        assert record[key] == pytest.approx(pinned[key], abs=1e-4), key
