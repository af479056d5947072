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
sweep() { stabilize-train -m "${common[@]}" hydra.sweep.dir=sweep "$@" || status=1; }
# 1-2. the seeds' methods (experiment=offline_study) on STS-B, then MRPC
sweep task=stsb
sweep task=mrpc optim.max_epochs=5
# 3. the methods after the seeds (PAPERS.md section C) into the same folder, compared with the same
#    `standard` runs; r3f is for classification only; lpft with the probe these runs had, trained by
#    gradient steps (the fitted probe, lpft's default since, is sizes.sh's control); bitfit and lora
#    at their authors' learning rate: the experiment's lr would replace it
after=noisytune,childtuning_f,childtuning_d,ema,swa
sweep task=stsb method=$after
sweep task=mrpc optim.max_epochs=5 method=$after,r3f
sweep task=stsb method=lpft method.strategies.lpft.probe=gradient
sweep task=mrpc optim.max_epochs=5 method=lpft method.strategies.lpft.probe=gradient
sweep task=stsb method=bitfit optim.lr=1e-3
sweep task=mrpc optim.max_epochs=5 method=bitfit optim.lr=1e-3
sweep task=stsb method=lora optim.lr=5e-4
sweep task=mrpc optim.max_epochs=5 method=lora optim.lr=5e-4
# 4. the paper's recipe (lr 2e-5, 3 epochs) for contrast, in its own folder
stabilize-train -m "${common[@]}" hydra.sweep.dir=sweep_recipe task=stsb,mrpc optim.lr=2e-5 optim.max_epochs=3 \
  method=standard,bertadam || status=1
# 5. mosbach with its whole recipe (lr 2e-5, 20 epochs), last: its 20 runs of 1,260 steps are the study's longest
sweep task=stsb,mrpc method=mosbach optim.lr=2e-5 optim.max_epochs=20
# 6. the reports (report/) and the README's status, tables and verdicts
python summarize.py || status=1
exit $status
