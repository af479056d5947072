#!/usr/bin/env bash
# The measured run of this folder's README: MiniLM (offline), MRPC, 1k examples, 3 seeds,
# standard vs bertadam vs reinit (study A's recipe otherwise), then the report.
set -euo pipefail
cd "$(dirname "$0")"
stabilize-train -m experiment=revisit_table2 model=minilm task=mrpc \
  method=standard,bertadam,reinit seed=0,1,2 trainer.enable_progress_bar=false \
  hydra.sweep.dir=sweep
stabilize-report sweep --out report
