"""Every config file composes, and bad input stops a run before training with the key named."""
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object
from omegaconf import OmegaConf

import stabilize.train as train_mod
from tests.conftest import make_cfg
from stabilize import results, tasks
from stabilize.errors import ConfigError
from stabilize.module import FineTuner
from stabilize.strategies.base import Strategy, build_method, method_name
from stabilize.train import CONF_DIR, train

CONF = Path(CONF_DIR)


def _options():
    """(group, option) for every YAML file below stabilize/conf/ except train.yaml itself."""
    out = []
    for path in sorted(CONF.rglob("*.yaml")):
        rel = path.relative_to(CONF)
        if len(rel.parts) < 2:
            continue
        out.append(("/".join(rel.parts[:-1]), rel.stem))
    return out


def _top_level_defaults():
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    groups = set()
    for entry in defaults:
        if isinstance(entry, str):
            continue
        for key in entry:
            groups.add(str(key).removeprefix("override ").strip())
    return groups


OPTIONS = _options()
DEFAULT_GROUPS = _top_level_defaults()


def test_config_groups_present():
    found = {g: {o for gg, o in OPTIONS if gg == g} for g in ("task", "model", "method", "trainer", "logger")}
    assert found["task"] >= {"rte", "mrpc", "stsb", "cola"}
    assert found["model"] >= {"minilm", "tiny", "bert_base", "bert_large"}
    assert found["method"] >= {"standard", "bertadam"}
    assert found["trainer"] >= {"default", "cpu", "gpu"}
    assert found["logger"] >= {"csv", "tensorboard", "mlflow", "none"}


def _compose_option(tmp_path, group: str, option: str):
    if group == "hpo":  # needs the optional Optuna sweeper plugin (the `hpo` extra)
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    if group.startswith("hydra/"):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("train", overrides=[f"{group}={option}"], return_hydra_config=True)
    prefix = "" if group in DEFAULT_GROUPS else "+"
    return make_cfg(tmp_path, f"{prefix}{group}={option}", tiny=False)


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(tmp_path, group, option):
    cfg = _compose_option(tmp_path, group, option)
    if group.startswith("hydra/"):
        return
    # the whole config resolves (interpolations, resolvers), and the option took effect
    resolved = OmegaConf.to_container(cfg, resolve=True)
    json.dumps(resolved, default=str)
    top = group.split("/")[0]
    if top == "task":
        assert tasks.from_config(cfg.task).name == option  # a whole task file, every key valid
    elif top == "model":
        assert cfg.model.name == option
        assert cfg.model.path is not None or cfg.model.random_config is not None
    elif top == "method":
        missing = sorted(OmegaConf.missing_keys(cfg.method))
        if missing:  # a value the user must give (`???`): building names it instead of training
            with pytest.raises(ConfigError) as e:
                build_method(cfg.method)
            for key in missing:
                assert key.split(".")[-1] in str(e.value) and key.rsplit(".", 1)[0] in str(e.value)
        else:  # every strategy of every method can be built
            assert all(isinstance(s, Strategy) for s in build_method(cfg.method))
        if group == "method":
            assert method_name(cfg.method) in (option, option.replace("_", "+"))
    elif top == "trainer":
        assert cfg.trainer.devices == 1
        if option in ("cpu", "gpu"):
            assert cfg.trainer.accelerator == option
    elif top == "logger":
        for node in (cfg.logger or {}).values():
            assert get_object(node._target_) is not None
        if option != "none":
            assert option in cfg.logger
        else:
            assert not cfg.logger
    elif top == "experiment":
        assert tasks.from_config(cfg.task).name == cfg.task.name


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_runs_one_tiny_step(tmp_path, experiment):
    record = train(make_cfg(tmp_path, f"experiment={experiment}", "optim.max_steps=1", "eval.times=1"))
    assert record["status"] in results.FINISHED, record["error"]
    assert record["steps"] >= 1 and record["model"] == "tiny"


def test_default_method_names():
    for option, name in [("standard", "standard"), ("bertadam", "bertadam")]:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"method={option}"])
        assert method_name(cfg.method) == name


def test_defaults_are_the_documented_ones():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train")
    assert cfg.task.name == "stsb" and cfg.model.name == "minilm" and method_name(cfg.method) == "standard"
    assert cfg.seed == 0 and cfg.data.dir is None and cfg.data.train_size == 1000
    assert cfg.optim.lr == 1e-4 and cfg.optim.max_epochs == 3  # the offline study's STS-B setting, where MiniLM learns


@pytest.mark.parametrize("experiment", ["revisit_table1", "revisit_table2"])
def test_study_a_experiments_pin_study_a_learning_rate(experiment):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        assert compose("train", overrides=[f"experiment={experiment}"]).optim.lr == 2e-5


# ------------------------------------------------------------------ unknown group options

@pytest.mark.parametrize("group", ["task", "method", "model", "trainer", "logger"])
def test_unknown_option_names_group(group):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        with pytest.raises(Exception) as e:
            compose("train", overrides=[f"{group}=no_such_option"])
    assert group in str(e.value) and "no_such_option" in str(e.value)


