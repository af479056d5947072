"""experiments/offline_study, its size sweep (section 6) and controls (section 7): every launch of
sizes.sh composed and validated, sizes.py's blocks read from hand-written runs, and the README's
readings of the finished phase 1 and of phase 3's seeds 0-4 against their committed runs."""
import itertools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from stabilize.config import validate
from stabilize.train import CONF_DIR
from tests.helpers import ROOT, write_run

STUDY = ROOT / "experiments" / "offline_study"
sys.path.insert(0, str(STUDY))  # sizes.py imports clipping.py beside it, as `python summarize.py` does


def _sizes_sh_commands():
    """Each launch of sizes.sh as its overrides (printed with SIZES_DRY=1), the runtime ones and the
    seeds left out, each once (a launch of other seeds composes the same configs)."""
    out = subprocess.run(["bash", str(STUDY / "sizes.sh")], env={**os.environ, "SIZES_DRY": "1"},
                         capture_output=True, text=True, check=True).stdout
    launches = (tuple(a for a in line.split()[2:] if "=" in a and not a.startswith(("hydra", "seed=", "trainer.")))
                for line in out.splitlines())
    return [list(args) for args in dict.fromkeys(launches)]


@pytest.mark.parametrize("args", _sizes_sh_commands(), ids=" ".join)
def test_every_run_of_sizes_sh_composes_and_validates(tmp_path, args):
    sweeps = [[f"{a.split('=')[0]}={v}" for v in a.split("=", 1)[1].split(",")] for a in args]
    for overrides in itertools.product(*sweeps):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=list(overrides))
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
        validate(cfg)
        assert cfg.data.train_size in (100, 300, 1000, 2388, 3000)
        if "method=mosbach" in overrides:  # its own recipe, not the experiment's
            assert (cfg.optim.lr, cfg.optim.max_epochs, cfg.optim.batch_size) == (2e-5, 20, 16)


def _size_run(root, folder, method, seed, size, test, task="stsb", **config):
    extra = {"optim": {"eps_placement": config.pop("eps", "after_correction")}}
    strategies = config.pop("strategies", {})
    metric = "spearman" if task == "stsb" else "f1"
    run = write_run(root / folder, f"{task},{method},{size},{seed},{test}", task=task, method=method, seed=seed,
                    train_size=size, test=test, threshold=None, metric=metric, extra_config=extra, **config)
    record = json.loads((run / "results.json").read_text())
    record["config"]["method"]["strategies"] = strategies
    record["config"]["task"]["select_metric"] = metric
    (run / "results.json").write_text(json.dumps(record))


def test_the_size_block_reads_sizes_spread_and_gains(tmp_path):
    """Hand-written STS-B runs: standard's spread grows as the data shrink at the recipe and not at
    800 steps; reinit gains at 100 only; the 1k points come from sweep/, no dropout from diagnosis/."""
    import sizes
    from dropout import task_rules
    shape = np.array([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5])  # a spread pattern over the seeds, scaled per arm
    for seed, x in enumerate(shape):
        for size, spread in ((100, 0.2), (300, 0.1), (3000, 0.01)):
            _size_run(tmp_path, "sweep_sizes", "standard", seed, size, 0.5 + spread * x)
            _size_run(tmp_path, "sweep_sizes", "longer", seed, size, 0.8 + 0.01 * x)
            _size_run(tmp_path, "sweep_sizes", "reinit", seed, size,
                      (0.9 if size == 100 else 0.5) + 0.01 * x)
        _size_run(tmp_path, "sweep", "standard", seed, 1000, 0.6 + 0.05 * x)
        _size_run(tmp_path, "sweep", "longer", seed, 1000, 0.8 + 0.01 * x)
        _size_run(tmp_path, "diagnosis", "mixout", seed, 1000, 0.7, strategies={"mixout": {"p": 0.0}})
        _size_run(tmp_path, "diagnosis", "standard", seed, 1000, 0.0)  # another diagnosis: not an arm
    block = sizes.sizes_block(tmp_path, {"stsb": task_rules(0.5)["stsb"]})
    assert "| | 100 | 300 | 1,000 | 3,000 |" in block and "54 of the 230 planned runs" in block
    standard = next(line for line in block.splitlines() if line.startswith("| `standard`, the recipe"))
    assert standard.count("(6") == 4  # six seeds at every size: the diagnosis' standard runs are not among them
    recipe, budget = [line for line in block.splitlines() if line.startswith("- `standard`")]
    assert float(re.search(r"p (\S+) \(", recipe).group(1)) < 0.01 < float(re.search(r"p (\S+) \(", budget).group(1))
    gains = [line for line in block.splitlines() if line.startswith("| `reinit`")][-1]  # the gain table's
    assert gains.split("|")[2].strip().startswith("+") and "✓" in gains.split("|")[2] and "✓" not in gains.split("|")[3]
    assert "| no dropout (`mixout`, p = 0) | – | – | 70.0 ± 0.0 (6) | – |" in block
    assert "![STS-B against the size](report/sizes_stsb.png)" in block  # the figure, drawn beside the README
    from matplotlib.image import imread
    assert imread(tmp_path / "report" / "sizes_stsb.png").std() > 0


