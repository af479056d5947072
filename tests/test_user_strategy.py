"""A user's own strategy: a subclass in their own module, named by `_target_` in their own YAML
file on Hydra's search path, no edit of the package: the README's example, run as written."""
import json
import os
import re
import shlex
import subprocess
import sys

from tests.conftest import ROOT, TINY

README = (ROOT / "README.md").read_text()


def _block(line: str) -> str:
    """The README code block holding a line that starts with `line`."""
    blocks = re.findall(r"```\w*\n(.*?)```", README, flags=re.S)
    return next(b for b in blocks if any(x.startswith(line) for x in b.splitlines()))


def test_readme_user_strategy_runs_as_written(tmp_path):
    (tmp_path / "my_methods.py").write_text(_block("# my_methods.py"))
    (tmp_path / "my_conf" / "method").mkdir(parents=True)
    (tmp_path / "my_conf" / "method" / "freeze_embeddings.yaml").write_text(
        _block("# my_conf/method/freeze_embeddings.yaml"))
    command = re.search(r"Then `(PYTHONPATH=\. stabilize-train method=freeze_embeddings [^`]*)`", README).group(1)
    env_assignment, *args = shlex.split(command.replace("$PWD", str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "STABILIZE_CACHE": str(tmp_path / "cache")}
    assert env_assignment == "PYTHONPATH=." and args[0] == "stabilize-train"
    proc = subprocess.run([sys.executable, "-m", "stabilize.train", *args[1:], *TINY, "optim.lr=1e-3",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["method"] == "freeze_embeddings" and record["status"] in ("ok", "failed"), record["error"]
    change = json.loads((tmp_path / "run" / "weight_change.json").read_text())
    l2 = dict(zip(change["layers"], change["l2"]))
    assert l2["embeddings"] == 0.0  # the hook ran: the embeddings stayed where they were
    assert all(v > 0 for layer, v in l2.items() if layer != "embeddings")
