"""The package runs installed, not only from its checkout: a built wheel, installed apart from the
checkout, finds its configs and data (stabilize/conf/, stabilize/glue/ inside the package), runs
a tiny run with a user's own config folder (`--config-dir`) from a temporary folder, and
reports it."""
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

USER_METHOD = """\
# @package _global_
method:
  parts: {top_block_reinit: true}
  strategies:
    top_block_reinit: {_target_: stabilize.strategies.ReInit, num_layers: 1}
"""


def test_a_wheel_installed_apart_from_the_checkout_runs_and_reports(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(tmp_path / "wheel")], check=True, cwd=tmp_path, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("stabilize-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    (tmp_path / "my_conf" / "method").mkdir(parents=True)
    (tmp_path / "my_conf" / "method" / "top_block_reinit.yaml").write_text(USER_METHOD)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "STABILIZE_CACHE": str(tmp_path / "cache")}

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)

    where = run("-c", "import stabilize; print(stabilize.__file__)")
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    train = run(str(site / "bin" / "stabilize-train"), "--config-dir", str(tmp_path / "my_conf"), "debug=tiny",
                "method=top_block_reinit")  # hydra.searchpath: tests/test_user_strategy.py
    assert train.returncode == 0, train.stdout + train.stderr
    record = json.loads(next((work / "outputs").rglob("results.json")).read_text())
    assert record["error"] is None and record["method"] == "top_block_reinit" and record["steps"] == 4
    assert record["config"]["method"]["strategies"]["top_block_reinit"]["num_layers"] == 1
    report = run(str(site / "bin" / "stabilize-report"), "outputs", "--out", "report")
    assert report.returncode == 0, report.stdout + report.stderr
    assert (work / "report" / "report.md").is_file()
