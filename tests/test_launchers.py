"""Launchers and sweepers: joblib runs in parallel with split threads, submitit's local
executor, the Optuna sweeper example; threads per run from the launcher."""
import pytest
from omegaconf import OmegaConf

from stabilize import results
from stabilize.report import load_runs
from stabilize.sweep import available_cores, default_threads
from tests.helpers import run_cli, tiny_sweep


def _without_threads(args):
    return [a for a in args if not a.startswith("threads=")]  # let the launcher pick


def test_joblib_runs_two_jobs_in_parallel(monkeypatch, capsys, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    monkeypatch.setenv("STABILIZE_TEST_BARRIER", str(tmp_path / "barrier"))
    args = _without_threads(tiny_sweep(monkeypatch, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                       "seed=0,1", "+method.strategies.barrier._target_=tests.helpers.Barrier"))
    assert run_cli(monkeypatch, *args) == 0
    assert "this launch:  2 runs" in capsys.readouterr().out
    df = load_runs(sweep)
    assert sorted(df["seed"]) == [0, 1] and set(df["status"]) <= {"ok", "failed"}
    # Both runs waited for each other in Barrier.setup: they ran at the same time, in two processes.
    records = [results.read(p) for p in df["path"]]
    assert len({r["pid"] for r in records}) == 2
    expected = max(1, available_cores() // 2)
    assert [r["config"]["threads"] for r in records] == [expected, expected]
    assert [r["torch_threads"] for r in records] == [expected, expected]


@pytest.mark.slow  # a fresh interpreter per job, polled by submitit: ~30 s on 2 busy cores
def test_submitit_local_launcher(monkeypatch, capsys, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    args = _without_threads(tiny_sweep(monkeypatch, tmp_path, "hydra/launcher=submitit_local",
                                       "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5"))
    assert run_cli(monkeypatch, *args) == 0
    df = load_runs(sweep)
    assert len(df) == 1 and df["status"].iloc[0] in ("ok", "failed")
    assert results.read(df["path"].iloc[0])["config"]["threads"] == 1  # cpus_per_task


def test_optuna_sweeper_example(monkeypatch, capsys, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    args = tiny_sweep(monkeypatch, tmp_path, "+hpo=mixout_p", "hydra.sweeper.n_trials=2")
    assert run_cli(monkeypatch, *args) == 0
    df = load_runs(sweep)
    assert len(df) == 2 and set(df["method"]) == {"mixout"}
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    # the sweeper maximized the validation score that stabilize-train returns, not the test score
    assert best.best_value == pytest.approx(df["val"].max())
    assert 0.05 <= best.best_params["method.strategies.mixout.p"] <= 0.9


def test_optuna_sweep_whose_every_trial_errors_ends_in_the_summary(monkeypatch, capsys, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    args = tiny_sweep(monkeypatch, tmp_path, "+hpo=mixout_p", "hydra.sweeper.n_trials=2",
                      "+method.strategies.boom._target_=tests.helpers.RaiseInSetup")
    assert run_cli(monkeypatch, *args) == 1
    out, err = capsys.readouterr()
    assert "No trials are completed yet" not in out + err and "Traceback" not in err
    assert "[stabilize] optuna: no trial completed" in out
    assert "this launch:  2 runs: 0 ok, 0 failed, 2 error" in out
    last = out.strip().splitlines()[-1]
    assert "every run of this launch errored (2): RuntimeError: boom in setup, see " in last
    assert (tmp_path / "sweep") in __import__("pathlib").Path(last.split(", see ")[1]).parents
    assert last.endswith("/error.txt") and not (tmp_path / "sweep" / "optimization_results.yaml").exists()


def test_optuna_sweeper_passes_other_errors_on(monkeypatch):
    plugins = pytest.importorskip("hydra_plugins.stabilize_sweepers")

    def other(self, arguments):
        raise ValueError("Return value must be float-castable.")
    monkeypatch.setattr(plugins.OptunaSweeper.__bases__[0], "sweep", other)  # the plugin's sweeper
    sweeper = object.__new__(plugins.OptunaSweeper)
    with pytest.raises(ValueError, match="float-castable"):
        sweeper.sweep([])


def test_default_threads_outside_hydra_is_none(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # an earlier in-process run leaves one
    assert default_threads() is None


@pytest.mark.parametrize("launcher,expected", [
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}, "half"),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -1}, 1),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", "cpus_per_task": 3}, 3),
    ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, None),
])
def test_default_threads_follow_the_launcher(monkeypatch, launcher, expected):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig.instance(), "cfg", OmegaConf.create({"hydra": {"launcher": launcher}}))
    if expected == "half":
        expected = max(1, available_cores() // 2)
    assert default_threads() == expected
