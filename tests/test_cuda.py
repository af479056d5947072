"""On a CUDA device (skipped without one; `benchmarks/gpu.sh` runs this file): a tiny run trains
on the GPU in bf16, an interrupted GPU run resumes from its checkpoint, and one real GPU is
claimed as the docs say (no slot: `hydra.launcher.n_jobs` alone shares it)."""
import math

import pytest
import pytorch_lightning as pl
import torch

from stabilize import gpus
from stabilize.train import train
from tests.conftest import make_cfg
from tests.test_resume import SETTING, interrupted_then_relaunched

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Where(pl.Callback):
    """Records where and in what precision the training steps ran."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.device, self.precision = module.device.type, trainer.precision
        with torch.no_grad(), trainer.precision_plugin.forward_context():
            self.logits_dtype = module(batch).logits.dtype


def test_a_tiny_run_trains_on_the_gpu_in_bf16(tmp_path):
    where = Where()
    r = train(make_cfg(tmp_path, "trainer=gpu"), callbacks=[where])
    assert r["status"] in ("ok", "failed"), r["error"]
    assert (where.device, where.precision, where.logits_dtype) == ("cuda", "bf16-mixed", torch.bfloat16)
    assert r["steps"] == 4 and all(math.isfinite(h["val"]) for h in r["history"])


def test_an_interrupted_gpu_run_resumes_from_its_checkpoint(tmp_path):
    r = interrupted_then_relaunched(make_cfg(tmp_path, *SETTING, "task=stsb", "trainer=gpu"))
    assert r["status"] in ("ok", "failed"), r["error"]
    assert r["resumed_at"] == [4] and r["steps"] == 12


def test_a_claim_on_the_real_gpus(tmp_path):
    cfg = make_cfg(tmp_path, "trainer=gpu")
    with gpus.claim(cfg, slots_dir=tmp_path / "slots") as devices:
        assert devices == ([0] if torch.cuda.device_count() > 1 else cfg.trainer.devices)
