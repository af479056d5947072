#!/usr/bin/env bash
# The offline study of experiments/offline_study/README.md, phase by phase; resumable: launching
# it again skips every finished run and re-runs the errored or interrupted ones.
#   experiments/offline_study/run.sh [N_JOBS]     (default 2: two runs of one thread each)
# Needs the joblib launcher: pip install -e ".[launchers]"
set -uo pipefail
cd "$(dirname "$0")"
jobs=${1:-2}
common=(experiment=offline_study hydra/launcher=joblib hydra.launcher.n_jobs="$jobs"
        trainer.enable_progress_bar=false)
status=0
# 1-2. the seeds' methods (experiment=offline_study) on STS-B, then MRPC
stabilize-train -m "${common[@]}" task=stsb hydra.sweep.dir=sweep || status=1
stabilize-train -m "${common[@]}" task=mrpc optim.max_epochs=5 hydra.sweep.dir=sweep || status=1
# 3. the methods after the seeds, same setting (r3f is defined for classification only)
after=standard,mosbach,noisytune,childtuning_f,childtuning_d,ema,swa,lora,bitfit,lpft
stabilize-train -m "${common[@]}" task=stsb method=$after hydra.sweep.dir=sweep_after || status=1
stabilize-train -m "${common[@]}" task=mrpc optim.max_epochs=5 method=$after,r3f hydra.sweep.dir=sweep_after || status=1
# 4. the paper's recipe (lr 2e-5, 3 epochs) for contrast
stabilize-train -m "${common[@]}" task=stsb,mrpc optim.lr=2e-5 optim.max_epochs=3 method=standard,bertadam \
  hydra.sweep.dir=sweep_recipe || status=1
for sweep in sweep sweep_after sweep_recipe; do
  [ -d "$sweep" ] && stabilize-report "$sweep" --out "report/$sweep"
done
exit $status
