"""`stabilize-report` on hand-written results.json files: every number checked by hand."""
import itertools
import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stabilize import report
from tests.helpers import write_run

# rte, train_size 100. Test scores by hand; threshold 0.53 (study B), majority 0.5.
STANDARD = [0.60, 0.66, 0.70, 0.52, 0.48]         # 0.52: ok but failed (B); 0.48: failed
STANDARD_STATUS = ["ok", "ok", "ok", "ok", "failed"]
REINIT = [0.70, 0.72, 0.75]                        # + one diverged run + one errored run
VALS = {"standard": [0.61, 0.64, 0.70, 0.55, 0.50], "reinit": [0.69, 0.73, 0.74]}


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    wc = {"layers": ["embeddings", "layer.0", "layer.1", "pooler", "head"], "l2": [0.1, 0.2, 0.4, 0.8, 1.6]}
    for seed, (t, s, v) in enumerate(zip(STANDARD, STANDARD_STATUS, VALS["standard"])):
        write_run(root, f"method=standard,seed={seed}", seed=seed, test=t, val=v, status=s, weight_change=wc)
    for seed, (t, v) in enumerate(zip(REINIT, VALS["reinit"])):
        write_run(root, f"method=reinit,seed={seed}", method="reinit", seed=seed, test=t, val=v,
                  weight_change={**wc, "l2": [x * 2 for x in wc["l2"]]})
    write_run(root, "method=reinit,seed=3", method="reinit", seed=3, status="failed", diverged=True,
              reason="diverged: training loss is not finite by step 4")
    write_run(root, "method=reinit,seed=4", method="reinit", seed=4, status="error", error="RuntimeError: boom")
    # Another size, and STS-B (no study-B threshold), nested one level deeper.
    write_run(root / "more", "size1000,seed=0", train_size=1000, test=0.7, val=0.7)
    write_run(root / "more", "size1000,seed=1", train_size=1000, test=0.8, val=0.8)
    write_run(root / "more", "stsb", task="stsb", metric="spearman", threshold=None, majority=None, test=0.8, val=0.8)
    # Broken files: listed as unreadable, not a crash.
    (root / "broken").mkdir()
    (root / "broken" / "results.json").write_text('{"status": "ok", "te')
    (root / "notours").mkdir()
    (root / "notours" / "results.json").write_text("[1, 2, 3]")
    (root / "running").mkdir()
    (root / "running" / "results.json").write_text('{"status": "running"}')
    return root


def test_load_runs(sweep):
    df = report.load_runs(sweep)
    assert len(df) == 13
    assert sorted(p.split("/")[-2] for p, _ in df.attrs["unreadable"]) == ["broken", "notours", "running"]
    rte = df[(df.task == "rte") & (df["size"] == "100")]
    assert sorted(rte["label"].unique()) == ["reinit", "standard"]  # only seeds differ: plain names
    assert rte["diverged"].sum() == 1
    # a diverged run has no score but counts as failed under study B's criterion
    assert rte[rte.diverged]["below_threshold"].tolist() == [True]
    assert rte["below_threshold"].tolist().count(True) == 3  # 0.52, 0.48 and the diverged run
    assert df[df.task == "stsb"]["below_threshold"].isna().all()
    assert set(rte["majority"]) == {0.5}  # the majority predictor's score


