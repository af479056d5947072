"""GPU slots of a parallel local sweep, on a CPU: the GPU count is simulated (`device_count`)."""
import json
import multiprocessing
import os
import queue
import shutil
import signal
import time
from contextlib import ExitStack

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from stabilize import gpus
from stabilize.config import validate
from stabilize.errors import ConfigError
from tests.conftest import make_cfg

FORK = multiprocessing.get_context("fork")


def _cfg(jobs_per_gpu=1, devices=1, accelerator="auto"):
    return OmegaConf.create({"device": {"jobs_per_gpu": jobs_per_gpu},
                             "trainer": {"devices": devices, "accelerator": accelerator}})


def test_no_claim_where_none_is_needed(tmp_path):
    cfg = make_cfg(tmp_path)  # stabilize/conf/train.yaml: device.jobs_per_gpu=1; no Hydra run, so no joblib sweep
    assert cfg.device.jobs_per_gpu == 1
    slots = tmp_path / "slots"
    for case, kwargs in {"no joblib sweep": dict(cfg=cfg, device_count=4),
                         "no CUDA": dict(cfg=_cfg(), device_count=0, slots_dir=slots),
                         "one GPU": dict(cfg=_cfg(), device_count=1, slots_dir=slots),
                         "CPU run": dict(cfg=_cfg(accelerator="cpu"), device_count=4, slots_dir=slots),
                         "two devices a run": dict(cfg=_cfg(devices=2), device_count=4, slots_dir=slots)}.items():
        with gpus.claim(**kwargs) as devices:
            assert devices == kwargs["cfg"].trainer.devices, case
    assert not slots.exists()


def test_joblib_sweep_claims_in_a_folder_of_its_own(tmp_path, monkeypatch):
    def hydra(launcher, sweep):
        monkeypatch.setattr(HydraConfig.instance(), "cfg", OmegaConf.create(
            {"hydra": {"launcher": {"_target_": launcher}, "sweep": {"dir": str(tmp_path / sweep)}}}))
        return gpus.sweep_slots_dir()

    assert hydra("hydra._internal.core_plugins.basic_launcher.BasicLauncher", "a") is None
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    slots = hydra(joblib, "a")
    assert slots != hydra(joblib, "b") and slots == hydra(joblib, "a")
    try:
        with gpus.claim(_cfg(), device_count=2) as first, gpus.claim(_cfg(), device_count=2) as second:
            assert (first, second) == ([0], [1])
            assert slots.is_dir()
    finally:
        shutil.rmtree(slots, ignore_errors=True)


def test_least_loaded_gpu_first(tmp_path):
    cfg = _cfg(jobs_per_gpu=2)
    with ExitStack() as runs:
        claimed = [runs.enter_context(gpus.claim(cfg, device_count=3, slots_dir=tmp_path)) for _ in range(5)]
        assert claimed == [[0], [1], [2], [0], [1]]
        assert gpus.acquire(tmp_path, 3, 2)[0] == 2  # probing, then releasing: GPU 2 has the free slot
        with gpus.claim(cfg, device_count=3, slots_dir=tmp_path) as sixth:
            assert sixth == [2]
            assert gpus.acquire(tmp_path, 3, 2) is None  # full
    with gpus.claim(cfg, device_count=3, slots_dir=tmp_path) as after:
        assert after == [0]  # every slot was released


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "'1'"])
def test_bad_jobs_per_gpu(tmp_path, value):
    with pytest.raises(ConfigError, match=r"^device\.jobs_per_gpu: "):
        validate(make_cfg(tmp_path, f"device.jobs_per_gpu={value}"))


def _job(slots_dir, log, start, hold_s):
    start.wait()
    with gpus.claim(_cfg(jobs_per_gpu=2), device_count=2, slots_dir=slots_dir) as devices:
        began = time.monotonic()
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(json.dumps({"gpu": devices[0], "began": began, "ended": time.monotonic()}) + "\n")


def test_parallel_jobs_never_exceed_the_limit(tmp_path):
    """7 processes claim at once on 2 GPUs × 2 slots: never more than 2 on a GPU, 4 at once in all."""
    log, start = tmp_path / "log.jsonl", FORK.Event()
    jobs = [FORK.Process(target=_job, args=(tmp_path / "slots", log, start, 1.0)) for _ in range(7)]
    (tmp_path / "slots").mkdir()
    for p in jobs:
        p.start()
    start.set()
    for p in jobs:
        p.join(60)
        assert p.exitcode == 0
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == 7

    def running(at, gpu=None):
        return sum(r["began"] <= at < r["ended"] and gpu in (None, r["gpu"]) for r in runs)

    moments = [r["began"] for r in runs]
    assert max(running(t, gpu) for t in moments for gpu in (0, 1)) == 2
    assert max(running(t) for t in moments) == 4  # no GPU idles while the other is full


def _hold(slots_dir, claimed, hold_s):
    with gpus.claim(_cfg(), device_count=2, slots_dir=slots_dir) as devices:
        claimed.put((os.getpid(), devices[0]))
        time.sleep(hold_s)


def test_slot_of_a_killed_job_is_reused(tmp_path):
    claimed = FORK.Queue()
    holders = [FORK.Process(target=_hold, args=(tmp_path, claimed, 60)) for _ in range(2)]
    waiter = FORK.Process(target=_hold, args=(tmp_path, claimed, 0))
    try:
        for p in holders:
            p.start()
        held = dict(claimed.get(timeout=30) for _ in holders)
        assert sorted(held.values()) == [0, 1]
        waiter.start()
        with pytest.raises(queue.Empty):  # both GPUs full: it waits
            claimed.get(timeout=1.5)
        victim = holders[1]
        os.kill(victim.pid, signal.SIGKILL)
        assert claimed.get(timeout=30) == (waiter.pid, held[victim.pid])
        waiter.join(30)
        assert waiter.exitcode == 0
    finally:
        for p in (*holders, waiter):
            if p.is_alive():
                p.kill()
            p.join()
