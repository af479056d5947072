"""At most `device.jobs_per_gpu` runs per GPU in a parallel local sweep (`hydra/launcher=joblib`).

Joblib starts `n_jobs` runs at once and every one would pick GPU 0. Instead each run claims a
slot before it builds its Trainer: one of the least-loaded GPUs that still has a free slot,
waiting while every GPU is full, and trains on that GPU (`devices=[gpu]`, which also works in a
reused worker process where CUDA is already initialised). A slot is an exclusive `flock` on a
file in a folder of the temp dir keyed by the sweep folder: the kernel drops the lock when the
run's process ends, so the slot of a crashed or killed run is free again.

Elsewhere `claim` changes nothing: another launcher (basic: one run at a time; Slurm assigns
GPUs itself), no CUDA or one GPU (there `hydra.launcher.n_jobs` alone says how many runs share
it), a CPU run, or `trainer.devices` other than 1.
"""
import hashlib
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


POLL_SECONDS = 0.5
GPU_ACCELERATORS = ("auto", "gpu", "cuda")


def sweep_slots_dir() -> Path | None:
    """The slot folder of this sweep when its runs are launched by joblib, else None."""
    try:
        hydra = HydraConfig.get()
    except ValueError:  # no Hydra run: a config composed in a test or a notebook
        return None
    if "joblib" not in str(hydra.launcher.get("_target_", "")).lower():
        return None
    key = hashlib.sha256(str(Path(hydra.sweep.dir).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"stabilize-gpus-{key}"


def acquire(slots_dir: Path, gpus: int, per_gpu: int) -> tuple[int, IO] | None:
    """One try: `(gpu, open slot file holding its lock)` for a GPU with the most free slots
    (the lowest index among equals), or None when every GPU runs `per_gpu` jobs."""
    import fcntl  # POSIX only, and only needed where a claim is made

    with open(slots_dir / "claim.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one claimer at a time counts the free slots
        free: dict[int, list[IO]] = {}
        for gpu in range(gpus):
            for slot in range(per_gpu):
                handle = open(slots_dir / f"gpu{gpu}.slot{slot}", "w")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # held by a running job
                    handle.close()
                    continue
                free.setdefault(gpu, []).append(handle)
        best = max(free, key=lambda g: (len(free[g]), -g), default=None)
        kept = free[best].pop() if best is not None else None
        for handles in free.values():  # releases the slots only probed
            for handle in handles:
                handle.close()
    return None if best is None else (best, kept)


@contextmanager
def claim(cfg: DictConfig, device_count: int | None = None, slots_dir: Path | None = None):
    """Yields what the Trainer's `devices` should be: `[gpu]`, whose slot is held until the block
    ends, or `cfg.trainer.devices` unchanged where no claim is needed. `device_count` (default:
    the CUDA devices visible) and `slots_dir` (default: the joblib sweep's) are for tests."""
    per_gpu = cfg.device.jobs_per_gpu  # checked by config.validate
    slots_dir = slots_dir or sweep_slots_dir()
    gpus = torch.cuda.device_count() if device_count is None else device_count
    if (slots_dir is None or gpus < 2 or cfg.trainer.devices != 1
            or str(cfg.trainer.accelerator) not in GPU_ACCELERATORS):
        yield cfg.trainer.devices
        return
    slots_dir.mkdir(parents=True, exist_ok=True)
    slot = acquire(slots_dir, gpus, per_gpu)
    if slot is None:
        print(f"[stabilize] waiting for a GPU: all {gpus} run device.jobs_per_gpu={per_gpu} jobs")
    while slot is None:
        time.sleep(POLL_SECONDS)
        slot = acquire(slots_dir, gpus, per_gpu)
    gpu, handle = slot
    print(f"[stabilize] GPU {gpu} of {gpus}")
    try:
        yield [gpu]
    finally:
        handle.close()
