"""The default `stabilize-train` command on the real offline MiniLM model, capped at two steps."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

OVERRIDES = ["optim.max_steps=2", "eval.times=1", "data.train_size=32", "data.eval_batch_size=128", "logger=none",
             "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_default_command_on_minilm(tmp_path):
    script = Path(sys.executable).parent / "stabilize-train"
    assert script.is_file(), "the stabilize-train console script is not installed next to this Python"
    env = {**os.environ, "STABILIZE_CACHE": str(tmp_path / "cache"), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([str(script), *OVERRIDES], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = list((tmp_path / "outputs").rglob("results.json"))
    assert len(found) == 1, found
    r = json.loads(found[0].read_text())
    assert r["status"] in ("ok", "failed"), r["error"]
    assert (r["task"], r["model"], r["method"], r["metric"]) == ("stsb", "minilm", "standard", "spearman")
    assert r["steps"] == 2 and r["train_size"] == 32 and len(r["history"]) == 1
    for key in ("test", "test_last", "val"):
        assert isinstance(r[key], float) and math.isfinite(r[key]) and -1.0 <= r[key] <= 1.0, key
    assert list((tmp_path / "cache").glob("*.pt")), "the token cache was not written to STABILIZE_CACHE"
