"""A task is one YAML file: the shipped ones, `tasks.check` on bad ones, and a user's own task
(their own data, their own config folder) run end to end."""
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from stabilize import tasks
from stabilize.errors import ConfigError
from tests.conftest import TINY, make_cfg
from tests.helpers import run_cli

SHIPPED = sorted(p.stem for p in tasks.TASK_DIR.glob("*.yaml"))
GLUE = {"rte": (("sentence1", "sentence2"), "label", ("entailment", "not_entailment"), "accuracy", "accuracy"),
        "mrpc": (("#1 String", "#2 String"), "Quality", ("0", "1"), "f1", "accuracy"),
        "stsb": (("sentence1", "sentence2"), "score", (), "spearman", "spearman"),
        "cola": ((3,), 1, ("0", "1"), "mcc", "mcc")}
HUB_ONLY = {"sst2": 2, "qnli": 2, "qqp": 2, "mnli": 3, "wnli": 2, "boolq": 2, "cb": 3}


# ------------------------------------------------------------------ the shipped task files

def test_every_promised_task_is_shipped():
    assert set(SHIPPED) == set(GLUE) | set(HUB_ONLY)


@pytest.mark.parametrize("name", sorted(GLUE))
def test_glue_task_files_say_what_study_a_reads(name):
    spec = tasks.load(name)
    text, label, labels, metric, select = GLUE[name]
    assert (spec.columns.text, spec.columns.label, spec.labels) == (text, label, labels)
    assert (spec.metric, spec.select_metric, spec.format) == (metric, select, "tsv")
    assert spec.header == (name != "cola")
    assert spec.hub.path == "nyu-mll/glue" and spec.hub.name == name


@pytest.mark.parametrize("name", sorted(HUB_ONLY))
def test_hub_task_files(name):
    spec = tasks.load(name)
    assert spec.files is None and spec.hub is not None and spec.num_labels == HUB_ONLY[name]
    assert spec.hub.splits["dev"] == ("validation_matched" if name == "mnli" else "validation")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_tasks_pass_the_check(tmp_path, name):
    source = "files" if name in GLUE else "hub"
    assert tasks.check(make_cfg(tmp_path, f"task={name}", f"data.source={source}")) == []


def test_a_hub_task_read_from_files_says_how_to_read_it(tmp_path):
    assert tasks.check(make_cfg(tmp_path, "task=mnli")) == [
        "task.files: missing (data.source is files); it is a hub task: add data.source=hub"]


# ------------------------------------------------------------------ check: keys and values

def _check(tmp_path, task: dict, *overrides):
    cfg = make_cfg(tmp_path, *overrides)
    with open_dict(cfg):
        cfg.task = OmegaConf.create(task)
    return tasks.check(cfg)


def _task(**changes) -> dict:
    t = {"name": "reviews", "files": {"train": "train.csv", "dev": "dev.csv"}, "format": "csv", "header": True,
         "text": ["review"], "label": "stars", "labels": ["1", "2", "3"], "metric": "accuracy"}
    t.update(changes)
    return {k: v for k, v in t.items() if v is not ...}


@pytest.fixture
def reviews(tmp_path) -> Path:
    """data.dir of a 3-class CSV task: train.csv and dev.csv."""
    for split in ("train", "dev"):
        (tmp_path / f"{split}.csv").write_text("id,review,stars\n1,great,3\n2,\"so, so\",2\n3,bad,1\n")
    return tmp_path


def test_a_good_user_task_has_no_problem(tmp_path, reviews):
    assert _check(tmp_path, _task(), f"data.dir={reviews}") == []
    assert tasks.from_config(_task()).num_labels == 3


