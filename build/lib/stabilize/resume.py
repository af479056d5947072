"""Resuming an interrupted run at its last epoch boundary, with the result it would have had.

A run still training `checkpoint_minutes` after it started writes `resume.ckpt` in its folder as
an epoch starts (then at most that often), with `resume.json`, the config it belongs to. When
the run is launched again with the same config (a sweep relaunched after a kill, a preemption, a
session's end), it continues from there instead of from the start; a finished run deletes both.

Exact, not approximate: next to what Lightning saves (weights, optimizer, schedule, loop
position), the checkpoint holds the module's evaluation history and kept best state, the
strategies' own state (`Strategy.state_dict`) and every random generator's state, restored
before the next epoch draws its shuffle, so the resumed run gives the numbers of the
uninterrupted one (tests/test_resume.py). What a strategy's `on_train_start` made is restored
from its state, and the hook is not called again. Files a logger wrote are not: the csv logger's
`metrics.csv` starts again at the resumed epoch. On several processes (stabilize.distributed)
rank 0 decides when and writes the files; every process takes part in Lightning's
`save_checkpoint` (its hooks, a barrier), and each keeps its own generators' state.
"""
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from stabilize import distributed, results


class Checkpointer(pl.Callback):
    """Writes the resume checkpoint as an epoch starts, once `minutes` have passed since the run
    started or last wrote one. At an epoch's start, not its end: Lightning resumes a checkpoint
    written there with that epoch's hooks called and its shuffle drawn as in the uninterrupted run."""

    def __init__(self, run_dir: Path, config: dict, minutes: float):
        self.run_dir, self.config, self.minutes = Path(run_dir), config, minutes
        self.last = time.monotonic()

    def on_train_epoch_start(self, trainer, module):
        due = trainer.current_epoch > 0 and time.monotonic() - self.last >= 60 * self.minutes
        if not distributed.broadcast(due):  # rank 0's clock: every process saves, or none
            return
        # What Lightning's epoch loop is about to do for the new epoch, done before saving, so that
        # the checkpoint counts no batch of it (else the resumed epoch would start at its end);
        # tests/test_resume.py fails if a Lightning version changes this.
        loop = trainer.fit_loop.epoch_loop
        loop.batch_progress.reset_on_run()
        loop.scheduler_progress.reset_on_run()
        loop.automatic_optimization.optim_progress.reset_on_run()
        loop.val_loop.batch_progress.total.reset()
        save(trainer, self.run_dir, self.config)
        self.last = time.monotonic()


def save(trainer, run_dir: Path, config: dict) -> None:
    """Write the run folder's resume checkpoint and the config it belongs to (called by every
    process of a run on several devices: Lightning writes from rank 0, then waits for all)."""
    main, tmp = distributed.is_main(), run_dir / (results.CHECKPOINT + ".tmp")
    if main:
        results.write_json_atomic(run_dir / results.CHECKPOINT_CONFIG, config)
    trainer.save_checkpoint(tmp)
    if main:
        os.replace(tmp, run_dir / results.CHECKPOINT)  # a kill mid-write leaves the last one whole


def checkpoint(run_dir: Path, config: dict) -> Path | None:
    """The run folder's resume checkpoint if it belongs to this config, else None."""
    path, saved = Path(run_dir) / results.CHECKPOINT, Path(run_dir) / results.CHECKPOINT_CONFIG
    if not (path.is_file() and saved.is_file()):
        return None
    try:
        return path if results.same_config(json.loads(saved.read_text()), config) else None
    except (OSError, ValueError):
        return None


def clear(run_dir: Path) -> None:
    """Delete the resume checkpoint of a run that has finished."""
    for name in (results.CHECKPOINT, results.CHECKPOINT_CONFIG, results.CHECKPOINT + ".tmp"):
        (Path(run_dir) / name).unlink(missing_ok=True)


def rng_state() -> dict:
    """Every generator a run draws from (torch's, CUDA's, numpy's, Python's), in types that
    `torch.load(weights_only=True)` reads back."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
