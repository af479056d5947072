"""Shared test helpers: compose the real `stabilize/conf/` with overrides, run on the tiny model."""
import gc
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from stabilize import models
from stabilize.config import register_resolvers
from stabilize.train import CONF_DIR

register_resolvers()

ROOT = Path(__file__).resolve().parent.parent
SHARED_GLUE = ROOT.parent / "shared" / "data" / "glue"

# stabilize/conf/debug/tiny.yaml: the random 2-layer model, 32 examples, 4 steps; a whole run takes ~2 s.
# On RTE, the tests' classification task since before STS-B became the default (a later task= wins).
TINY = ["debug=tiny", "task=rte"]


def make_cfg(tmp_path: Path, *overrides: str, tiny: bool = True):
    """A composed `train.yaml` whose run folder is `tmp_path/run` and token cache `tmp_path/cache`."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*(TINY if tiny else []), *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.data.cache_dir = str(tmp_path / "cache")
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    return lambda *overrides, **kw: make_cfg(tmp_path, *overrides, **kw)


def tiny_model(num_labels: int = 2, seed: int = 0, **random_config):
    """stabilize/conf/model/tiny.yaml's random model, its sizes overridable, seeded: the tests' one tiny model."""
    model_cfg = OmegaConf.load(Path(CONF_DIR) / "model" / "tiny.yaml")
    model_cfg.random_config = OmegaConf.merge(model_cfg.random_config, random_config)
    torch.manual_seed(seed)
    return models.load(model_cfg, num_labels)[0]


def pytest_collection_finish(session):
    """Every run starts with a full collection (stabilize.train: no earlier run's cycles kept); in
    this process it would walk the libraries' and tests' objects each time (0.3 s a run, a minute of
    the suite). They live to the end: the collector leaves them out from here on."""
    gc.freeze()
