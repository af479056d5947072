"""Every `logger=` option of conf/logger writes where it says, on a tiny run."""
import pytest

from stabilize.train import train
from tests.conftest import TINY, make_cfg


def _run(tmp_path, logger: str) -> dict:
    overrides = [o for o in TINY if not o.startswith("logger=")]
    cfg = make_cfg(tmp_path, *overrides, f"logger={logger}", "trainer.log_every_n_steps=1", tiny=False)
    r = train(cfg)
    assert r["status"] in ("ok", "failed"), r["error"]
    return r


def test_csv_logger(tmp_path):
    _run(tmp_path, "csv")
    text = (tmp_path / "run" / "logs" / "metrics.csv").read_text()
    assert "train/loss" in text.splitlines()[0] and "val/accuracy" in text.splitlines()[0]


def test_no_logger(tmp_path):
    _run(tmp_path, "none")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert "results.json" in names and not names & {"logs", "tensorboard", "lightning_logs"}


def test_tensorboard_logger(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    _run(tmp_path, "tensorboard")
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "val/accuracy"} <= set(acc.Tags()["scalars"])


def test_mlflow_logger(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):  # the defaults; restored afterwards
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    _run(tmp_path, "mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=f"file:{tmp_path / 'mlruns'}")
    experiment = client.get_experiment_by_name("stabilize")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    assert {"train/loss", "val/accuracy"} <= set(runs[0].data.metrics)
    assert runs[0].info.run_name == "rte-tiny-seed0"
