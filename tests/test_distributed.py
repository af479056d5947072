"""One run on several processes (stabilize.distributed): two gloo processes on CPU train the
1-process run's model, with one record, one console and one sweep summary; what cannot run on
several processes is refused before loading, one line each."""
import os
import subprocess
import sys

import pytest
import torch

from stabilize import config, results
from stabilize.data import GroupedByLengthSampler, SeededBatches, Shard
from stabilize.errors import ConfigError
from stabilize.train import train
from tests.conftest import ROOT, make_cfg

# 6 epochs of 63 rows, no dropout. SAME_MODEL: one global batch of all 63 rows an epoch, so its
# order does not matter: one process and two compute the same model up to rounding. 63 rows
# split 32/31 (each process's loss weighed by its rows); 752 validation rows in 24 batches of 32,
# 12 on each process.
RUN = ["debug=tiny", "task=stsb", "data.train_size=63", "optim.max_steps=null", "optim.max_epochs=6", "eval.times=3",
       "optim.lr=1e-3", "trainer.accelerator=cpu", "+model.random_config.hidden_dropout_prob=0",
       "+model.random_config.attention_probs_dropout_prob=0"]
SAME_MODEL = [*RUN, "optim.batch_size=64"]
TWO = ["trainer.devices=2", "trainer.strategy=ddp"]


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "STABILIZE_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "stabilize.train", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)


def _same_run(one: dict, two: dict) -> None:
    assert two["status"] == one["status"] and two["steps"] == one["steps"] == 6 and two["epochs"] == 6
    assert [h["step"] for h in two["history"]] == [h["step"] for h in one["history"]] == [2, 4, 6]
    for key in ("val", "test", "test_last"):
        assert two[key] == pytest.approx(one[key], abs=1e-3), key
    assert [h["val"] for h in two["history"]] == pytest.approx([h["val"] for h in one["history"]], abs=1e-3)


def test_two_processes_in_a_sweep_train_the_one_process_model(tmp_path):
    # the batch-16 run comes second in the same rank-0 process: a fresh process group, fresh ranks;
    # it takes the 4 global batches an epoch it announces (2 x 8 rows), not 2 of a halved epoch
    proc = _cli(tmp_path, "-m", *RUN, *TWO, "optim.batch_size=64,16", "checkpoint_minutes=0",
                f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("[stabilize] sweep ") == 1 and "this launch:  2 runs: 2 ok" in out  # one summary
    assert "6 steps (6.00 epochs); 2 processes of 32 rows a batch" in out
    assert "24 steps (6.00 epochs); 2 processes of 8 rows a batch" in out
    assert out.count("[stabilize] stsb: 63 train") == 2 and out.count("[stabilize] ok ") == 2  # rank 1 is silent
    folders = sorted(p.parent for p in (tmp_path / "sweep").rglob(results.RESULTS))
    assert len(folders) == 2
    for folder in folders:  # rank 0's files only: no rank log, the resume checkpoint cleared
        assert sorted(p.name for p in folder.iterdir()) == [".hydra", results.RESULTS, results.WEIGHT_CHANGE]
    two = {r["config"]["optim"]["batch_size"]: r for r in map(results.read, (f / results.RESULTS for f in folders))}
    assert two[16]["steps"] == 24 and two[16]["epochs"] == 6 and [h["step"] for h in two[16]["history"]] == [8, 16, 24]
    assert two[64]["config"]["trainer"]["strategy"] == "ddp"
    _same_run(train(make_cfg(tmp_path / "one", *SAME_MODEL)), two[64])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_two_gpus_train_the_one_gpu_model(tmp_path):
    gpu = [o for o in SAME_MODEL if not o.startswith("trainer.accelerator")]
    gpu += ["trainer=gpu", "trainer.precision=32-true"]
    proc = _cli(tmp_path, *gpu, *TWO, "hydra.run.dir=two")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _same_run(train(make_cfg(tmp_path / "one", *gpu)), results.read(tmp_path / "two" / results.RESULTS))


@pytest.mark.parametrize("overrides, line", [
    (["method=lpft"], "method.strategies.lpft: LPFT is refused on trainer.devices=2: each process would probe"),
    (["method=gradual_unfreeze"], "method.strategies.gradual_unfreeze: GradualUnfreezing is refused on "
                                  "trainer.devices=2: it freezes blocks epoch by epoch"),
    (["trainer.strategy=ddp_spawn"], "trainer.strategy: 'ddp_spawn' on 2 devices: its processes train a copy"),
    (["optim.batch_size=15"], "optim.batch_size: 15 does not divide over trainer.devices=2 processes"),
    (["trainer.devices=auto"], "trainer.devices: 'auto' is not a number of devices"),
])
def test_what_cannot_run_on_several_processes_is_refused_in_one_line(tmp_path, overrides, line):
    cfg = make_cfg(tmp_path, *TWO, *overrides)
    with pytest.raises(ConfigError) as e:
        config.validate(cfg)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(line)


@pytest.mark.parametrize("n, grouped", [(37, False), (37, True), (33, False)])
def test_the_processes_shares_make_up_every_global_batch(n, grouped):
    lengths = torch.randint(3, 128, (n,), generator=torch.Generator().manual_seed(0))

    def batches(epoch: int) -> SeededBatches:
        sampler = GroupedByLengthSampler(lengths, 8, mega=2, seed=5) if grouped else SeededBatches(n, 8, seed=5)
        sampler.set_epoch(epoch)
        return sampler

    orders = []
    for epoch in (0, 1):
        torch.manual_seed(epoch)  # the global generator, which differs between processes, is not drawn from
        whole, shares = list(batches(epoch)), [list(Shard(batches(epoch), rank, 2)) for rank in (0, 1)]
        assert sorted(i for b in whole for i in b) == list(range(n)) and len(shares[0]) == len(shares[1]) == len(whole)
        for b, zero, one in zip(whole, *shares):
            assert (zero, one) == (b[0::2], b[1::2]) if len(b) > 1 else (zero, one) == (b, b)
        orders.append(whole)
    assert orders[0] != orders[1]  # a new shuffle every epoch