def test_the_size_block_reads_mrpc_at_its_own_largest_size(tmp_path):
    """Phase 4 before its runs: MRPC's largest size is 2,388, its failed runs are study A's (status
    failed), and a task with no new run says so."""
    import sizes
    from dropout import task_rules
    for seed in range(5):
        for size in (100, 2388):
            _size_run(tmp_path, "sweep_sizes", "standard", seed, size, 0.81 if size == 100 else 0.85 + 0.01 * seed,
                      task="mrpc", status="failed" if size == 100 and seed < 3 else "ok")
        _size_run(tmp_path, "sweep", "standard", seed, 1000, 0.80, task="mrpc")
    block = sizes.sizes_block(tmp_path, task_rules(0.5))
    assert "**STS-B**: no run of the size sweep yet." in block
    assert "**MRPC** (10 of the 70 planned runs of `sweep_sizes/` finished; test F1 × 100" in block
    assert "| | 100 | 1,000 | 2,388 |" in block
    assert "| `standard`, the recipe | 81.0 ± 0.0 (5, 3 failed) | 80.0 ± 0.0 (5) | 87.0 ± 1.6 (5) |" in block
    assert "![MRPC against the size](report/sizes_mrpc.png)" in block


def _moved(x: float) -> dict:
    """A weight_change.json whose encoder layers moved x on average; embeddings and head far more."""
    return {"layers": ["embeddings", "layer.0", "layer.1", "head"], "l2": [9.0, x - 0.1, x + 0.1, 9.0]}


def test_the_controls_block_sets_each_control_beside_its_earlier_runs(tmp_path):
    import sizes
    from dropout import task_rules
    for seed in range(3):
        _size_run(tmp_path, "sweep", "lpft", seed, 1000, 0.80 + 0.01 * seed, strategies={"lpft": {}},
                  probe_last_loss=5.0 + seed, weight_change=_moved(0.9))
        _size_run(tmp_path, "sweep_sizes", "lpft", seed, 1000, 0.70 + 0.01 * seed, strategies={"lpft": {"probe": "fit"}},
                  probe_model="ridge", probe_init_loss=6.0, probe_train_loss=0.5 + 0.1 * seed, probe_val=0.7,
                  probe_reg_name="alpha", probe_reg=[5.0, 5.0, 50.0][seed], probe_converged=None,
                  weight_change=_moved(0.5 + 0.1 * seed))
        _size_run(tmp_path, "sweep", "mosbach", seed, 1000, 0.45 if seed == 0 else 0.81)  # failed: below 0.5
        _size_run(tmp_path, "sweep_sizes", "mosbach", seed, 1000, 0.82 + 0.01 * seed, eps="before_correction")
    block = sizes.controls_block(tmp_path, {"stsb": task_rules(0.5)["stsb"]})
    assert "| STS-B | `lpft`, fitted probe | `lpft`, gradient probe (`sweep/`) | 71.0 ± 1.0 (3) vs 81.0 ± 1.0 (3)" in block
    assert "| STS-B | `mosbach`, the papers' Adam | `mosbach`, torch's AdamW (`sweep/`) | 83.0 ± 1.0 (3) vs 69.0 ± 20.8 (3, 1 failed)" in block
    assert ("- STS-B, the fitted probe (ridge, 3 runs; medians [min, max]): loss on the eval-mode training "
            "features 6 (the random head) → 0.6 [0.5, 0.7]; validation spearman 0.7; alpha 5 [5, 50]. The gradient "
            "probe (`sweep/`, 3 runs) ended at a training-batch loss of 6 [5, 7] (dropout on). The encoder's weight "
            "change (L2 distance from the pretrained weights, mean over its layers; median over the runs): fitted "
            "probe 0.60, gradient probe 0.90.") in block  # embeddings and head are not the encoder's layers


GAIN = re.compile(r"(\S+) \(p (\S+?)[ ;]")  # a cell of the gain table: the difference, Welch's p


def _paragraph(text: str, opening: str) -> str:
    """The paragraph of `text` that starts with `opening`, on one line."""
    start = text.index(opening)
    return " ".join(text[start:text.index("\n\n", start)].split())