def test_summary_matches_hand_computation(sweep):
    df = report.load_runs(sweep)
    rte = df[(df.task == "rte") & (df["size"] == "100")]
    table = report.summary_table(rte).set_index("method")
    assert list(table.index) == ["standard", "reinit"]

    s = table.loc["standard"]
    assert s["n"] == 5 and s["n_scored"] == 5
    assert s["mean"] == pytest.approx(sum(STANDARD) / 5)
    assert s["std"] == pytest.approx(statistics.stdev(STANDARD))
    assert (s["min"], s["median"], s["max"]) == pytest.approx((0.48, 0.60, 0.70))
    assert s["failed"] == pytest.approx(1 / 5)    # status failed
    assert s["below_threshold"] == pytest.approx(2 / 5)  # 0.52 and 0.48 <= 0.53
    assert s["errored"] == 0 and math.isnan(s["p_vs_standard"])

    r = table.loc["reinit"]
    assert r["n"] == 5 and r["n_scored"] == 3 and r["errored"] == 1 and r["diverged"] == 1
    assert r["mean"] == pytest.approx(sum(REINIT) / 3)
    assert r["failed"] == pytest.approx(1 / 4)    # the diverged run among 4 finished ones
    assert r["below_threshold"] == pytest.approx(1 / 4)
    # Welch's t by hand
    ma, mb = np.mean(REINIT), np.mean(STANDARD)
    va, vb = np.var(REINIT, ddof=1) / 3, np.var(STANDARD, ddof=1) / 5
    t = (ma - mb) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 4)
    assert r["welch_t"] == pytest.approx(t)
    assert r["p_vs_standard"] == pytest.approx(2 * stats.t.sf(abs(t), dof))
    # bootstrap CI of the mean: around the mean, reproducible
    assert s["ci_low"] < s["mean"] < s["ci_high"] and r["ci_low"] < r["mean"] < r["ci_high"]
    assert report.bootstrap_ci(STANDARD) == report.bootstrap_ci(STANDARD)
    # best per column
    assert set(r["best_in"].split(",")) == {"mean", "std", "min", "median", "max", "below_threshold"}
    assert set(s["best_in"].split(",")) == {"failed"}
    # ASO: not with reinit's 3 scores (report.stats.ASO_MIN_SCORES), and so no comparison to correct for
    assert math.isnan(r["aso_eps_min"]) and r["aso_comparisons"] == 0 and math.isnan(s["aso_eps_min"])
    # seeds needed: at α 0.05 (m = 0 comparisons count as 1), none for the baseline itself
    assert r["seeds_needed_mean"] == report.seeds_for_mean(REINIT, STANDARD, 0.05)
    assert r["seeds_needed_spread"] == report.seeds_for_spread(REINIT, STANDARD, 0.05)
    assert math.isnan(s["seeds_needed_mean"]) and math.isnan(s["seeds_needed_spread"])


def test_expected_max_closed_form():
    v = [0.5, 0.7, 0.6]
    em = report.expected_max(v)
    assert em[0] == pytest.approx(0.6)                           # n=1: the mean
    assert em[1] == pytest.approx(0.5 / 9 + 0.6 * 3 / 9 + 0.7 * 5 / 9)
    brute = np.mean([max(c) for c in itertools.product(v, repeat=3)])  # all 27 draws of 3
    assert em[2] == pytest.approx(brute)
    assert np.all(np.diff(report.expected_max(STANDARD, 10)) >= 0)
    assert report.expected_max(STANDARD, 200)[-1] == pytest.approx(max(STANDARD))


