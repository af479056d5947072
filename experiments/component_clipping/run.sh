#!/usr/bin/env bash
# The measured run of this folder's README: MiniLM (offline), MRPC, 1k examples, study B's setting
# (method cwgnc_baseline: lr 2e-5, no warmup, batch 16, 3 epochs, evaluated at the end):
# global clipping vs component-wise clipping (c = 0.1) for 2 seeds, gradual unfreezing for 1
# seed (it trains 6 more epochs: 3x the cost of a run), then the report.
set -euo pipefail
cd "$(dirname "$0")"
common="model=minilm task=mrpc data.train_size=1000 trainer.enable_progress_bar=false hydra.sweep.dir=sweep"
stabilize-train -m experiment=cwgnc method=cwgnc_baseline seed=0,1 $common
stabilize-train -m experiment=cwgnc_grid method.strategies.component_clip.max_norm=0.1 seed=0,1 $common
stabilize-train -m experiment=cwgnc 'method=[cwgnc_baseline,gradual_unfreeze]' seed=0 $common
stabilize-report sweep --out report