def _failed(record: dict) -> bool:
    """A failed STS-B run, by the rule the size block itself applies (summarize.py's)."""
    from dropout import task_rules
    from summarize import STSB_LEARNS
    return task_rules(STSB_LEARNS)["stsb"][2][1](record)


def test_phase_1s_reading_quotes_its_committed_runs():
    """Section 6's reading of phase 1 (finished) and the top README quote the means, spreads,
    failed runs and Brown–Forsythe p of the committed runs, and the gap each size's budget closes."""
    import sizes
    found, sizes_ = sizes.collect(STUDY, "stsb"), (100, 300, 1000, 3000)
    assert all(len(found[(k, s)]) == 10 for k in ("standard", "longer") for s in sizes_)
    mean, std = ({(k, s): f"{100 * f(sizes.scores(found, (k, s))):.1f}" for k in ("standard", "longer") for s in sizes_}
                 for f in (np.mean, lambda x: x.std(ddof=1)))
    p = dict(zip(("standard", "longer"), (re.search(r"p (\S+) \(", line).group(1)
                                          for line in sizes.spread_lines(found, sizes_))))  # the block's test
    failed = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"][
        sum(map(_failed, found["longer", 100]))]
    spread = "{}, {}, {} and {} at 3,000, 1,000, 300 and 100 examples".format(*(std["longer", s] for s in sizes_[::-1]))
    reading = _paragraph(STUDY.joinpath("README.md").read_text(), "Phase 1 (`standard` at the recipe")
    for quote in (f"means {mean['standard', 100]} and {mean['standard', 300]} at 100 and 300 examples",
                  f"{mean['standard', 3000]} at 3,000 examples and 282 steps",
                  "deviation is {}, {}, {} and {} at 100, 300, 1,000 and 3,000".format(*(std["standard", s] for s in sizes_)),
                  f"p {p['standard']}, significant", f"p {p['longer']}, below", spread,
                  f"(100 examples: {mean['longer', 100]}, {failed} of the ten runs failed; 300: {mean['longer', 300]})",
                  f"(1,000: {mean['longer', 1000]}; 3,000: {mean['longer', 3000]})"):
        assert quote in reading, quote
    closed = {s: (float(mean["longer", s]) - float(mean["standard", s]))
              / (float(mean["longer", 3000]) - float(mean["standard", s])) for s in (100, 300)}
    assert 0.4 < closed[100] < 0.5 and 0.7 < closed[300] < 0.8
    assert "almost half of it at 100, three quarters at 300" in reading
    top = " ".join(ROOT.joinpath("README.md").read_text().split())
    assert f"std {spread}, 10 seeds a size; Brown–Forsythe p {p['longer']})" in top


