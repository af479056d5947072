"""Preemption that loses nothing: a stop signal checkpoints the run, records it and passes the signal on.

Slurm sends SIGTERM to a job it preempts or cancels, and the `--signal` of the job (submitit's SIGUSR2,
`signal_delay_s` before the time limit) before it times out. For the duration of a run (`train`),
`Stop` installs a handler for each of `preempt_signals` that only notes the signal. `Preemption`, a
Lightning callback, acts on it as the next batch starts, when the optimizer step before it, its
evaluation and its logging are done: it writes the resume checkpoint there (stabilize.resume) and
raises `Preempted`. `train` records the run as "interrupted", prints how to resume it, and
`Stop.pass_on` then does what the signal would have done at once: call the handler installed before
ours (submitit's: on SIGUSR2 it requeues the job, which resumes from the checkpoint; SIGTERM it logs),
and unless that ends the process, end it with status 128 + the signal's number (143 for SIGTERM),
which stops a sweep. A signal that comes after the
last step lets the run finish and record its result first.

Exact, mid-epoch too: Lightning resumes a mid-epoch checkpoint with a new pass over the training data,
which draws another shuffle, so the rest of the epoch would train on other batches; here the
checkpoint holds the epoch's batch order (`data.EpochOrder`) and the resumed run trains on the rest
of it, with the random state of the moment it stopped (tests/test_preempt.py). Lightning's own
SIGTERM handler, which ends `fit` with exit status 0 and no checkpoint, and its Slurm auto-requeue
on SIGUSR1 are replaced by ours.
"""
import shlex
import signal
import sys
import threading
from pathlib import Path

import pytorch_lightning as pl

from stabilize import resume


def signal_numbers(names) -> list[signal.Signals]:
    """`preempt_signals`' names (TERM, USR1, SIGUSR2, ...) as signals; ValueError naming a bad one."""
    if isinstance(names, (str, int)):
        raise ValueError(f"preempt_signals: {names!r} is not a list of signal names (e.g. [TERM, USR1, USR2])")
    out = []
    for name in names or []:
        try:
            out.append(signal.Signals["SIG" + str(name).upper().removeprefix("SIG")])
        except KeyError:
            raise ValueError(f"preempt_signals: {name!r} is not a signal name (e.g. TERM, USR1, USR2)") from None
    return out


class Preempted(SystemExit):
    """A stop signal acted on: the process's exit status is 128 + the signal's number."""

    def __init__(self, signum: int, step: int | None = None):
        super().__init__(128 + signum)
        self.signum, self.step = signum, step

    def __str__(self) -> str:
        return signal.Signals(self.signum).name + (f" at step {self.step}" if self.step is not None else "")


class Stop:
    """The stop signals of one run: noted (`signum`) while it runs, passed on when it has ended."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}  # signal -> the handler installed before ours

    def listen(self, names=()) -> None:
        """Note `names` from now on (in the main thread; an ignored signal stays ignored). Called again
        with no names, puts the handler back where Lightning's `fit` installed its own."""
        if threading.current_thread() is not threading.main_thread():
            return
        for s in signal_numbers(names):
            if signal.getsignal(s) not in (signal.SIG_IGN, None):  # None: a handler set outside Python
                self._previous.setdefault(s, signal.getsignal(s))
        for s in self._previous:
            signal.signal(s, self._note)

    def _note(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def pass_on(self) -> None:
        """Restore the earlier handlers; if a signal came, do what it would have done: the earlier
        handler (submitit's checkpoint-and-requeue), then, if that returns, end with 128 + signum."""
        self.restore()
        if self.signum is None:
            return
        previous = self._previous.get(self.signum)
        if callable(previous):
            previous(self.signum, None)
        raise Preempted(self.signum)


class Preemption(pl.Callback):
    """Writes the resume checkpoint and raises `Preempted` as a batch starts after a stop signal."""

    def __init__(self, stop: Stop, run_dir: Path, config: dict):
        self.stop, self.run_dir, self.config = stop, Path(run_dir), config
        self._epoch: dict | None = None  # the epoch's order and position, in the checkpoint written here

    def on_train_start(self, trainer, module):
        self.stop.listen()  # over Lightning's SIGTERM handler (called before its strategies' hooks)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.stop.signum is None or batch_idx % trainer.accumulate_grad_batches:
            return  # no signal, or gradients of part of a step accumulated: not a safe point
        self._epoch = {"order": trainer.train_dataloader.batch_sampler.order, "start": batch_idx}
        # The loop counted this batch as fetched; a checkpoint counts it as not: the state Lightning
        # itself saves after a batch, which it resumes at the next one.
        progress = trainer.fit_loop.epoch_loop.batch_progress
        progress.current.ready -= 1
        progress.total.ready -= 1
        resume.save(trainer, self.run_dir, self.config)
        raise Preempted(self.stop.signum, trainer.global_step)

    def state_dict(self) -> dict:
        return self._epoch or {}  # empty in resume.Checkpointer's checkpoints: they start an epoch

    def load_state_dict(self, state: dict) -> None:
        self._epoch = state or None

    def on_fit_start(self, trainer, module):  # after the checkpoint is loaded, before the data is
        if self._epoch is not None:
            trainer.datamodule.resume_epoch(self._epoch["order"], self._epoch["start"])
            self._epoch = None


def relaunch_command() -> str:
    """How to run the same command again: this process's, when it is `stabilize-train`."""
    if Path(sys.argv[0]).name in ("stabilize-train", "train.py"):
        return "run the same command again: " + shlex.join(["stabilize-train", *sys.argv[1:]])
    return "launch the same command again (a job that submitit requeues resumes by itself)"
