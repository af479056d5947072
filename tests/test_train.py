"""Whole tiny runs through `stabilize.train.train`: results.json, determinism, resume, schedule."""
import json
import math
import os

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import make_cfg
from stabilize import results
from stabilize.module import eval_steps
from stabilize.train import train

# ../shared/CONTRACT.md, "One run's output": the keys users rely on, a subset of results.KEYS
CONTRACT_KEYS = {"status", "error", "task", "model", "method", "seed", "train_size", "metric", "val", "test",
                 "test_last", "majority", "history", "steps", "epochs", "seconds", "config", "versions"}


def _read(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def _finished(record):
    assert record["status"] in ("ok", "failed"), record["error"]
    assert record["error"] is None


@pytest.fixture(scope="module")
def rte_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rte")
    cfg = make_cfg(tmp)
    record = train(cfg)
    return cfg, record, tmp / "run"


def test_results_json_has_contract_keys(rte_run):
    cfg, record, run_dir = rte_run
    _finished(record)
    on_disk = _read(run_dir)
    assert CONTRACT_KEYS <= set(results.KEYS) and set(on_disk) == set(results.KEYS)
    assert on_disk == json.loads(json.dumps(record, default=str))
    assert (on_disk["task"], on_disk["model"], on_disk["method"]) == ("rte", "tiny", "standard")
    assert on_disk["seed"] == 0 and on_disk["train_size"] == 32 and on_disk["metric"] == "accuracy"
    for key in ("val", "test", "test_last", "majority"):
        assert isinstance(on_disk[key], float) and 0.0 <= on_disk[key] <= 1.0, key
    # RTE selects by accuracy, its own metric: the best validation score is the history's maximum
    assert on_disk["val"] == max(h["val"] for h in on_disk["history"])
    assert all({"step", "val"} <= set(h) for h in on_disk["history"])
    assert on_disk["steps"] == 4 and on_disk["epochs"] == pytest.approx(4.0)  # 32 rows = 1 step an epoch
    assert isinstance(on_disk["seconds"], (int, float)) and on_disk["seconds"] > 0
    assert on_disk["config"] == json.loads(json.dumps(OmegaConf.to_container(cfg, resolve=True), default=str))
    assert on_disk["versions"]["torch"] == torch.__version__
    assert {"torch", "transformers", "pytorch-lightning", "stabilize"} <= set(on_disk["versions"])
    assert all(on_disk["versions"][k] for k in ("torch", "transformers", "pytorch-lightning"))
    # the verdict agrees with the majority baseline
    if on_disk["status"] == "ok":
        assert on_disk["test"] > on_disk["majority"]
    # written atomically: no temporary file left next to it
    assert [p.name for p in run_dir.iterdir() if "tmp" in p.name] == []


def test_majority_is_the_majority_class_score(rte_run):
    from stabilize import readers, tasks
    from stabilize.data import split_dev

    _, record, _ = rte_run
    spec = tasks.load("rte")
    y = readers.read_file(tasks.VENDORED_DIR / "RTE" / "dev.tsv", spec).labels
    val, test = split_dev(y, spec, 42)
    majority = int(torch.bincount(torch.from_numpy(y[val])).argmax())
    assert record["majority"] == pytest.approx(float((y[test] == majority).mean()))


def test_steps_and_evenly_spaced_evaluations(tmp_path):
    record = train(make_cfg(tmp_path, "data.train_size=64", "optim.max_steps=6", "eval.times=3"))
    _finished(record)
    assert record["steps"] == 6
    assert record["epochs"] == pytest.approx(3.0)  # 64 rows, batches of 32
    steps = [h["step"] for h in record["history"]]
    assert steps == [2, 4, 6]
    assert steps == eval_steps(6, 3)


@pytest.mark.parametrize("total,times", [(10, 10), (10, 3), (7, 2), (3, 5), (800, 10)])
def test_eval_steps_evenly_spaced(total, times):
    steps = eval_steps(total, times)
    assert steps[-1] == total and len(steps) == min(total, times)
    assert all(1 <= s <= total for s in steps)
    gaps = [b - a for a, b in zip([0] + steps, steps)]
    assert max(gaps) - min(gaps) <= 1


# ------------------------------------------------------------------ determinism (STS-B: a continuous score)

@pytest.fixture(scope="module")
def stsb_runs(tmp_path_factory):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        tmp = tmp_path_factory.mktemp(f"stsb_{name}")
        runs[name] = train(make_cfg(tmp, "task=stsb", f"seed={seed}"))
    return runs


def test_same_seed_same_results(stsb_runs):
    a, b, c = stsb_runs["a"], stsb_runs["b"], stsb_runs["c"]
    for r in (a, b, c):
        _finished(r)
    for key in ("val", "test", "test_last", "history", "steps"):
        assert a[key] == b[key], key
    # and the seed matters: another seed gives another run
    assert a["history"] != c["history"]


def test_stsb_is_regression(stsb_runs):
    r = stsb_runs["a"]
    _finished(r)
    assert r["task"] == "stsb" and r["metric"] == "spearman" and r["majority"] is None
    for key in ("val", "test", "test_last"):
        assert isinstance(r[key], float) and -1.0 <= r[key] <= 1.0 and math.isfinite(r[key])


def test_cola_uses_mcc(tmp_path):
    r = train(make_cfg(tmp_path, "task=cola"))
    _finished(r)
    assert r["task"] == "cola" and r["metric"] == "mcc"
    assert r["majority"] == 0.0  # a constant predictor has no correlation
    assert -1.0 <= r["test"] <= 1.0
    if r["status"] == "ok":
        assert r["test"] > 0.0


# ------------------------------------------------------------------ relaunch

def test_relaunch_skips_finished_run_and_reruns_changed_config(tmp_path, capsys):
    run_dir = tmp_path / "run"
    first = train(make_cfg(tmp_path))
    _finished(first)
    stat = (run_dir / "results.json").stat().st_mtime_ns
    text = (run_dir / "results.json").read_text()
    capsys.readouterr()

    again = train(make_cfg(tmp_path))
    assert "[stabilize] skip" in capsys.readouterr().out
    assert again["seconds"] == first["seconds"]
    assert (run_dir / "results.json").stat().st_mtime_ns == stat
    assert (run_dir / "results.json").read_text() == text

    changed = train(make_cfg(tmp_path, "optim.lr=3e-5"))
    _finished(changed)
    assert "[stabilize] skip" not in capsys.readouterr().out
    assert (run_dir / "results.json").stat().st_mtime_ns != stat
    assert _read(run_dir)["config"]["optim"]["lr"] == 3e-5


def test_a_finished_run_moved_to_another_path_is_still_skipped(tmp_path, capsys):
    """A sweep folder committed, then relaunched from a clone elsewhere: nothing runs again."""
    first = train(make_cfg(tmp_path / "a", "logger=csv"))  # its save_dir holds the run folder too
    _finished(first)
    (tmp_path / "a" / "run").rename(tmp_path / "b")
    capsys.readouterr()
    cfg = make_cfg(tmp_path / "x", "logger=csv")
    cfg.paths.output_dir = str(tmp_path / "b")
    again = train(cfg)
    assert "[stabilize] skip" in capsys.readouterr().out and again["seconds"] == first["seconds"]


def test_relaunch_reruns_errored_run(tmp_path):
    run_dir = tmp_path / "run"
    _finished(train(make_cfg(tmp_path)))
    record = _read(run_dir)
    record.update(status="error", error="RuntimeError: simulated crash")
    (run_dir / "results.json").write_text(json.dumps(record))
    os.utime(run_dir / "results.json", ns=(0, 0))
    rerun = train(make_cfg(tmp_path))
    _finished(rerun)
    assert (run_dir / "results.json").stat().st_mtime_ns != 0
    assert _read(run_dir)["status"] in ("ok", "failed")


# ------------------------------------------------------------------ the metrics behind the records

def test_metrics_against_hand_computation():
    from stabilize import metrics

    preds = torch.tensor([1, 1, 0, 0, 1, 0, 1, 1])
    labels = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0])
    tp, tn, fp, fn = 3, 2, 2, 1
    assert metrics.score("accuracy", preds, labels) == pytest.approx(5 / 8)
    assert metrics.score("f1", preds, labels) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics.score("mcc", preds, labels) == pytest.approx(mcc)
    assert metrics.score("mcc", torch.ones(8, dtype=torch.long), labels) == 0.0
    x = torch.tensor([0.1, 0.5, 0.2, 0.9])
    assert metrics.score("spearman", x, torch.tensor([1.0, 3.0, 2.0, 4.0])) == pytest.approx(1.0)
    assert metrics.score("spearman", torch.full((4,), 2.0), x) == 0.0
    assert metrics.majority_label(labels) == 0
    assert metrics.majority_score("accuracy", labels, 0) == pytest.approx(4 / 8)
    assert metrics.majority_score("mcc", labels, 0) == 0.0
    assert metrics.majority_score("spearman", x, 0) is None


def test_a_long_multirun_keeps_no_earlier_run_in_memory(tmp_path):
    """Runs of one process (Hydra's basic launcher, a joblib worker) leave nothing behind: when a
    run starts, no earlier run's Trainer, module or model is alive, even with the automatic cycle
    collector off (it is off in effect: its full passes are rare)."""
    import gc
    import weakref

    import pytorch_lightning as pl

    refs, alive = [], []

    class Grab(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            alive.append(sum(ref() is not None for ref in refs))
            refs.extend(weakref.ref(x) for x in (trainer, pl_module, pl_module.model))

    gc.disable()
    try:
        for seed in range(3):
            _finished(train(make_cfg(tmp_path / str(seed), f"seed={seed}"), callbacks=[Grab()]))
    finally:
        gc.enable()
    assert alive == [0, 0, 0]
