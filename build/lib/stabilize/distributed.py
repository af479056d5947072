"""One run on several devices of one node: Lightning's DDP, one process per device.

`stabilize-train ... trainer.devices=N trainer.strategy=ddp`: the process that runs `train` is
rank 0; it alone prints and writes the run folder (`results.json`, the resume checkpoint,
weight_change.json). `launch` starts ranks 1..N-1 as `python -m stabilize.distributed`, each
handed the run's resolved config and seed on stdin: not Hydra's command line, which inside a
`-m` sweep would start the whole sweep again, and a drawn seed must be every rank's. Their
output is dropped; a rank that fails leaves its traceback in `rank<k>.log` in the run folder.
Lightning, finding LOCAL_RANK set, starts no process itself.

`optim.batch_size` is the global batch: every process draws the same global batches
(stabilize.data.Shard) and trains on its share of each. The collectives below do nothing on one
process; every rank calls them at the same points.
"""
import contextlib
import ctypes
import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import ListConfig, OmegaConf

from stabilize.errors import is_int

STRATEGIES = ("auto", "ddp")  # trainer.strategy values a run on several devices accepts
WAIT_SECONDS = 120  # how long rank 0, done, waits for the other ranks to exit


def processes(trainer) -> int | None:
    """The processes a `trainer` config starts: its device count (an int, or a list's length);
    None when it does not name one (`auto`, -1, a string)."""
    devices = trainer.devices
    if is_int(devices) and devices >= 1:
        return devices
    if isinstance(devices, (list, ListConfig)) and devices:
        return len(devices)
    return None


def problems(cfg, strategies) -> list[str]:
    """What stops `cfg` from running on its devices, one line each naming the key."""
    t, n = cfg.trainer, processes(cfg.trainer)
    if n is None:
        return [f"trainer.devices: {t.devices!r} is not a number of devices (an int >= 1, or a list of indices)"]
    if n == 1:
        return []
    found, strategy = [], t.get("strategy", "auto")
    if strategy not in STRATEGIES:
        why = ("its processes train a copy of the model that the scoring process never sees"
               if "spawn" in str(strategy) or "fork" in str(strategy) else "only ddp is supported")
        found.append(f"trainer.strategy: {strategy!r} on {n} devices: {why}; use trainer.strategy=ddp")
    if t.get("num_nodes", 1) != 1:
        found.append(f"trainer.num_nodes: {t.num_nodes!r}: a run uses one node (trainer.devices on it)")
    if is_int(cfg.optim.batch_size) and cfg.optim.batch_size % n:
        found.append(f"optim.batch_size: {cfg.optim.batch_size} does not divide over trainer.devices={n} "
                     f"processes (it is the global batch, split evenly)")
    for s in strategies:
        if s.single_process_only:
            found.append(f"method.strategies.{s.key}: {type(s).__name__} is refused on trainer.devices={n}: "
                         f"{s.single_process_only}")
    return found


# ---------------------------------------------------------------- ranks and collectives
def _on() -> bool:
    return dist.is_available() and dist.is_initialized()


def world() -> int:
    return dist.get_world_size() if _on() else 1


def rank() -> int:
    return dist.get_rank() if _on() else int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return rank() == 0


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks, in place."""
    if world() > 1:
        dist.all_reduce(tensor)
    return tensor


def broadcast(obj):
    """Rank 0's `obj`, on every rank."""
    if world() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj) -> list:
    """Every rank's `obj` (tensors, numbers, strings and containers of them), in rank order, on every rank."""
    if world() == 1:
        return [obj]
    buffer = io.BytesIO()
    torch.save(obj, buffer)  # all_gather_object's own pickling fails on some tensors (torch 2.13's RNG state)
    out = [None] * world()
    dist.all_gather_object(out, buffer.getvalue())
    return [torch.load(io.BytesIO(b), weights_only=True) for b in out]