@pytest.mark.parametrize("changes,problem", [
    ({"label": ...}, "task.label: missing"),
    ({"lables": ["a", "b"]}, "task.lables: unknown key"),
    ({"format": "xlsx"}, "task.format: 'xlsx' is not one of tsv, csv, jsonl"),
    ({"metric": "auc"}, "task.metric: unknown metric 'auc'"),
    ({"select_metric": "spearman"}, "task.select_metric: spearman is not a classification metric"),
    ({"metric": "f1"}, "task.metric: f1 is binary, and the task has 3 classes"),
    ({"labels": []}, "task.metric: accuracy is not a regression metric"),
    ({"labels": ["only"]}, "task.labels: one class"),
    ({"labels": ["a", "a", "b"]}, "task.labels: ['a', 'a', 'b'] names a class twice"),
    ({"text": ["a", "b", "c"]}, "task.text: ['a', 'b', 'c'] is not a list of one or two columns"),
    ({"header": False}, "task.text: 'review' is not a 0-based column index (task.header is false)"),
    ({"header": "yes"}, "task.header: 'yes' is neither true nor false"),
    ({"files": {"train": "train.csv"}}, "task.files: {'train': 'train.csv'} is not {train: PATH, dev: PATH}"),
    ({"fail_threshold": "low"}, "task.fail_threshold: 'low' is not a number"),
])
def test_each_bad_key_is_named(tmp_path, reviews, changes, problem):
    problems = _check(tmp_path, _task(**changes), f"data.dir={reviews}")
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize("override,problem", [
    ("data.source=tsv", "data.source: 'tsv' is neither 'files' (data.dir) nor 'hub' (task.hub)"),
    ("data.train_size=0", "data.train_size: 0 is neither a positive integer nor 'full'"),
    ("data.train_size=abc", "data.train_size: 'abc' is neither"),
    ("data.train_size=true", "data.train_size: True is neither"),
    ("data.seed=-1", "data.seed: -1 is not a non-negative integer"),
    ("data.split_seed=null", "data.split_seed: None is not a non-negative integer"),
])
def test_each_bad_data_value_is_named(tmp_path, override, problem):
    assert problem in "\n".join(tasks.check(make_cfg(tmp_path, override)))


def test_hub_keys_are_checked(tmp_path):
    hub = {"path": "", "splits": {"train": "train"}, "text": ["a", 3], "revision": "main"}
    problems = _check(tmp_path, _task(files=None, hub=hub), "data.source=hub")
    for p in ("task.hub.revision: unknown key", "task.hub.path: '' is not", "task.hub.splits: {'train': 'train'}",
              "task.hub.text: 3 is not a column name"):
        assert any(x.startswith(p) for x in problems), problems
    assert _check(tmp_path, _task(files=None), "data.source=hub") == [
        "task.hub: missing (data.source is hub): {path, name, splits: {train: ..., dev: ...}}"]


def test_every_problem_at_once(tmp_path):
    problems = _check(tmp_path, _task(format="xls", metric="auc", labels=["x"], label=...), "data.train_size=-1")
    assert problems == ["data.train_size: -1 is neither a positive integer nor 'full'",
                        "task.label: missing (a task file has name, text, label, labels, metric)",
                        "task.labels: one class ['x']; list two or more, or [] for regression",
                        "task.metric: unknown metric 'auc'; "
                        "choose one of accuracy, f1, macro_f1, mcc, pearson, spearman",
                        "task.format: 'xls' is not one of tsv, csv, jsonl"]
    problems = _check(tmp_path, _task(format="xls", metric="auc"), "data.train_size=-1", f"data.dir={tmp_path}")
    assert [p.split(":")[0] for p in problems] == ["data.train_size", "task.metric", "task.format"]


# ------------------------------------------------------------------ check: the data files' first lines

def test_missing_file_and_missing_data_dir(tmp_path, reviews):
    (reviews / "dev.csv").unlink()
    assert _check(tmp_path, _task(), f"data.dir={reviews}") == [
        f"{reviews / 'dev.csv'}: no such file (task.files.dev, in data.dir)"]
    assert _check(tmp_path, _task(), f"data.dir={tmp_path / 'nowhere'}") == [
        f"data.dir: {tmp_path / 'nowhere'} is not a folder"]


@pytest.mark.parametrize("text,problem", [
    ("", "train.csv:1: empty file"),
    ("id,review,stars\n", "train.csv:2: no data rows after the header"),
    ("id,text,stars\n1,good,3\n",
     "train.csv:1: no column 'review' (task.text); the header has ['id', 'text', 'stars']"),
    ("id,review,grade\n1,good,3\n",
     "train.csv:1: no column 'stars' (task.label); the header has ['id', 'review', 'grade']"),
    ("id,review,stars\n1,good\n", "train.csv:2: expected 3 columns, found 2"),
    ("id,review,stars\n1,good,5\n", "train.csv:2: label '5' is not one of task.labels ['1', '2', '3']"),
])
def test_first_lines_of_a_file_are_checked(tmp_path, reviews, text, problem):
    (reviews / "train.csv").write_text(text)
    problems = _check(tmp_path, _task(), f"data.dir={reviews}")
    assert problems == [f"{reviews}/{problem}"]


def test_column_index_beyond_the_row(tmp_path):
    (tmp_path / "train.tsv").write_text("a\t1\n")
    (tmp_path / "dev.tsv").write_text("a\t1\n")
    task = _task(files={"train": "train.tsv", "dev": "dev.tsv"}, format="tsv", header=False, text=[0], label=2)
    assert _check(tmp_path, task, f"data.dir={tmp_path}") == [
        f"{tmp_path}/train.tsv:1: no column 2 (task.label); the row has 2 columns",
        f"{tmp_path}/dev.tsv:1: no column 2 (task.label); the row has 2 columns"]


