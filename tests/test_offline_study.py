"""experiments/offline_study: summarize.py on hand-written runs (the README's blocks and verdicts),
and every launch of run.sh composed and validated."""
import importlib.util
import itertools
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from stabilize.config import validate
from stabilize.train import CONF_DIR
from tests.helpers import ROOT, write_run

STUDY = ROOT / "experiments" / "offline_study"
sys.path.insert(0, str(STUDY))  # summarize.py imports clipping.py beside it, as `python summarize.py` does


@pytest.fixture(scope="module")
def summarize():
    spec = importlib.util.spec_from_file_location("summarize", STUDY / "summarize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stsb(root, method, scores):
    for seed, test in enumerate(scores):
        write_run(root, f"method={method},seed={seed},task=stsb", task="stsb", method=method, seed=seed, test=test,
                  val=test, metric="spearman", threshold=None, majority=None, train_size=1000)


def _block(text, name):
    return text.split(f"<!-- begin {name} -->\n")[1].split(f"<!-- end {name} -->")[0]


def test_verdicts_follow_the_rule(summarize, tmp_path):
    folder = tmp_path / "study"
    shutil.copytree(STUDY, folder, ignore=shutil.ignore_patterns("sweep*", "report", "pilot", "diagnosis"))
    sweep = folder / "sweep"
    _stsb(sweep, "standard", [0.60, 0.65, 0.70, 0.55, 0.68, 0.62])
    _stsb(sweep, "reinit", [0.800, 0.801, 0.800, 0.802, 0.800, 0.801])   # higher and narrower: both as in study A
    _stsb(sweep, "llrd", [0.30, 0.31, 0.29, 0.33, 0.30, 0.32])     # study A: no clear difference
    _stsb(sweep, "mixout", [0.61, 0.66, 0.69, 0.56, 0.67, 0.63])   # study A: no clear difference
    _stsb(sweep, "bertadam", [0.1, 0.2, 0.7])                       # too few seeds
    _stsb(sweep, "ema", [0.63, 0.64, 0.65, 0.64, 0.63, 0.65])      # section C: a smaller spread
    for seed in range(5):
        write_run(sweep, f"method=standard,seed={seed},task=mrpc", task="mrpc", seed=seed, test=0.8, val=0.8,
                  threshold=0.75, metric="f1", train_size=1000, accuracy=0.72, majority_accuracy=0.685,
                  majority=0.81)
    _stsb(folder / "sweep_recipe", "standard", [0.10, 0.12, 0.08, 0.11, 0.09])
    _stsb(folder / "sweep_recipe", "bertadam", [0.70, 0.71, 0.69, 0.72, 0.70])   # against study A: higher
    summarize.main(folder)

    text = (folder / "README.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in _block(text, "verdicts").splitlines()
            if line.startswith("| ")}
    assert "STS-B: mean agrees, std agrees" in rows["reinit"]
    assert "STS-B: mean disagrees" in rows["llrd"]
    assert "STS-B: mean agrees" in rows["mixout"]
    assert "STS-B: mean cannot tell (n < 5), failed cannot tell (n < 5)" in rows["bertadam"]
    assert "failed 2/3 vs 0/6" in rows["bertadam"]                  # STS-B: below Spearman 0.5
    assert "STS-B: std agrees" in rows["ema"]
    # Bonferroni per source: ema, a section C method, does not tighten the papers' methods' α
    assert "Corrected α: STS-B: 0.05/3 = 0.017 for the papers' methods, 0.05/1 = 0.05 for section C's." in text
    assert rows["longer"].endswith("| not run yet | cannot tell |")
    assert "STS-B 33, MRPC 5" in _block(text, "status")
    assert "MRPC, 10 steps (standard)" in _block(text, "wall")
    results = _block(text, "results")
    assert results.index("#### STS-B") < results.index("#### MRPC")
    assert ("Mean test accuracy (the majority class's: 0.685): standard 0.720. The majority class, answered for "
            "every test pair, scores F1 81.00; methods whose mean test F1 is above it: none.") in results
    assert "bertadam 2/3" in results
    recipe = _block(text, "recipe")
    assert summarize.recipe_block(folder, None) == "Not run yet."
    assert "Study A's claims at study A's own recipe" in recipe and "#### STS-B" in recipe
    verdicts = [line for line in recipe.splitlines() if line.startswith("| ") and "STS-B (n" in line]
    assert len(verdicts) == 1 and verdicts[0].startswith("| bertadam |")   # only the methods run there
    assert "STS-B: mean disagrees, failed disagrees" in verdicts[0]
    assert "Corrected α: STS-B: 0.05/1 = 0.05 for the papers' methods." in recipe
    assert _block(text, "clipping").strip() == "Not run yet."
    assert _block(text, "dropout").strip() == "Not run yet."
    assert _block(text, "fit").strip() == "Not run yet."           # hand-written runs have no logs
    assert (folder / "report" / "sweep" / "table_stsb_1000.md").is_file()


def _monitored(root, method, config, early, late, moves):
    """A run with a grad_monitor.json: 20 steps of norms `early`, then 40 of `late`, per tensor."""
    run = write_run(root, f"callbacks=grad_monitor,method={method},seed=0,task=stsb", task="stsb", method=method,
                    test=0.5, val=0.5, metric="spearman", threshold=None, majority=None, extra_config=config)
    tensors = ["bert.embeddings.word", "bert.encoder.layer.0.dense", "bert.pooler.dense.weight", "classifier.weight"]
    monitor = {"every_n_steps": 1, "grad_norm": {"steps": list(range(60)), "tensors": tensors,
                                                 "values": [early] * 20 + [late] * 40},
               "rms_change": {"steps": [10, 20], "layers": ["embeddings", "layer.0", "pooler", "head"],
                              "values": [[m, m, 9.0, 9.0] for m in moves]}}
    (run / "grad_monitor.json").write_text(json.dumps(monitor))


def test_the_clipping_diagnosis_reads_the_runs(tmp_path):
    """clipping.py: seed-for-seed scores of the unclipped runs, and what each clipping did to the
    gradient norms the monitor recorded."""
    from clipping import clipping_block

    assert clipping_block(tmp_path, 0.5) == "Not run yet."
    for method, scores in (("standard", [0.6, 0.7]), ("component_clip", [0.2, 0.6])):
        _stsb(tmp_path / "sweep", method, scores)
    for seed, test in enumerate([0.1, 0.3]):
        write_run(tmp_path / "diagnosis", f"method=standard,optim.clip_norm=null,seed={seed},task=stsb", task="stsb",
                  seed=seed, test=test, val=test, metric="spearman", threshold=None, majority=None,
                  extra_config={"optim": {"clip_norm": None}})
    early, late = [0.5, 0.5, 8.0, 6.0], [0.5, 0.5, 0.5, 1.5]  # global norms 10.02, then 1.73
    _monitored(tmp_path / "diagnosis", "standard", {"optim": {"clip_norm": 1.0}}, early, late, [2e-4, 1e-4])
    _monitored(tmp_path / "diagnosis", "component_clip",
               {"optim": {"clip_norm": 1.0}, "method": {"strategies": {"component_clip": {"max_norm": 1.0}}}},
               early, late, [2e-4, 5e-5])
    block = clipping_block(tmp_path, 0.5)
    assert "| 0 | 0.600 | 0.100 | 0.200 |" in block and "| below 0.5 | 0/2 | 2/2 | 1/2 |" in block
    assert "above c = 1 at 60 of 60 steps (10.0 to 10.0 in the first 20, median 1.7 from step 48 on)" in block
    assert "5.79 times that of the first 20 steps" in block          # (0.5 / 1.73) / (0.5 / 10.02)
    assert "a median of 2 of 4 tensors" in block and "`classifier.weight`, `bert.pooler.dense.weight`)" in block
    assert "1 from step 48 on" in block and "1.00 times that of the first 20 steps" in block
    assert "| 20 | 1.00e-04 | 5.00e-05 |" in block


def test_the_dropout_control_reads_the_runs(tmp_path):
    """dropout.py: Mixout at p = 0 (no dropout) seed for seed against `standard` and `mixout`; the
    unclipped runs of the clipping diagnosis beside it are not taken for it."""
    from dropout import dropout_block

    assert dropout_block(tmp_path, 0.5) == "Not run yet."
    for method, scores in (("standard", [0.6, 0.7, 0.4]), ("mixout", [0.75, 0.72, 0.7])):
        _stsb(tmp_path / "sweep", method, scores)
    write_run(tmp_path / "diagnosis", "method=standard,optim.clip_norm=null,seed=0,task=stsb", task="stsb",
              test=0.1, val=0.1, metric="spearman", threshold=None, majority=None,
              extra_config={"optim": {"clip_norm": None}})
    for p, scores in ((0.0, [0.8, 0.65, 0.72]), (0.3, [0.0, 0.0, 0.0])):
        for seed, test in enumerate(scores):
            write_run(tmp_path / "diagnosis", f"method.strategies.mixout.p={p},method=mixout,seed={seed},task=stsb",
                      task="stsb", method="mixout", seed=seed, test=test, val=test, metric="spearman",
                      threshold=None, majority=None, extra_config={
                          "optim": {"clip_norm": 1.0}, "method": {"strategies": {"mixout": {"p": p}}}})
    block = dropout_block(tmp_path, 0.5)
    assert "| 0 | 0.600 | 0.800 | 0.750 |" in block and "| 2 | 0.400 | 0.720 | 0.700 |" in block
    assert "| below 0.5 | 1/3 | 0/3 | 0/3 |" in block
    assert "| mean (std) | 0.567 (0.153) | 0.723 (0.075) | 0.723 (0.025) |" in block
    assert "above `standard`'s of the same seed in 2 of 3 seeds, and above `mixout`'s in 2." in block
    assert block.startswith("**STS-B**") and "**MRPC**" not in block

    for method, scores in (("standard", [0.8, 0.82]), ("mixout", [0.79, 0.81])):   # MRPC, kept apart from STS-B
        for seed, test in enumerate(scores):
            write_run(tmp_path / "sweep", f"method={method},seed={seed},task=mrpc", task="mrpc", method=method,
                      seed=seed, test=test, val=test, metric="f1")
    for seed, (test, status) in enumerate([(0.7, "failed"), (0.83, "ok")]):
        write_run(tmp_path / "diagnosis", f"method.strategies.mixout.p=0.0,method=mixout,seed={seed},task=mrpc",
                  task="mrpc", method="mixout", seed=seed, test=test, val=test, metric="f1", status=status,
                  extra_config={"optim": {"clip_norm": 1.0}, "method": {"strategies": {"mixout": {"p": 0.0}}}})
    mrpc = dropout_block(tmp_path, 0.5).split("**MRPC**")[1]
    assert "Test F1, seed for seed:" in mrpc and "| 0 | 0.800 | 0.700 | 0.790 |" in mrpc
    assert "| no better than the majority class | 0/2 | 1/2 | 0/2 |" in mrpc
    assert "above `standard`'s of the same seed in 1 of 2 seeds, and above `mixout`'s in 1." in mrpc


def _logged(root, method, seed, losses, history, steps):
    """An MRPC run whose csv log holds `losses` ({epoch from 0: [training losses]})."""
    run = write_run(root, f"method={method},seed={seed},task=mrpc", task="mrpc", method=method, seed=seed, test=0.8,
                    val=0.8, metric="f1", history=history, steps=steps, epochs=float(len(losses)))
    (run / "logs").mkdir()
    rows = [f"{epoch},{i},{x}," for epoch, xs in losses.items() for i, x in enumerate(xs)]
    (run / "logs" / "metrics.csv").write_text("epoch,step,train/loss,val/f1\n" + "\n".join(rows) + "\n")


def test_the_fit_block_reads_the_logs(tmp_path):
    """fit.py: training loss and validation by epoch, averaged over seeds; an epoch keeps its last
    evaluation; a run without a log is left out; past 11 epochs, the last is shown."""
    from fit import fit_block

    assert fit_block(tmp_path, {"mrpc": "MRPC"}) == "Not run yet."
    history = lambda accs: [{"step": step, "val": a, "accuracy": a} for step, a in zip((1, 2, 4), accs)]  # noqa: E731
    _logged(tmp_path / "sweep", "standard", 0, {0: [0.7, 0.5], 1: [0.2]}, history([0.5, 0.6, 0.7]), steps=4)
    _logged(tmp_path / "sweep", "standard", 1, {0: [0.3], 1: [0.1, 0.3]}, history([0.6, 0.8, 0.9]), steps=4)
    write_run(tmp_path / "sweep", "method=standard,seed=2,task=mrpc", task="mrpc", seed=2, test=0.1, val=0.1)
    _logged(tmp_path / "sweep", "longer", 0, {e: [1.0 / (e + 1)] for e in range(13)}, [], steps=13)
    block = fit_block(tmp_path, {"mrpc": "MRPC"})
    assert "| method | epoch | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 13 |" in block
    assert "| `standard` (2) | training loss | 0.450 | 0.200 | – |" in block     # (0.6 + 0.3) / 2, (0.2 + 0.2) / 2
    assert "| `standard` (2) | val f1 | 0.700 | 0.800 | – |" in block           # epoch 1 keeps step 2's
    assert "| `standard` (2) | val accuracy | 0.700 | 0.800 |" in block
    assert "| `longer` (1) | training loss | 1.000 | 0.500 |" in block and block.endswith("| 0.091 | 0.077 |")
    assert "`longer` (1) | val" not in block


def test_the_status_says_finished_once_every_planned_run_is_in(summarize, tmp_path, monkeypatch):
    from stabilize.report import load_runs
    _stsb(tmp_path / "sweep", "standard", [0.6, 0.7])
    _stsb(tmp_path / "sweep_recipe", "standard", [0.1])
    df, recipe = load_runs(tmp_path / "sweep"), load_runs(tmp_path / "sweep_recipe")
    monkeypatch.setattr(summarize, "PLANNED", {"stsb": 2, "mrpc": 1, "recipe": 1})
    assert "in progress" in summarize.status_text(df, recipe)                  # no MRPC run yet
    write_run(tmp_path / "sweep", "method=standard,seed=0,task=mrpc", task="mrpc", seed=0, test=0.8, val=0.8,
              threshold=0.75, metric="f1", train_size=1000)
    text = summarize.status_text(load_runs(tmp_path / "sweep"), recipe)
    assert text.startswith("**Status of this commit: finished.** Finished runs in `sweep/`: STS-B 2, MRPC 1")
    assert "in progress" in summarize.status_text(load_runs(tmp_path / "sweep"), None)   # the recipe's runs missing


def test_a_readme_without_a_block_is_named(summarize, tmp_path):
    with pytest.raises(SystemExit, match="no block `<!-- begin wall -->`"):
        summarize.replace_block("<!-- begin status -->\n<!-- end status -->", "wall", "x")


def _run_sh_commands():
    """Each launch of run.sh as its overrides, `$after` expanded, the runtime ones left out."""
    text = (STUDY / "run.sh").read_text().replace("\\\n", " ")
    after = re.search(r"^after=(\S+)$", text, re.M).group(1)
    seeds_methods = OmegaConf.load(Path(CONF_DIR) / "experiment" / "offline_study.yaml").hydra.sweeper.params.method
    for line in text.splitlines():
        if line.startswith("sweep ") or line.startswith("stabilize-train "):
            args = line.split("||")[0].replace("$after", after).split()
            args = [a for a in args if "=" in a and not a.startswith(("hydra.", '"$'))]
            yield args if any(a.startswith("method=") for a in args) else [*args, f"method={seeds_methods}"]


@pytest.mark.parametrize("args", list(_run_sh_commands()), ids=" ".join)
def test_every_run_of_run_sh_composes_and_validates(tmp_path, args):
    """Days into the study, no phase may stop on a config error: every method x task of every launch."""
    sweeps = [[f"{a.split('=')[0]}={v}" for v in a.split("=", 1)[1].split(",")] for a in args]
    for overrides in itertools.product(*sweeps):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=["experiment=offline_study", *overrides])
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
        validate(cfg)
        if "method=mosbach" in overrides or "method=bitfit" in overrides or "method=lora" in overrides:
            lr = next(o for o in overrides if o.startswith("optim.lr="))  # the method's own, not the experiment's
            assert cfg.optim.lr == float(lr.split("=")[1])


