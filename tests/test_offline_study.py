"""experiments/offline_study: summarize.py on hand-written runs (the README's blocks and verdicts),
and every launch of run.sh composed and validated."""
import importlib.util
import itertools
import re
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from stabilize.config import validate
from stabilize.train import CONF_DIR
from tests.helpers import ROOT, write_run

STUDY = ROOT / "experiments" / "offline_study"


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
    shutil.copytree(STUDY, folder, ignore=shutil.ignore_patterns("sweep*", "report", "pilot"))
    sweep = folder / "sweep"
    _stsb(sweep, "standard", [0.60, 0.65, 0.70, 0.55, 0.68, 0.62])
    _stsb(sweep, "reinit", [0.800, 0.801, 0.800, 0.802, 0.800, 0.801])   # higher and narrower: both as in study A
    _stsb(sweep, "llrd", [0.30, 0.31, 0.29, 0.33, 0.30, 0.32])     # study A: no clear difference
    _stsb(sweep, "mixout", [0.61, 0.66, 0.69, 0.56, 0.67, 0.63])   # study A: no clear difference
    _stsb(sweep, "bertadam", [0.1, 0.2, 0.7])                       # too few seeds
    _stsb(sweep, "ema", [0.63, 0.64, 0.65, 0.64, 0.63, 0.65])      # section C: a smaller spread
    for seed in range(5):
        write_run(sweep, f"method=standard,seed={seed},task=mrpc", task="mrpc", seed=seed, test=0.8, val=0.8,
                  threshold=0.75, metric="f1", train_size=1000, accuracy=0.72, majority_accuracy=0.685)
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
    assert rows["longer"].endswith("| not run yet | cannot tell |")
    assert "STS-B 33, MRPC 5" in _block(text, "status")
    assert "MRPC, 10 steps (standard)" in _block(text, "wall")
    results = _block(text, "results")
    assert results.index("#### STS-B") < results.index("#### MRPC")
    assert "Mean test accuracy (the majority class's: 0.685): standard 0.720." in results
    assert "bertadam 2/3" in results
    assert _block(text, "recipe").strip() == "Not run yet."
    assert (folder / "report" / "sweep" / "table_stsb_1000.md").is_file()


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
