"""User-side strategies that misbehave on purpose, and hand-written `results.json` fixtures.

Strategies here are named from configs as `tests.helpers.<Name>` (the repository root must
be on sys.path: tests prepend it, subprocesses get it through PYTHONPATH).
"""
import json
import os
import signal
import sys
import time
from pathlib import Path

from stabilize.strategies import Strategy

ROOT = Path(__file__).resolve().parent.parent


class RaiseInSetup(Strategy):
    """Raises while the model is being set up: the run must end with status error."""

    def setup(self, module):
        raise RuntimeError("boom in setup")


class NanLoss(Strategy):
    """Makes the training loss NaN: the run must end as failed, reason 'diverged: ...'."""

    def loss(self, module, batch, outputs):
        return float("nan")


class AlwaysMinority(Strategy):
    """Evaluates with a head that always predicts the class that is rarest in the validation half
    (not the majority class): the run fails with constant predictions of that class."""

    def evaluation_weights(self, module):
        labels = module.trainer.datamodule.splits["val"].labels
        counts = __import__("torch").bincount(labels, minlength=module.spec.num_labels)
        bias = module.model.classifier.bias.detach().clone().zero_()
        bias[int(counts.argmin())] = 1.0
        return {"classifier.weight": module.model.classifier.weight.detach() * 0, "classifier.bias": bias}


class Barrier(Strategy):
    """Waits in `setup` until `parties` runs have reached it: proves they run at the same time."""

    def __init__(self, dir: str | None = None, parties: int = 2, timeout: float = 120.0):
        self.dir = Path(dir or os.environ["STABILIZE_TEST_BARRIER"])
        self.parties, self.timeout = parties, timeout

    def setup(self, module):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / str(os.getpid())).touch()
        deadline = time.monotonic() + self.timeout
        while len(list(self.dir.iterdir())) < self.parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(list(self.dir.iterdir()))} of {self.parties} runs reached the barrier")
            time.sleep(0.05)

    def results(self, module):
        return {"pid": os.getpid(), "torch_threads": __import__("torch").get_num_threads()}


class SignalAt(Strategy):
    """Sends its own process `signal` (TERM, USR1, ...) during optimizer step `step`, on the first
    launch only (a marker file in `dir`): the run it stops goes on without it when relaunched."""

    def __init__(self, step: int, dir: str, signal: str = "TERM"):
        self.step, self.marker, self.signal, self.steps = step, Path(dir) / "signalled", signal, 0

    def after_optimizer_step(self, module, optimizer):
        self.steps += 1
        if self.steps == self.step and not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
            os.kill(os.getpid(), getattr(signal, "SIG" + self.signal))


class PauseAt(Strategy):
    """Waits during optimizer step `step`, on the first launch only, having written `dir/paused`,
    until `dir/go` exists: a test signals the process meanwhile, at a known step."""

    def __init__(self, step: int, dir: str, timeout: float = 120.0):
        self.step, self.dir, self.timeout, self.steps = step, Path(dir), timeout, 0

    def after_optimizer_step(self, module, optimizer):
        self.steps += 1
        if self.steps != self.step or (self.dir / "paused").exists():
            return
        (self.dir / "paused").touch()
        deadline = time.monotonic() + self.timeout
        while not (self.dir / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def run_cli(monkeypatch, *args: str) -> int:
    """`stabilize-train ARGS` through its @hydra.main entry point, in this process (torch is
    imported already, so no interpreter start-up); returns the exit status."""
    from hydra.core.global_hydra import GlobalHydra

    from stabilize.train import _hydra_main

    monkeypatch.setattr(sys, "argv", ["stabilize-train", *args])
    monkeypatch.syspath_prepend(str(ROOT))  # for `_target_: tests.helpers.X`
    GlobalHydra.instance().clear()
    try:
        _hydra_main()
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    finally:
        GlobalHydra.instance().clear()


def tiny_sweep(monkeypatch, tmp_path: Path, *overrides: str) -> list[str]:
    """Arguments of a multirun of tiny runs (tests/conftest.py's TINY) into `tmp_path/sweep`.

    The token cache goes through $STABILIZE_CACHE, not an override, to keep run folder names
    (made of the overrides) short."""
    from tests.conftest import TINY
    monkeypatch.setenv("STABILIZE_CACHE", str(tmp_path / "cache"))
    return ["-m", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]


def write_run(root: Path, name: str, *, task="rte", method="standard", seed=0, train_size=100, status="ok",
              val=None, test=None, threshold=0.53, majority=0.5, reason=None, error=None, metric="accuracy",
              diverged=False, weight_change=None, extra_config=None, **more) -> Path:
    """A hand-written results.json in `root/name/`, with the keys train() writes.

    `below_threshold` as `results.verdict` sets it: null for an errored run or without a
    threshold, true for a run without a test score (diverged), else test <= threshold."""
    run = Path(root) / name
    run.mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "task": {"name": task, "fail_threshold": threshold}, "data": {"train_size": train_size},
              "method": {"name": method, "strategies": {}}, **(extra_config or {})}
    below = None if status == "error" or threshold is None else (test is None or test <= threshold)
    record = {"status": status, "error": error, "reason": reason, "task": task, "model": "tiny", "method": method,
              "seed": seed, "train_size": train_size, "metric": metric, "val": val, "test": test, "test_last": test,
              "majority": majority, "diverged": diverged, "below_threshold": below, "history": [], "steps": 10,
              "epochs": 1.0, "seconds": 1.0, "config": config, "versions": {}, **more}
    (run / "results.json").write_text(json.dumps(record))
    if weight_change is not None:
        (run / "weight_change.json").write_text(json.dumps(weight_change))
    return run
