"""Per-step sessions: participants taking turns step by step, each in its own process.

Each participant (the bare loop, or `stabilize.train.train(cfg)` for one variant) runs in a
process forked from a multiprocessing fork server that has imported torch, Lightning,
transformers and stabilize once, so starting one costs little and none re-imports. The parent
hands out turns over pipes: a participant runs from the moment it gets the turn to its next
step start (its `gate`), then reports and waits. Every timed interval thus has the machine to
itself as far as this benchmark goes, and load from other processes falls on all participants
alike. Setup phases take turns too.

Processes rather than threads: a thread that runs torch ops gets its own OpenMP team, and with
several teams in one process the OpenMP runtime stops spinning at barriers; every parallel
region then waits for a sleeping thread to be scheduled, which makes steps several times
slower on a loaded machine (measured: 0.4 s -> 2..8 s) and hides framework overhead.
"""
import multiprocessing as mp
import os
import time

import pytorch_lightning as pl

from benchmarks.batches import digest

PRELOAD = ["torch", "pytorch_lightning", "transformers", "hydra", "stabilize.train", "benchmarks.bare",
           "benchmarks.probes", "benchmarks.session"]
_CONTEXT = None


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(PRELOAD)
    return _CONTEXT


class PipeClock:
    """The participant's step timer; `gate(batch)` ends one step and waits for the next turn.

    `intervals` are step start to step start; `setup` is the first turn up to the first step,
    `tail` the last step start to the end of the run (last step, final scoring, results)."""

    def __init__(self, conn, sync=None):
        self.conn, self.sync = conn, sync
        self.intervals: list[float] = []
        self.digests: list[str | None] = []
        self.setup = self.tail = None
        self._t = None

    def begin(self) -> None:
        self.conn.recv()  # the first turn: set up while no one else runs
        self._t0 = time.perf_counter()

    def end(self) -> None:
        if self.sync is not None:
            self.sync()
        if self._t is not None:
            self.tail = time.perf_counter() - self._t

    def gate(self, batch) -> None:
        if self.sync is not None:
            self.sync()
        now = time.perf_counter()
        if self._t is not None:
            self.intervals.append(now - self._t)
        else:
            self.setup = now - self._t0
        self.digests.append(digest(batch))
        self.conn.send(("ready",))
        self.conn.recv()
        self._t = time.perf_counter()


class GateCallback(pl.Callback):
    """Ends a step of the participant's turn at every step start (its clock's `gate`)."""

    def __init__(self, clock: PipeClock):
        self.clock, self.module = clock, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.module = pl_module  # its `hook_seconds` are read when the run ends
        self.clock.gate(batch)


def participant(conn, spec: dict) -> None:
    """Child process body. spec: kind ('bare' | 'stabilize'), cfg or settings, log, cache;
    `whole`: the full run with its evaluations (the bare loop tokenizing afresh), else training only."""
    log = open(spec["log"], "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    import torch

    from benchmarks.context import silence_libraries
    from benchmarks.processes import vm_hwm

    silence_libraries()
    clock = PipeClock(conn, torch.cuda.synchronize if spec.get("cuda") else None)
    error, record, whole, gate = None, {}, spec.get("whole", False), GateCallback(clock)
    clock.begin()
    try:
        if spec["kind"] == "bare":
            from benchmarks import bare

            record = bare.train(spec["settings"], gate=clock.gate, evaluate=whole, sync_loss=whole,
                                cache_dir=None if whole else spec["cache"])
        else:
            from benchmarks.probes import StepOnlyFineTuner
            from stabilize.config import register_resolvers
            from stabilize.module import FineTuner
            from stabilize.train import train

            register_resolvers()  # the config comes unresolved from the parent
            record = train(spec["cfg"], callbacks=[gate], module_class=FineTuner if whole else StepOnlyFineTuner)
            if record.get("status") == "error":
                error = record.get("error")
    except BaseException as e:  # reported to the parent
        error = f"{type(e).__name__}: {e}"
    clock.end()
    scores = {k: record.get(k) for k in ("val", "test", "test_last")}
    scores["history"] = [h["val"] for h in record.get("history") or []]
    conn.send(("done", {"intervals": clock.intervals, "digests": clock.digests, "error": error,
                        "setup": clock.setup, "tail": clock.tail, "scores": scores,
                        "hooks": getattr(gate.module, "hook_seconds", None),
                        "peak_rss_mib": vm_hwm(os.getpid())}))
    conn.close()


def run_session(specs: dict) -> dict:
    """Run participants {name: spec} in turn, one step at a time; {name: {intervals, digests, error}}."""
    ctx = _context()
    procs, conns = {}, {}
    for name, spec in specs.items():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=participant, args=(child, spec), name=f"bench-{name}", daemon=True)
        p.start()
        child.close()
        procs[name], conns[name] = p, parent
    alive, results = list(specs), {}
    while alive:
        for name in list(alive):
            try:
                conns[name].send("go")
                msg = conns[name].recv()
            except (EOFError, OSError, BrokenPipeError):
                msg = ("done", {"intervals": [], "digests": [], "error": f"participant process died (see {specs[name]['log']})"})
            if msg[0] == "done":
                results[name] = msg[1]
                alive.remove(name)
    for p in procs.values():
        p.join(timeout=60)
    return results
