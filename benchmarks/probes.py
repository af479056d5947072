"""What the benchmark adds to a stabilize run, as `train`'s arguments or a config's callback node."""
import time
from pathlib import Path

import pytorch_lightning as pl

from benchmarks.batches import combine, digest
from stabilize import results
from stabilize.module import FineTuner


class RunProbe(pl.Callback):
    """The wall time of the first training step and the hash of the batches, written to `path`
    when training ends (a `stabilize-train` process names it in a `callbacks` node)."""

    def __init__(self, path: str):
        self.path, self.first_step, self.digests = Path(path), None, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.first_step is None:
            self.first_step = time.time()
        self.digests.append(digest(batch))

    def on_train_end(self, trainer, pl_module):
        results.write_json_atomic(self.path, {"first_step": self.first_step, "steps": len(self.digests),
                                              "batches": combine(self.digests)})


class StepOnlyFineTuner(FineTuner):
    """Evaluation stubbed out (labels returned as predictions): per-step items time training only.

    The one-time hooks are timed, in seconds, in `hook_seconds`: `setup` is the constructor,
    which runs every strategy's `setup` (NoisyTune's noise; for `standard` it is the baseline),
    `on_train_start` the strategies' work before the first batch (ChildTuning-D's Fisher pass,
    LP-FT's probe)."""

    def __init__(self, *args, **kwargs):
        t0 = time.perf_counter()
        super().__init__(*args, **kwargs)
        self.hook_seconds = {"setup": time.perf_counter() - t0}

    def on_train_start(self):
        t0 = time.perf_counter()
        super().on_train_start()
        self.hook_seconds["on_train_start"] = time.perf_counter() - t0

    def predict_split(self, split):
        labels = self.trainer.datamodule.splits[split].labels
        return labels.clone(), labels.clone()