@pytest.mark.parametrize("task", ["stsb", "mrpc"])
def test_the_probe_diagnosis_runs_the_strategys_probe(tmp_path, task):
    spec = importlib.util.spec_from_file_location("probe", STUDY / "probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    found = probe.probe(task, "debug=tiny", f"data.cache_dir={tmp_path / 'cache'}", run_dir=tmp_path)
    assert found["probe_steps"] == 3  # 3 epochs of tiny's 32 rows, one batch each
    train = {head: found[head]["train"]["loss"] for head in ("fresh", "after the probe", "best constant", "converged")}
    assert train["after the probe"] < train["fresh"]  # the probe trained the head the first step found
    assert train["converged"] <= train["best constant"] + 1e-6
    if task == "stsb":  # a constant has no rank correlation (float32's std of equal values is not 0)
        assert found["best constant"]["train"]["spearman"] is None


@pytest.mark.parametrize("folder", ["sweep", "sweep_recipe", "diagnosis", "sweep_sizes"])
def test_a_relaunch_skips_the_committed_runs(folder):
    """Seed 0 of every launch in a committed folder: the config its folder name composes today is
    the config it ran with (results.same_config), so a relaunch of run.sh or sizes.sh skips it.
    Fails when a new default, a renamed key or a key added without results.ADDED_KEYS would re-run
    the study."""
    from stabilize import results
    checked = 0
    for run in sorted((STUDY / folder).glob("*seed=0,*/results.json")):
        record = json.loads(run.read_text())
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=run.parent.name.split(","))
        with open_dict(cfg):
            cfg.paths.output_dir = record["config"]["paths"]["output_dir"]
        assert results.same_config(record["config"], results.resolved_config(cfg)), run.parent.name
        checked += 1
    assert checked or folder == "sweep_sizes"