def test_from_config_refuses_a_bad_task():
    with pytest.raises(ConfigError) as e:
        tasks.from_config(_task(metric="auc", text=[]))
    assert [p.split(":")[0] for p in e.value.problems] == ["task.metric", "task.text"]


# ------------------------------------------------------------------ a user's own task, end to end

ROWS = {"0": "the film was awful and boring", "1": "an ordinary film, some good and some bad",
        "2": "a wonderful film, moving and funny"}


def _user_task(root: Path, fmt: str) -> tuple[Path, Path]:
    """A 3-class task the package does not ship: my_conf/task/stars.yaml and its data in data/."""
    data = root / "data" / "stars"
    data.mkdir(parents=True)
    for split, n in (("train", 20), ("dev", 6)):
        rows = [(f"{ROWS[c]} #{i}", c) for i in range(n) for c in ROWS]
        if fmt == "csv":
            text = "stars,review\n" + "".join(f'{c},"{t}"\n' for t, c in rows)
        else:
            text = "".join(json.dumps({"review": t, "stars": int(c)}) + "\n" for t, c in rows)
        (data / f"{split}.{fmt}").write_text(text)
    conf = root / "my_conf" / "task"
    conf.mkdir(parents=True)
    (conf / "stars.yaml").write_text(
        f"name: stars\nfiles: {{train: stars/train.{fmt}, dev: stars/dev.{fmt}}}\nformat: {fmt}\nheader: true\n"
        "text: [review]\nlabel: stars\nlabels: ['0', '1', '2']\nmetric: macro_f1\nselect_metric: accuracy\n")
    return root / "my_conf", root / "data"


def _cli(monkeypatch, tmp_path, conf: Path, data: Path, *more) -> tuple[int, dict]:
    run_dir = tmp_path / "run"
    monkeypatch.setenv("STABILIZE_CACHE", str(tmp_path / "cache"))
    rc = run_cli(monkeypatch, *TINY, "task=stars", f"data.dir={data}", f"hydra.searchpath=[file://{conf}]",
                 f"hydra.run.dir={run_dir}", *more)
    return rc, json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_users_own_three_class_task_runs(tmp_path, monkeypatch, fmt):
    conf, data = _user_task(tmp_path, fmt)
    rc, r = _cli(monkeypatch, tmp_path, conf, data, "data.train_size=30")
    assert rc == 0 and r["status"] in ("ok", "failed"), r["error"]
    assert r["task"] == "stars" and r["metric"] == "macro_f1" and r["majority_label"] in ROWS
    assert 0 <= r["test"] <= 1 and 0 <= r["accuracy"] <= 1
    assert r["majority_accuracy"] == pytest.approx(1 / 3)  # 3 test rows of each class
    assert len(r["history"]) == 2 and all("accuracy" in h for h in r["history"])


@pytest.mark.parametrize("breakage,cause", [
    (lambda d: (d / "stars" / "train.csv").write_text(""), "train.csv:1: empty file"),
    (lambda d: (d / "stars" / "dev.csv").write_text("stars,review\n"), "dev.csv:2: no data rows after the header"),
    (lambda d: (d / "stars" / "dev.csv").write_text("stars,text\n0,a\n"), "dev.csv:1: no column 'review' (task.text)"),
    (lambda d: (d / "stars" / "dev.csv").write_text("stars,review\n0,a\n0,b\n1,c\n1,d\n2,e\n"),
     "dev.csv: too few dev rows to give every class a validation and a test row: '2' has 1"),
])
def test_bad_data_stops_the_run_with_its_cause(tmp_path, monkeypatch, breakage, cause):
    conf, data = _user_task(tmp_path, "csv")
    breakage(data)
    rc, r = _cli(monkeypatch, tmp_path, conf, data)
    assert rc != 0 and r["status"] == "error" and r["test"] is None and r["steps"] == 0
    assert cause in r["error"] and "Traceback" not in r["error"]


def test_a_task_file_missing_a_key_stops_the_run(tmp_path, monkeypatch):
    conf, data = _user_task(tmp_path, "csv")
    path = conf / "task" / "stars.yaml"
    path.write_text(path.read_text().replace("metric: macro_f1\n", ""))
    rc, r = _cli(monkeypatch, tmp_path, conf, data)
    assert rc != 0 and r["status"] == "error" and r["test"] is None
    assert "task.metric: missing" in r["error"]
