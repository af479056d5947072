"""benchmarks/gpu.sh, the GPU check, in its dry mode: every part's command at toy size on the CPU,
so a part whose command no longer works fails here, not on the next machine with a GPU."""
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def test_the_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.slow  # 5 processes start torch: 64 s on 2 cores beside a 2-run sweep (measured)
def test_every_part_runs_at_toy_size_on_the_cpu(tmp_path):
    out = tmp_path / "gpu-check.md"
    env = {**os.environ, "GPU_CHECK_DRY": "1", "GPU_CHECK_OUT": str(out), "PYTHONPATH": str(ROOT),
           "PYTHON": sys.executable}
    env.pop("OUT", None)
    p = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"figures in {out}" in p.stdout
    text = out.read_text()
    # 1. the CUDA tests skip on the CPU (test_gpus.py, part 1 on a GPU, runs in the suite)
    assert re.search(r"tests/test_cuda.py`: exit 0, .*: 3 skipped", text)
    # 2. the same run in both precisions, finished
    rows = [line for line in text.splitlines() if line.startswith(("| bf16-mixed |", "| 32-true |"))]
    assert len(rows) == 2 and all(re.search(r"\| (ok|failed) \| [\d.]+ \|", row) for row in rows), rows
    # 3. item 7's section, skipped without CUDA
    assert "### 7. Accelerator path" in text and "Skipped: no CUDA device" in text
    # 4. one row a k (the dry run: k = 1 alone), every run finished, a rate
    rates = re.findall(r"^\| (\d) \| 2 of 2 \(\d / \d / 0\) \| [\d.]+ \| (\d+) \|", text, re.M)
    assert [k for k, _ in rates] == ["1"] and all(int(r) > 0 for _, r in rates), text
    assert "Parts that failed: none." in text
