"""An interrupted run resumes at its last checkpointed epoch start (stabilize.resume) with the
numbers of the run that was never interrupted, for every strategy that holds state or draws
random numbers."""
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from stabilize import results
from stabilize.errors import ConfigError
from stabilize.train import train
from tests.conftest import make_cfg

# 4 steps an epoch, 3 epochs (gradual_unfreeze: 5), an evaluation at steps 4, 8 and 12, a learning
# rate at which the tiny model moves;
# checkpoint_minutes=0: a checkpoint as every epoch after the first starts.
SETTING = ("data.train_size=32", "optim.batch_size=8", "optim.lr=1e-3", "optim.max_steps=12", "eval.times=3",
           "checkpoint_minutes=0")
METHODS = ["standard", "bertadam", "reinit", "llrd", "mixout", "prior_wd", "gradual_unfreeze", "noisytune",
           "childtuning_f", "childtuning_d", "r3f", "ema", "swa", "lora", "lpft"]
NOT_COMPARED = ("seconds", "resumed_at", "config")  # config: the run folders differ


class Interrupt(BaseException):
    """What a kill does to a run: it ends, whatever it was doing."""


class InterruptAfterEpoch(pl.Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise Interrupt


def interrupted_then_relaunched(cfg, epoch=1) -> dict:
    with pytest.raises(Interrupt):
        train(cfg, callbacks=[InterruptAfterEpoch(epoch)])
    before = torch.load(Path(cfg.paths.output_dir) / results.CHECKPOINT, weights_only=True)["stabilize"]["seconds"]
    record = train(cfg)
    assert record["seconds"] >= round(before, 2) > 0  # the first launch's time up to the checkpoint counts
    return record


@pytest.mark.parametrize("method", METHODS + ["swa method.strategies.swa.swa_lr=1e-3 method.strategies.swa.start=0.1",
                                              "lpft method.strategies.lpft.probe=gradient",
                                              "standard optim.eps_placement=before_correction optim.weight_decay=0.01",
                                              "standard data.group_by_length=true"])
def test_a_resumed_run_gives_the_uninterrupted_numbers(tmp_path, method):
    task = "rte" if method == "r3f" else "stsb"  # STS-B's Spearman moves at every step; R3F classifies
    overrides = (*SETTING, f"task={task}", *f"method={method}".split())
    whole = train(make_cfg(tmp_path / "whole", *overrides))
    resumed = interrupted_then_relaunched(make_cfg(tmp_path / "resumed", *overrides))
    assert resumed["resumed_at"] == [4] and whole["resumed_at"] is None
    assert task == "rte" or len({h["val"] for h in whole["history"]}) == 3  # the numbers move
    assert {k: v for k, v in resumed.items() if k not in NOT_COMPARED} == \
        {k: v for k, v in whole.items() if k not in NOT_COMPARED}
    assert json.loads((tmp_path / "resumed" / "run" / results.WEIGHT_CHANGE).read_text()) == \
        json.loads((tmp_path / "whole" / "run" / results.WEIGHT_CHANGE).read_text())
    assert not (tmp_path / "resumed" / "run" / results.CHECKPOINT).exists()  # a finished run deletes it


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path, capsys):
    with pytest.raises(Interrupt):
        train(make_cfg(tmp_path, *SETTING, "seed=1"), callbacks=[InterruptAfterEpoch(1)])
    assert (tmp_path / "run" / results.CHECKPOINT).is_file()
    record = train(make_cfg(tmp_path, *SETTING, "seed=2"))
    assert record["resumed_at"] is None and record["steps"] == 12
    assert "resume from" not in capsys.readouterr().out


def test_no_checkpoint_before_the_minutes_have_passed(tmp_path):
    with pytest.raises(Interrupt):
        train(make_cfg(tmp_path, *SETTING[:-1], "checkpoint_minutes=10"), callbacks=[InterruptAfterEpoch(1)])
    assert not (tmp_path / "run" / results.CHECKPOINT).exists()
    assert train(make_cfg(tmp_path, *SETTING[:-1], "checkpoint_minutes=10"))["resumed_at"] is None


def test_checkpoint_minutes_must_be_a_number(tmp_path):
    record = train(make_cfg(tmp_path, "checkpoint_minutes=soon"))
    assert record["status"] == results.ERRORED and "checkpoint_minutes: 'soon'" in record["error"]
    with pytest.raises(ConfigError, match="checkpoint_minutes: -1"):
        from stabilize import config
        config.validate(make_cfg(tmp_path, "checkpoint_minutes=-1"))


def test_writing_checkpoints_changes_no_number(tmp_path):
    never = train(make_cfg(tmp_path / "never", *SETTING[:-1], "task=stsb", "checkpoint_minutes=null"))
    always = train(make_cfg(tmp_path / "always", *SETTING, "task=stsb"))
    assert {k: v for k, v in never.items() if k not in NOT_COMPARED} == \
        {k: v for k, v in always.items() if k not in NOT_COMPARED}
