"""A stop signal (SIGTERM, SIGUSR1, SIGUSR2) checkpoints the run at the next step, records it as
interrupted and ends the process with 128 + the signal's number; relaunched, the run resumes with the
numbers of the run that was never stopped, mid-epoch too (stabilize.preempt)."""
import os
import signal
import subprocess
import time

import pytest

from stabilize import config, results
from stabilize.errors import ConfigError
from stabilize.report import load_runs, write_report
from stabilize.train import train
from tests.conftest import make_cfg
from tests.helpers import ROOT, run_cli, tiny_sweep, write_run
from tests.test_resume import NOT_COMPARED

# 4 steps an epoch, 12 steps, evaluations at 4, 8 and 12: STS-B's Spearman moves at every step.
SETTING = ("task=stsb", "data.train_size=32", "optim.batch_size=8", "optim.lr=1e-3", "optim.max_steps=12",
           "eval.times=3", "checkpoint_minutes=null", "method.name=standard")


def killer(tmp_path, step, sig="TERM"):
    """Overrides adding tests.helpers.SignalAt: `sig` during optimizer step `step`, first launch only."""
    return ("+method.strategies.kill._target_=tests.helpers.SignalAt", f"+method.strategies.kill.step={step}",
            f"+method.strategies.kill.dir={tmp_path / 'marker'}", f"+method.strategies.kill.signal={sig}")


def same_numbers(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k not in NOT_COMPARED} == \
        {k: v for k, v in b.items() if k not in NOT_COMPARED}


@pytest.fixture(autouse=True)
def _root_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return train(make_cfg(tmp_path_factory.mktemp("whole"), *SETTING))


@pytest.mark.parametrize("sig,step", [("TERM", 1), ("TERM", 3), ("TERM", 4), ("TERM", 5), ("TERM", 11),
                                      ("USR1", 6), ("USR2", 8)])
def test_a_stop_signal_checkpoints_and_the_relaunch_gives_the_uninterrupted_numbers(tmp_path, capsys, whole,
                                                                                     sig, step):
    overrides = (*SETTING, *killer(tmp_path, step, sig))
    with pytest.raises(SystemExit) as stopped:
        train(make_cfg(tmp_path, *overrides))
    assert stopped.value.code == 128 + getattr(signal, "SIG" + sig)
    record = results.read(tmp_path / "run" / results.RESULTS)
    assert record["status"] == results.INTERRUPTED and record["steps"] == step and record["test"] is None
    assert record["reason"] == f"stopped by SIG{sig} at step {step}"
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"[stabilize] interrupted: stopped by SIG{sig} at step {step}, checkpointed in "
        f"{tmp_path / 'run' / results.CHECKPOINT}; to resume, launch the same command again (a job that submitit "
        f"requeues resumes by itself)")
    assert results.finished_run(tmp_path / "run", record["config"]) is None  # a relaunch runs it again

    resumed = train(make_cfg(tmp_path, *overrides))
    assert resumed["resumed_at"] == [step] and same_numbers(resumed, whole)
    assert not (tmp_path / "run" / results.CHECKPOINT).exists()


def test_a_signal_after_the_last_step_lets_the_run_finish_then_stops(tmp_path, capsys, whole):
    with pytest.raises(SystemExit) as stopped:
        train(make_cfg(tmp_path, *SETTING, *killer(tmp_path, 12)))
    assert stopped.value.code == 143
    record = results.read(tmp_path / "run" / results.RESULTS)
    assert record["status"] == results.OK and same_numbers(record, whole)
    assert "[stabilize] stopped by SIGTERM after this run ended" in capsys.readouterr().out


# Every method resumes exactly from an epoch's start (tests/test_resume.py); mid-epoch, what can differ
# is the state a method changes step by step: averages, masks and noise drawn, the layers unfrozen.
MID_EPOCH = ["standard", "gradual_unfreeze", "mixout", "childtuning_f", "r3f", "ema", "swa", "lpft"]


@pytest.mark.parametrize("method", MID_EPOCH + ["standard data.group_by_length=true"])
def test_stateful_methods_resume_mid_epoch_exactly(tmp_path, method):
    task = "rte" if method == "r3f" else "stsb"  # R3F classifies
    overrides = (*SETTING[1:], f"task={task}", *f"method={method}".split())  # method.name: one label
    uninterrupted = train(make_cfg(tmp_path / "whole", *overrides))
    with pytest.raises(SystemExit):
        train(make_cfg(tmp_path / "stopped", *overrides, *killer(tmp_path, 6)))  # batch 2 of epoch 2
    resumed = train(make_cfg(tmp_path / "stopped", *overrides, *killer(tmp_path, 6)))
    assert resumed["resumed_at"] == [6] and same_numbers(resumed, uninterrupted)


