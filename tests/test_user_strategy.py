"""A user's own strategy: a subclass in their own module, named by `_target_` in their own YAML
file on Hydra's search path; no edit of the package (the README's example)."""
import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import TINY


def test_user_strategy_from_own_module_and_config(tmp_path):
    (tmp_path / "my_methods.py").write_text(textwrap.dedent('''
        import torch
        from pathlib import Path
        from stabilize.strategies import Strategy

        class NoisyTune(Strategy):
            def __init__(self, scale: float = 0.15, marker: str = ""):
                self.scale, self.marker = scale, marker

            @torch.no_grad()
            def setup(self, module):
                for p in module.model.base_model.parameters():
                    if p.numel() > 1:
                        p.add_((torch.rand_like(p) - 0.5) * self.scale * p.std())
                Path(self.marker).write_text(str(self.scale))
    '''))
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "my_noisytune.yaml").write_text(textwrap.dedent(f'''
        # @package _global_
        method:
          parts: {{my_noisytune: true}}
          strategies:
            my_noisytune:
              _target_: my_methods.NoisyTune
              scale: 0.3
              marker: {tmp_path / "marker.txt"}
    '''))
    cmd = [sys.executable, "-m", "stabilize.train", "method=my_noisytune", *TINY,
           f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.run.dir={tmp_path / 'run'}",
           f"data.cache_dir={tmp_path / 'cache'}"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["method"] == "my_noisytune" and record["status"] in ("ok", "failed")
    assert (tmp_path / "marker.txt").read_text() == "0.3"  # the hook ran, with the YAML's value