@torch.no_grad()
def check_same_weights(model: torch.nn.Module, step: int) -> None:
    """RuntimeError unless every process holds the same weights (a strategy that changed them
    apart, e.g. with masks drawn in one process only, would make them drift silently)."""
    total = sum(p.double().sum() for p in model.parameters())
    if len(set(gather(float(total)))) > 1:
        raise RuntimeError(f"the processes' weights differ at step {step}: a strategy of the method "
                           f"updates them apart (see Strategy.single_process_only)")


def gather_batches(own: list) -> list:
    """The outputs of every batch in batch order, when rank k computed batches k, k + world, ..."""
    parts = gather(own)
    return [parts[i % len(parts)][i // len(parts)] for i in range(sum(map(len, parts)))]


# ---------------------------------------------------------------- launching
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def launch(cfg, config: dict, seed: int):
    """Around rank 0's run: ranks 1..N-1 started, then waited for (killed if rank 0 fails);
    RuntimeError naming its log if one of them failed."""
    n = processes(cfg.trainer)
    if n == 1:
        yield
        return
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(n), "NODE_RANK": "0"}
    if cfg.threads is not None:  # else Lightning sets cores // N threads per process
        env["OMP_NUM_THREADS"] = str(cfg.threads)
    payload, children = json.dumps({"config": config, "seed": seed, "rank0": os.getpid()}), []
    for k in range(1, n):
        log = run_dir / f"rank{k}.log"
        with open(log, "w") as err:
            child = subprocess.Popen([sys.executable, "-m", "stabilize.distributed"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=err, text=True,
                                     env={**os.environ, **env, "LOCAL_RANK": str(k)})
        child.stdin.write(payload)
        child.stdin.close()
        children.append((child, log))
    saved = {key: os.environ.get(key) for key in [*env, "LOCAL_RANK"]}
    os.environ.update(env, LOCAL_RANK="0")
    try:
        yield
    except BaseException as e:
        codes = [child.poll() for child, _ in children]  # the ranks that ended before rank 0 failed
        for child, _ in children:
            child.kill()
        failed = _end(children, saved)
        failed = [f for f in failed if codes[f[0] - 1] is not None]
        if failed and isinstance(e, Exception):  # rank 0's error is then most likely the lost peer
            raise RuntimeError(_failure(n, *failed[0])) from e
        raise
    failed = _end(children, saved)
    if failed:
        raise RuntimeError(_failure(n, *failed[0]))


def _end(children, saved: dict) -> list[tuple[int, int, Path]]:
    """Wait for the other ranks, close the process group, restore the environment; the ranks
    that failed, with their exit code and log (the others' logs are deleted)."""
    codes = []
    for child, _ in children:
        try:
            codes.append(child.wait(WAIT_SECONDS))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    if _on():
        dist.destroy_process_group()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    failed = []
    for k, ((_, log), code) in enumerate(zip(children, codes), 1):
        if code in (0, -signal.SIGKILL):  # done, or stopped because rank 0 failed
            log.unlink(missing_ok=True)
        else:
            failed.append((k, code, log))
    return failed


def _failure(n: int, k: int, code: int, log: Path) -> str:
    return f"rank {k} of {n} exited with code {code}; its traceback: {log}"


def main() -> None:
    """Rank LOCAL_RANK > 0 of a run that rank 0 launched: train and score, record nothing."""
    from stabilize import config, console, train  # here: train imports this module
    from stabilize.module import Diverged

    _die_with_parent()
    payload = json.load(sys.stdin)
    if os.getppid() != payload["rank0"]:  # rank 0 died before the line above
        sys.exit(1)
    cfg = OmegaConf.create(payload["config"])
    with console.quiet(cfg.get("verbose", False)):
        run = train.set_up(cfg, config.validate(cfg), payload["seed"])
        try:
            train.fit(run)
            train.score(run)
        except Diverged:  # every rank stops at the same evaluation; rank 0 records it
            pass


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when rank 0 dies (killed, preempted), where it could
    wait in a collective or its teardown for minutes. Elsewhere a no-op."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


if __name__ == "__main__":
    main()