def test_sigterm_to_stabilize_train_exits_143_and_the_same_command_resumes(tmp_path):
    """The command as a user runs it: SIGTERM from outside while it trains (paused at step 13, in the
    middle of its 4th epoch), then the same command again."""
    (tmp_path / "pause").mkdir()
    args = ["stabilize-train", "debug=tiny", "task=stsb", "optim.max_steps=40", "optim.batch_size=8",
            "optim.lr=1e-3", "eval.times=5", "threads=1", "method.name=standard", "hydra.run.dir=run",
            "+method.strategies.pause._target_=tests.helpers.PauseAt", "+method.strategies.pause.step=13",
            f"+method.strategies.pause.dir={tmp_path / 'pause'}"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "STABILIZE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "pause" / "paused").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    (tmp_path / "pause" / "go").touch()
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, out
    assert out.splitlines()[-1] == (f"[stabilize] interrupted: stopped by SIGTERM at step 13, checkpointed in "
                                    f"{tmp_path / 'run' / results.CHECKPOINT}; to resume, run the same command again: "
                                    f"{' '.join(args)}")
    assert results.read(tmp_path / "run" / results.RESULTS)["status"] == results.INTERRUPTED

    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = results.read(tmp_path / "run" / results.RESULTS)
    whole = train(make_cfg(tmp_path / "whole", "task=stsb", "optim.max_steps=40", "optim.batch_size=8",
                           "optim.lr=1e-3", "eval.times=5", "method.name=standard"))
    assert resumed["resumed_at"] == [13] and resumed["steps"] == 40 and same_numbers(resumed, whole)


def test_a_signal_stops_a_sweep_and_the_relaunch_resumes_then_runs_the_rest(monkeypatch, capsys, tmp_path):
    sweep = tmp_path / "sweep"
    args = tiny_sweep(monkeypatch, tmp_path, "seed=0,1", *SETTING, *killer(tmp_path, 6))
    assert run_cli(monkeypatch, *args) == 143
    df = load_runs(sweep)
    assert list(df["status"]) == [results.INTERRUPTED]  # seed 1 never started
    assert run_cli(monkeypatch, *args) == 0
    assert "this launch:  2 runs: 2 ok, 0 failed, 0 error" in capsys.readouterr().out
    df = load_runs(sweep).sort_values("seed")
    assert list(df["status"]) == ["ok", "ok"]
    assert [results.read(p)["resumed_at"] for p in df["path"]] == [[6], None]


@pytest.mark.slow  # two job starts under submitit's local executor: ~1 min on 2 busy cores
def test_submitit_local_requeues_on_usr2_and_the_job_resumes(monkeypatch, capsys, tmp_path, whole):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    args = tiny_sweep(monkeypatch, tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
                      *SETTING, *killer(tmp_path, 6, "USR2"))
    assert run_cli(monkeypatch, *args) == 0
    df = load_runs(tmp_path / "sweep")
    record = results.read(df["path"].iloc[0])
    assert len(df) == 1 and record["resumed_at"] == [6] and same_numbers(record, whole)
    log = next((tmp_path / "sweep" / ".submitit").rglob("*_log.out")).read_text()
    events = ["interrupted: stopped by SIGUSR2 at step 6", "Requeued job", "resume from", "Job completed"]
    assert [log.find(e) for e in events] == sorted(log.find(e) for e in events) and log.find(events[0]) >= 0


def test_the_report_lists_interrupted_runs_apart_from_the_tables(tmp_path):
    for seed in range(3):
        write_run(tmp_path, f"s{seed}", seed=seed, val=0.6, test=0.6 + seed / 100)
    write_run(tmp_path, "s3", seed=3, status=results.INTERRUPTED, reason="stopped by SIGTERM at step 5")
    df = load_runs(tmp_path)
    write_report(df, tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    assert "4 runs: 3 ok, 0 failed, 0 error, 1 interrupted" in report
    assert "- `s3`: stopped by SIGTERM at step 5" in report
    table = (tmp_path / "report" / "table_rte_100.csv").read_text().splitlines()
    assert table[1].split(",")[:2] == ["standard", "3"]  # n: the three runs that ended


def test_preempt_signals_must_name_signals(tmp_path):
    with pytest.raises(ConfigError, match=r"preempt_signals: 'TREM' is not a signal name"):
        config.validate(make_cfg(tmp_path, "preempt_signals=[TERM,TREM]"))
    with pytest.raises(ConfigError, match=r"preempt_signals: 'TERM' is not a list"):
        config.validate(make_cfg(tmp_path, "preempt_signals=TERM"))
    config.validate(make_cfg(tmp_path, "preempt_signals=[]"))  # none: Lightning's handling, as before


def test_no_preempt_signals_leaves_sigterm_to_lightning_as_before(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        train(make_cfg(tmp_path, *SETTING, *killer(tmp_path, 2), "preempt_signals=[]"))
    assert not stopped.value.code  # exit status 0
    record = results.read(tmp_path / "run" / results.RESULTS)
    assert record["status"] == results.ERRORED and record["error"] == "interrupted: SIGTERMException"
    assert not (tmp_path / "run" / results.CHECKPOINT).exists()
