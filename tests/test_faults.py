"""Faults: runs that raise or diverge are recorded and the sweep goes on; relaunching runs
only what is missing or errored; results.json is never half-written."""
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli, tiny_sweep
from stabilize import results
from stabilize.report import load_runs, summary_table
from stabilize.train import train

OK = "stabilize.strategies.Strategy"  # the base class: a user strategy that does nothing
RAISES = "tests.helpers.RaiseInSetup"
NAN = "tests.helpers.NanLoss"


@pytest.fixture(autouse=True)
def _root_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))


def test_strategy_raising_in_setup_is_an_error(cfg_factory, tmp_path):
    r = train(cfg_factory(f"+method.strategies.boom._target_={RAISES}"))
    assert r["status"] == "error"
    assert "RuntimeError: boom in setup" in r["error"]
    run = tmp_path / "run"
    assert "boom in setup" in (run / "error.txt").read_text()
    assert results.read(run / results.RESULTS)["status"] == "error"


def test_nan_loss_is_a_failed_diverged_run(cfg_factory, tmp_path):
    r = train(cfg_factory(f"+method.strategies.nan._target_={NAN}"))
    assert r["status"] == "failed"
    assert r["reason"].startswith("diverged:")
    assert r["test"] is None and r["error"] is None
    assert results.read(tmp_path / "run" / results.RESULTS)["reason"].startswith("diverged:")


def test_constant_predictions_of_the_minority_class_name_that_class(cfg_factory):
    r = train(cfg_factory("+method.strategies.minority._target_=tests.helpers.AlwaysMinority"))
    assert r["status"] == "failed" and r["constant"] is True, r
    assert r["constant_label"] != r["majority_label"] and r["constant_label"] in ("entailment", "not_entailment")
    assert r["reason"] == f"constant predictions (always {r['constant_label']!r})"


def test_huge_learning_rate_diverges(cfg_factory):
    r = train(cfg_factory("optim.lr=1e10", "optim.clip_norm=null", "optim.max_steps=8", "eval.times=1"))
    assert r["status"] == "failed" and r["reason"].startswith("diverged:"), r


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    path = tmp_path / results.RESULTS
    results.write_json_atomic(path, {"status": "ok"})

    class Kill:
        def __str__(self):
            raise KeyboardInterrupt  # the process is stopped in the middle of json.dump

    with pytest.raises(KeyboardInterrupt):
        results.write_json_atomic(path, {"status": "failed", "big": ["x" * 10000, Kill()]})
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == [results.RESULTS]


def test_atomic_write_keeps_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        results.write_json_atomic(tmp_path / results.RESULTS, {"status": "ok"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / results.RESULTS).stat().st_mode) == 0o644  # not mkstemp's 0o600


def test_sweep_with_an_error_and_a_divergence_then_relaunch(monkeypatch, capsys, tmp_path):
    sweep = tmp_path / "sweep"
    args = tiny_sweep(monkeypatch, tmp_path, f"+method.strategies.user._target_={OK},{RAISES},{NAN}")

    # 1. Three runs: one raises, one diverges, one trains; the sweep goes on and exits 1.
    assert run_cli(monkeypatch, *args) == 1
    out = capsys.readouterr().out
    assert re.search(r"this launch:  3 runs: [01] ok, [12] failed, 1 error", out)
    assert "1 run(s) of this launch diverged" in out
    assert "boom in setup" in out
    df = load_runs(sweep)
    assert len(df) == 3
    by_target = {Path(p).parent.name.split("user._target_=")[1].split(",")[0]: p for p in df["path"]}
    assert set(by_target) == {OK, RAISES, NAN}
    table = summary_table(df)  # one row per strategy target: the label names what differs
    assert len(table) == 3 and all("user._target_=" in m for m in table["method"])
    assert table["errored"].sum() == 1 and table["diverged"].sum() == 1 and table["n"].sum() == 3
    assert table["n_scored"].sum() == 1  # the diverged and the errored run have no test score

    # 2. A kill: the finished run's results.json never got renamed into place.
    ok_path = Path(by_target[OK])
    ok_path.unlink()
    (ok_path.parent / ".results.json.abc123.tmp").write_text('{"status": "o')
    stamp = {k: os.stat(p).st_ino for k, p in by_target.items() if k != OK}
    launch = {k: os.stat(Path(p).parent / ".hydra" / "config.yaml").st_mtime_ns for k, p in by_target.items()}

    # 3. Relaunch: the diverged run (finished) is skipped, the errored one and the lost one re-run.
    assert run_cli(monkeypatch, *args) == 1  # the strategy still raises
    out = capsys.readouterr().out
    assert out.count("[stabilize] skip") == 1
    assert "this launch:  2 runs" in out
    assert os.stat(by_target[NAN]).st_ino == stamp[NAN]          # untouched
    assert os.stat(by_target[RAISES]).st_ino != stamp[RAISES]    # written again
    relaunch = {k: os.stat(Path(p).parent / ".hydra" / "config.yaml").st_mtime_ns for k, p in by_target.items()}
    assert relaunch[NAN] == launch[NAN]  # a skipped run keeps its launch record, a re-run writes its own
    assert relaunch[RAISES] != launch[RAISES] and relaunch[OK] != launch[OK]
    assert results.read(ok_path)["status"] in ("ok", "failed")
    assert len(load_runs(sweep)) == 3

    # 4. Once the cause of the error is gone (here: the run folder of a fixed strategy), exit 0.
    shutil.rmtree(Path(by_target[RAISES]).parent)
    args_fixed = [a for a in args if not a.startswith("+method.strategies.user")] + [
        f"+method.strategies.user._target_={OK},{NAN}"]
    assert run_cli(monkeypatch, *args_fixed) == 0
    out = capsys.readouterr().out
    assert out.count("[stabilize] skip") == 2 and "this launch:  0 runs" in out


def test_relaunch_check_ignores_runtime_keys(tmp_path):
    config = {"seed": 0, "threads": 1, "trainer": {"enable_progress_bar": False, "precision": "32-true"},
              "data": {"eval_batch_size": 128, "max_length": 128}}
    results.write_json_atomic(tmp_path / results.RESULTS, {"status": "failed", "config": config})
    other_threads = {**config, "threads": 2, "trainer": {"enable_progress_bar": True, "precision": "32-true"},
                     "data": {"eval_batch_size": 32, "max_length": 128}}
    assert results.finished_run(tmp_path, other_threads) is not None       # same run, other parallelism
    assert results.finished_run(tmp_path, {**config, "seed": 1}) is None   # another run
    assert results.finished_run(tmp_path, {**config, "data": {"eval_batch_size": 128, "max_length": 64}}) is None
    results.write_json_atomic(tmp_path / results.RESULTS, {"status": "error", "config": config})
    assert results.finished_run(tmp_path, config) is None                  # errored runs are re-run