# ------------------------------------------------------------------ bad values stop before training

class Unreachable(FineTuner):
    """Passed as the module class: reaching the training step is an error the test can tell apart."""

    def __init__(self, *args, **kwargs):
        raise AssertionError("TRAINING REACHED")


@pytest.fixture
def no_loading(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("MODEL LOADED")
    monkeypatch.setattr(train_mod.models, "load", reached)


def _check_error(record, run_dir: Path, *words):
    assert record["status"] == "error"
    assert record["steps"] == 0 and record["history"] == []
    for word in words:
        assert word in record["error"], record["error"]
    assert "REACHED" not in record["error"] and "LOADED" not in record["error"]
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["status"] == "error" and on_disk["error"] == record["error"]


@pytest.mark.parametrize("override,words", [
    ("data.train_size=abc", ["data.train_size", "abc"]),
    ("data.train_size=0", ["data.train_size"]),
    ("data.train_size=-5", ["data.train_size"]),
    ("seed=-1", ["seed", "-1"]),
    ("seed=abc", ["seed"]),
    ("optim.lr=0", ["optim.lr"]),
    ("eval.times=0", ["eval.times"]),
    ("threads=0", ["threads", "0"]),
    ("threads=-2", ["threads", "-2"]),
    ("data.max_length=0", ["data.max_length", "0"]),
    ("data.max_length=1", ["data.max_length", ">= 2"]),
    ("data.max_length=513", ["data.max_length", "513", "512 positions"]),
    ("model.random_config=null", ["model.path", "random_config"]),
    ("model.random_config.model_type=nosuch", ["model.random_config.model_type", "nosuch"]),
    ("+trainer.max_epochs=5", ["trainer.max_epochs", "optim.max_epochs"]),
    ("+trainer.no_such_arg=1", ["trainer.no_such_arg", "Trainer"]),
    ("+logger.mine._target_=no_such_module.Logger", ["logger.mine._target_", "no_such_module"]),
])
def test_bad_value_stops_before_loading(cfg_factory, tmp_path, no_loading, override, words):
    record = train(cfg_factory(override), module_class=Unreachable)
    _check_error(record, tmp_path / "run", "ConfigError", *words)


@pytest.mark.parametrize("path", ["/no/such/folder", "./relative/missing", "not a hub id"])
def test_model_path_neither_folder_nor_hub_id(cfg_factory, tmp_path, no_loading, path):
    record = train(cfg_factory("model=minilm", f"model.path='{path}'"), module_class=Unreachable)
    _check_error(record, tmp_path / "run", "ConfigError", "model.path", path)


def test_model_path_folder_without_config_json(cfg_factory, tmp_path, no_loading):
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    (folder / "vocab.txt").write_text("[PAD]\n")
    record = train(cfg_factory("model=minilm", f"model.path={folder}"), module_class=Unreachable)
    _check_error(record, tmp_path / "run", "ConfigError", "model.path", str(folder), "no config.json")
    assert "\n" not in record["error"]


def test_max_length_above_a_model_folders_position_limit(cfg_factory, tmp_path, no_loading):
    record = train(cfg_factory("model=minilm", "data.max_length=1024"), module_class=Unreachable)
    _check_error(record, tmp_path / "run", "data.max_length", "1024", "512 positions")


def test_several_problems_reported_at_once(cfg_factory, tmp_path, no_loading):
    record = train(cfg_factory("seed=-1", "data.train_size=abc", "threads=0", "+method.strategies.x._target_=nope.X"),
                   module_class=Unreachable)
    _check_error(record, tmp_path / "run", "seed", "data.train_size", "threads", "method.strategies.x")


def test_train_size_larger_than_data_stops_before_training(cfg_factory, tmp_path):
    record = train(cfg_factory("data.train_size=99999"), module_class=Unreachable)
    _check_error(record, tmp_path / "run", "ConfigError", "data.train_size", "99999")


def test_missing_data_dir_stops_before_training(cfg_factory, tmp_path):
    missing = tmp_path / "nowhere"
    record = train(cfg_factory(f"data.dir={missing}"), module_class=Unreachable)
    _check_error(record, tmp_path / "run", str(missing))


def test_seed_zero_is_valid_and_recorded(cfg_factory, tmp_path):
    record = train(cfg_factory("seed=0"))
    assert record["status"] in ("ok", "failed"), record["error"]
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["seed"] == 0 and on_disk["seed"] is not None
    assert on_disk["config"]["seed"] == 0


def test_null_seed_is_drawn_and_recorded(cfg_factory, tmp_path):
    record = train(cfg_factory("seed=null"), module_class=Unreachable)
    assert isinstance(record["seed"], int) and record["seed"] >= 0


def test_runtime_keys_are_left_out_of_run_folder_names():
    """results.RUNTIME_KEYS and hydra's exclude_keys in stabilize/conf/train.yaml list the same keys twice."""
    from stabilize.results import RUNTIME_KEYS

    with initialize_config_dir(config_dir=train_mod.CONF_DIR, version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    excluded = set(cfg.hydra.job.config.override_dirname.exclude_keys)
    assert {".".join(key) for key in RUNTIME_KEYS} <= excluded
