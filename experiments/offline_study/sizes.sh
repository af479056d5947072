#!/usr/bin/env bash
# The size sweep of experiments/offline_study/README.md (section 6): training-set size against the
# step budget, then the two controls of section 7; resumable: launching it again skips every
# finished run and re-runs the errored or interrupted ones (a run cut after 10 minutes resumes).
#   experiments/offline_study/sizes.sh [N_JOBS]     (default 2: two runs of one thread each)
# The 1,000-example points are the study's own runs in sweep/ (`standard` at the recipe, `longer`
# at the 800-step budget); new runs go to sweep_sizes/. Phases in the order a partial sweep is
# most useful: `standard` at every size first.
set -uo pipefail
cd "$(dirname "$0")"
jobs=${1:-2}
common=(experiment=offline_study hydra/launcher=joblib hydra.launcher.n_jobs="$jobs"
        trainer.enable_progress_bar=false hydra.sweep.dir=sweep_sizes "seed=range(0,10)")
status=0
sweep() { stabilize-train -m "${common[@]}" "$@" || status=1; }
stsb=(task=stsb data.train_size=100,300,3000)
mrpc=(task=mrpc optim.max_epochs=5 data.train_size=100,300,2388)
# 1. STS-B: `standard` at the recipe (3 epochs) and at the fixed budget (`longer`: 800 steps)
sweep "${stsb[@]}" method=standard,longer