def test_phase_3s_first_reading_quotes_seeds_0_to_4():
    """Section 6's first reading of phase 3 (seeds 0-4 of four methods at 100, 300 and 3,000
    examples, against `standard`'s 10; `mosbach`'s at 100 and 300, its seeds 0 and 1 at 3,000) and
    the top README quote the gains, Welch p and failed runs of those seeds; later seeds leave it as
    it is."""
    import sizes
    named = {"reinit": "`reinit`", "llrd": "`llrd`", "lpft": "`lpft`", "no dropout": "no dropout"}
    all_sizes, new = (100, 300, 1000, 3000), (100, 300, 3000)
    found = {k: [r for r in runs if k[1] not in new or k[0] in ("standard", "longer") or r["seed"] < 5]
             for k, runs in sizes.collect(STUDY, "stsb").items()}
    assert all(len(found[(m, s)]) == 5 for m in named for s in new)
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in sizes.gain_table(found, all_sizes)
            if line.startswith("| ")}  # the block's own table: gain, Welch p
    gain, p = ({(m, s): GAIN.match(rows[sizes.ARMS[m]][i]).group(g)
                for m in named for i, s in enumerate(all_sizes)} for g in (1, 2))
    learned = [(m, s, r) for m in named for s in (100, 300) for r in found[(m, s)] if not _failed(r)]
    assert [(m, s, r["seed"]) for m, s, r in learned] == [("reinit", 300, 0)]
    mean = lambda k, s: 100 * sizes.scores(found, (k, s)).mean()  # noqa: E731
    longer = {s: f"+{mean('longer', s) - mean('standard', s):.1f}" for s in (100, 300)}
    at_3000 = max(abs(float(gain[m, 3000])) for m in named)
    at_1000 = sorted(float(gain[m, 1000]) for m in named)
    reading = _paragraph(STUDY.joinpath("README.md").read_text(), "Phase 3 (the methods")
    quotes = [f"`standard`'s {mean('standard', 3000):.1f} by more than {at_3000:.1f}",
              f"`longer`'s {mean('longer', 3000):.1f} at 800 steps", "the one significant at α 0.05/4",
              f"the gains are those of sections 3 and 7, {at_1000[0]:+.1f} to {at_1000[-1]:+.1f}",
              f"(`reinit`'s seed 0, {100 * learned[0][2]['test']:.1f})", f"against {longer[100]} and {longer[300]}",
              "peak at 300 examples (`reinit`, `lpft`) or 1,000 (`llrd`, no dropout)"]
    quotes += [f"{sizes.ARMS[m]} {gain[m, 3000]}, p {p[m, 3000]}" for m in named]
    quotes += [f"{named[m]} {gain[m, 100]} and {gain[m, 300]} (p {p[m, 100]} and {p[m, 300]})" for m in named]
    for quote in quotes:
        assert quote in reading, quote
    assert [m for m in named if float(p[m, 3000]) < sizes.ALPHA / len(named)] == ["no dropout"]
    assert mean("no dropout", 3000) > mean("longer", 3000)
    peak = {m: max((100, 300, 1000), key=lambda s: float(gain[m, s])) for m in named}
    assert peak == {"reinit": 300, "llrd": 1000, "lpft": 300, "no dropout": 1000}
    best = max((gain[m, s] for m in named for s in (100, 300)), key=float)
    assert best == gain["lpft", 300]
    top = " ".join(ROOT.joinpath("README.md").read_text().split())
    for quote in (f"none moves `standard` by more than {at_3000:.1f} at 3,000 examples",
                  f"(at most {best}, `lpft` at 300) stay below 800 steps' ({longer[100]} and {longer[300]})"):
        assert quote in top, quote
    _mosbachs_reading_quotes_its_seeds(found, rows[sizes.ARMS["mosbach"]], reading, top)


def _mosbachs_reading_quotes_its_seeds(found, row, reading, top):
    """`mosbach` (its own recipe) against `standard` (`row`: its cells of the gain table, 100 to
    3,000 examples) and `longer`: seeds 0-4 at 100 and 300, the study's 10 at 1,000, seeds 0 and 1
    at 3,000."""
    import sizes
    from stabilize.report import welch
    assert all(len(found[("mosbach", s)]) == 5 for s in (100, 300))
    x = {s: 100 * sizes.scores(found, ("mosbach", s)) for s in (100, 300, 1000)}
    longer = {s: 100 * sizes.scores(found, ("longer", s)) for s in (100, 300, 1000)}
    gain = {s: GAIN.match(row[i]).groups() for i, s in enumerate((100, 300))}
    vs_longer = {s: (f"{x[s].mean() - longer[s].mean():+.1f}", f"{welch(x[s], longer[s])[1]:.2g}") for s in x}
    at_3000 = {r["seed"]: 100 * r["test"] for r in found[("mosbach", 3000)] if r["seed"] < 2}
    assert [sum(map(_failed, found[("mosbach", s)])) for s in (100, 300)] == [5, 0]
    quotes = [f"learned ({x[300].mean():.1f} ± {x[300].std(ddof=1):.1f}, {x[300].min():.1f} to {x[300].max():.1f}; "
              f"{gain[300][0]} on `standard`, p {gain[300][1]})",
              f"`longer`'s at 800 steps ({longer[300].mean():.1f} ± {longer[300].std(ddof=1):.1f}; `mosbach` "
              f"{vs_longer[300][0]}, Welch p {vs_longer[300][1]})",
              f"failed ({x[100].mean():.1f} ± {x[100].std(ddof=1):.1f}; {gain[100][0]}, p {gain[100][1]}), "
              f"{-float(vs_longer[100][0]):.1f} below `longer`'s {longer[100].mean():.1f} (p {vs_longer[100][1]})",
              f"({vs_longer[1000][0]}, p {vs_longer[1000][1]}, section 3's runs)",
              f"seeds 0 and 1 ({at_3000[0]:.1f} and {at_3000[1]:.1f}) are beside `longer`'s "
              f"{100 * sizes.scores(found, ('longer', 3000)).mean():.1f}",
              "(all five at 300 examples, against one of `reinit`'s and none of the others')"]  # `learned` above
    for quote in quotes:
        assert quote in reading, quote
    quote = (f"({x[300].mean():.1f} against {longer[300].mean():.1f} at 300), not at 100 ({x[100].mean():.1f} "
             f"against {longer[100].mean():.1f}: 140 steps against 800)")
    assert quote in top, quote