def test_plots_keep_twenty_methods_apart():
    """A sweep of the seeds' methods and those after them (about 20): no two lines of the
    expected-max or weight-change figure share color and line style (matplotlib has 10 colors)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stabilize.report.plots import plot_expected_max, plot_weight_change

    names = [f"method{i:02d}" for i in range(20)]
    em = pd.DataFrame({n: [0.5, 0.6] for n in names}, index=[1, 2])
    wc = pd.DataFrame([{"label": n, "layer": layer, "position": p, "l2": 1.0}
                       for n in names for p, layer in enumerate(["layer.0", "head"])])
    for ax in (plot_expected_max(em), plot_weight_change(wc)):
        looks = {(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle()) for line in ax.get_lines()}
        assert len(ax.get_lines()) == 20 and len(looks) == 20
        plt.close(ax.figure)


def test_cli_writes_tables_and_plots(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    report.main([str(sweep), "--out", str(out)])
    msg = capsys.readouterr()
    assert "13 runs" in msg.out and "3 unreadable" in msg.out and "broken" in msg.err
    names = {p.name for p in out.iterdir()}
    for stem in ("rte_100", "rte_1000", "stsb_100"):
        assert {f"table_{stem}.md", f"table_{stem}.csv", f"scores_{stem}.png", f"expected_max_{stem}.png",
                f"expected_max_{stem}.csv"} <= names
    assert "weight_change_rte_100.png" in names and "weight_change_rte_1000.png" not in names
    csv = pd.read_csv(out / "table_rte_100.csv").set_index("method")
    assert csv.loc["standard", "mean"] == pytest.approx(np.mean(STANDARD))
    md = (out / "table_rte_100.md").read_text()
    assert "Welch" in md and "unpaired" in md and "τ = 0.2" in md and "1 − α/m = 0.9500" in md
    reinit = md.rstrip().splitlines()[-1].split("|")
    assert reinit[-4].strip() == "–" and "only with 5 scores or more a side" in md  # ASO of reinit's 3 scores
    csv_reinit = csv.loc["reinit"]
    assert [c.strip() for c in reinit[-3:-1]] == [f"{csv_reinit.seeds_needed_mean:.0f}",
                                                   f"{csv_reinit.seeds_needed_spread:.0f}"]
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.split("|")[-3:-1]] == ["seeds (mean)", "seeds (spread)"]
    assert "with power 0.8 at the same α/m = 0.05" in md and "Brown–Forsythe" in md
    assert "failed (B)" in md and "`below_threshold`" in md
    assert "**20% (1/5)**" in md and "| **72.33** |" in md   # best failed share, best mean
    em = pd.read_csv(out / "expected_max_rte_100.csv", index_col="n")
    assert em.loc[1, "standard"] == pytest.approx(np.mean(VALS["standard"]))
    assert math.isnan(em.loc[5, "reinit"])  # reinit has 3 validation scores
    assert (out / "report.md").read_text().count("![scores]") == 3
    assert len(pd.read_csv(out / "runs.csv")) == 13


def test_no_runs_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        report.main([str(tmp_path / "empty")])
    assert e.value.code == 2 and "no readable results.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        report.main([str(tmp_path / "missing")])
    assert e.value.code == 2


def test_only_unreadable_runs_exit_2(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text("{")
    with pytest.raises(SystemExit) as e:
        report.main([str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unreadable" in err


def test_variants_of_a_method_are_told_apart(tmp_path):
    for seed, lr in itertools.product((0, 1), (1e-5, 2e-5)):
        write_run(tmp_path, f"lr={lr},seed={seed}", seed=seed, test=0.6 + seed / 10, val=0.6,
                  extra_config={"optim": {"lr": lr}})
    df = report.load_runs(tmp_path)
    assert sorted(df["label"].unique()) == ["standard [optim.lr=1e-05]", "standard [optim.lr=2e-05]"]
    table = report.summary_table(df)
    assert table["n"].tolist() == [2, 2]


def test_old_results_files_give_the_same_tables(sweep, tmp_path):
    """Files written before `below_threshold` and `diverged` (`failed_b`, reason "diverged: ...")."""
    old = tmp_path / "old"
    for path in sweep.rglob("results.json"):
        target = old / path.relative_to(sweep)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(record, dict) and "below_threshold" in record:
            below = record.pop("below_threshold")
            record.pop("diverged")
            if record["test"] is not None and below is not None:  # the old format had none for a diverged run
                record["failed_b"] = below
        target.write_text(json.dumps(record))
    new_df, old_df = report.load_runs(sweep), report.load_runs(old)
    assert old_df["reason"].str.startswith("diverged").sum() == 1 and old_df["diverged"].sum() == 1
    for (_, _, new), (_, _, earlier) in zip(report.groups(new_df), report.groups(old_df), strict=True):
        pd.testing.assert_frame_equal(report.summary_table(new), report.summary_table(earlier))


A_ABOVE = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86, 0.87, 0.88, 0.89]
B_BELOW = [0.60, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.69]


def test_aso_orders_clearly_separated_methods():
    # every score of A above every score of B: no quantile of A below B's, in any resample
    assert report.aso(A_ABOVE, B_BELOW) == pytest.approx(0, abs=0.01)
    # the reverse: below at every quantile (deepsig leaves out the first quantile, t = dt)
    assert report.aso(B_BELOW, A_ABOVE) == pytest.approx(1, abs=0.01)
    # the same scores: eps_W2 = 0.5, and its upper bound stays above tau both ways
    assert report.aso(A_ABOVE, list(A_ABOVE)) >= 0.5
    assert math.isnan(report.aso([0.7], B_BELOW))  # one score: no spread to bootstrap
    # 2 against 2 that do not overlap would be "dominance" at eps_min 0: too few scores to say
    assert math.isnan(report.aso(A_ABOVE[:4], B_BELOW)) and math.isnan(report.aso(A_ABOVE, B_BELOW[:2]))
    assert report.aso(A_ABOVE[:5], B_BELOW[:5]) == pytest.approx(0, abs=0.01)


def test_aso_is_seeded_bonferroni_corrected_and_leaves_numpy_alone(monkeypatch):
    a, b = [0.70, 0.74, 0.71, 0.76, 0.69], [0.68, 0.72, 0.66, 0.73, 0.70]
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    first = report.aso(a, b, num_comparisons=3)
    assert np.array_equal(np.random.get_state()[1], before)
    assert report.aso(a, b, num_comparisons=3) == first
    assert report.aso(a, b, num_comparisons=1) <= first  # a lower level: a lower (or equal) bound

    seen = {}
    monkeypatch.setattr("deepsig.aso", lambda a, b, **kw: seen.update(kw) or 0.0)
    report.aso(a, b, num_comparisons=9)
    assert seen["confidence_level"] == pytest.approx(1 - 0.05 / 9) and seen["num_comparisons"] == 1
    assert seen["seed"] == 0 and seen["show_progress"] is False

