"""A tiny Hydra multirun through the real command line, and its relaunch (resume)."""
import itertools
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SEEDS, METHODS, SIZES = (0, 1), ("standard", "bertadam"), (32, 64)


def _sweep(tmp_path, threads=1):
    cmd = [sys.executable, "-m", "stabilize.train", "-m", "model=tiny", "logger=none",
           f"seed={','.join(map(str, SEEDS))}", f"method={','.join(METHODS)}",
           f"data.train_size={','.join(map(str, SIZES))}", "optim.max_steps=3", "eval.times=1", f"threads={threads}",
           "trainer.enable_progress_bar=false", f"hydra.sweep.dir={tmp_path / 'sweep'}",
           f"data.cache_dir={tmp_path / 'cache'}"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multirun")
    first = _sweep(tmp)
    files = sorted((tmp / "sweep").rglob("results.json"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    texts = {p: p.read_text() for p in files}
    records = {p: p.read_text() for p in (tmp / "sweep").glob("*/.hydra/*.yaml")}
    second = _sweep(tmp, threads=2)  # a relaunch with other parallelism skips the same runs
    return {"tmp": tmp, "first": first, "second": second, "files": files, "mtimes": mtimes, "texts": texts,
            "records": records}


def test_every_combination_runs_once(sweep):
    files = sweep["files"]
    assert len(files) == len(SEEDS) * len(METHODS) * len(SIZES) == 8
    records = [json.loads(p.read_text()) for p in files]
    combos = {(r["seed"], r["method"], r["train_size"]) for r in records}
    assert combos == set(itertools.product(SEEDS, METHODS, SIZES))
    for path, r in zip(files, records):
        assert r["status"] in ("ok", "failed"), r["error"]
        assert r["steps"] == 3 and len(r["history"]) == 1 and r["model"] == "tiny"
        # each run folder is named from its own overrides
        assert f"seed={r['seed']}" in path.parent.name and f"method={r['method']}" in path.parent.name
        assert f"data.train_size={r['train_size']}" in path.parent.name
    assert sweep["first"].count("[stabilize] skip") == 0


def test_relaunch_runs_nothing_new(sweep):
    assert sweep["second"].count("[stabilize] skip") == 8
    files = sorted((sweep["tmp"] / "sweep").rglob("results.json"))
    assert files == sweep["files"]
    for p in files:
        assert p.stat().st_mtime_ns == sweep["mtimes"][p], p
        assert p.read_text() == sweep["texts"][p]


def test_relaunch_keeps_the_launch_record_of_skipped_runs(sweep):
    """Hydra writes `.hydra/` before a run starts: a skipped run keeps the one its results came from."""
    records = sweep["records"]
    assert len(records) == 3 * 8 and all("threads: 1" in t for p, t in records.items() if p.name == "config.yaml")
    assert {p: p.read_text() for p in (sweep["tmp"] / "sweep").glob("*/.hydra/*.yaml")} == records


def test_launch_record_is_kept_only_for_a_run_that_will_be_skipped(monkeypatch, tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from stabilize import results
    from stabilize.sweep import launch_record

    monkeypatch.setattr(HydraConfig.instance(), "cfg", OmegaConf.create(
        {"hydra": {"runtime": {"output_dir": str(tmp_path)}}}))
    root = OmegaConf.create({"seed": 0, "data": {"max_length": "${seed}"}, "hydra": {"output_subdir": "x"}})
    assert launch_record(_root_=root) == ".hydra"                                       # nothing ran yet
    results.write_json_atomic(tmp_path / results.RESULTS, {"status": "ok", "config": results.resolved_config(
        OmegaConf.masked_copy(root, ["seed", "data"]))})
    assert launch_record(_root_=root) is None                                           # will be skipped
    assert launch_record(_root_=OmegaConf.merge(root, {"seed": 1})) == ".hydra"        # another config
    assert launch_record(_root_=OmegaConf.merge(root, {"data": {"max_length": "${nope}"}})) == ".hydra"
