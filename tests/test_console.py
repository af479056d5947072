"""What `stabilize-train` prints: its own lines, a progress bar with the run's true epoch count,
and a failed run's reason; library chatter only with verbose=true."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHATTER = ("GPU available", "💡 Tip", "Warning", "deprecated", "LOAD REPORT", "Loading weights")


def _cli(tmp_path, *overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false",
           "STABILIZE_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "stabilize.train", "debug=tiny", "task=rte", "trainer.enable_progress_bar=true",
                           f"hydra.run.dir={tmp_path / 'run'}", *overrides],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow  # two fresh interpreters, ~20 s
def test_console_shows_only_stabilize_lines_unless_verbose(tmp_path):
    quiet = _cli(tmp_path / "q", "optim.lr=1e-9")  # learns nothing: a failed run
    assert not [c for c in CHATTER if c in quiet], quiet
    assert "Epoch 3/3" in quiet and "/-" not in quiet  # 4 steps of 1 batch: epochs 0..3 of 4
    last = quiet.strip().splitlines()[-1]
    assert last.startswith("[stabilize] failed: ") and ("<= majority" in last or "constant predictions" in last)
    verbose = _cli(tmp_path / "v", "verbose=true")
    assert "GPU available" in verbose
