"""Every `logger=` option of stabilize/conf/logger writes where it says, on a tiny run."""
import json
import struct

import pytest

from stabilize.train import train
from tests.conftest import TINY, make_cfg


def _run(tmp_path, logger: str, *extra: str) -> dict:
    overrides = [o for o in TINY if not o.startswith("logger=")]
    cfg = make_cfg(tmp_path, *overrides, f"logger={logger}", "trainer.log_every_n_steps=1", *extra, tiny=False)
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


def _wandb_records(run_file):
    """The records of a W&B transaction log (`run-<id>.wandb`: a LevelDB-style log of 32 KiB
    blocks, each record a protobuf `Record` in FULL or FIRST/MIDDLE/LAST chunks)."""
    from wandb.proto import wandb_internal_pb2
    data, block, pos, chunks = run_file.read_bytes(), 32768, 7, b""  # 7: the file header
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, size, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunks, pos = chunks + data[pos + 7:pos + 7 + size], pos + 7 + size
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            yield record
            chunks = b""


def test_wandb_logger_offline(tmp_path, monkeypatch):
    """Offline, no network: each run in one process gets its own finished W&B run with its metrics."""
    pytest.importorskip("wandb")
    for var, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false",
                       "WANDB_API_KEY": "", "WANDB_PROJECT": "", "WANDB_DIR": tmp_path / "wandb",
                       "WANDB_CACHE_DIR": tmp_path / "cache", "WANDB_CONFIG_DIR": tmp_path / "config",
                       "WANDB_DATA_DIR": tmp_path / "data"}.items():
        monkeypatch.setenv(var, str(value))
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.delenv("WANDB_PROJECT")
    seen = []
    for seed in (0, 1):  # the second run must not log into the first one's W&B run
        r = _run(tmp_path / f"seed{seed}", "wandb", f"seed={seed}")
        (run_file,) = (tmp_path / f"seed{seed}" / "run" / "wandb").glob("offline-run-*/run-*.wandb")
        records = list(_wandb_records(run_file))
        (run,) = [rec.run for rec in records if rec.WhichOneof("record_type") == "run"]
        assert (run.display_name, run.project, run.run_group) == (f"rte-tiny-seed{seed}", "stabilize", "default")
        rows = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
                for rec in records if rec.WhichOneof("record_type") == "history"]
        assert any("train/loss" in row for row in rows)
        assert [row["val/accuracy"] for row in rows if "val/accuracy" in row] == pytest.approx(
            [h["val"] for h in r["history"]])
        assert records[-1].WhichOneof("record_type") == "exit"  # finished when the run ended
        seen.append(run.run_id)
    assert seen[0] != seen[1]
