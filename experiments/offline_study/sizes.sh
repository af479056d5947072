#!/usr/bin/env bash
# The size sweep and the two controls of experiments/offline_study/README.md (section 6), phase by
# phase; resumable: launching it again skips every finished run and re-runs the errored or
# interrupted ones (a run cut after its first 10 minutes resumes from its checkpoint).
#   experiments/offline_study/sizes.sh [N_JOBS]     (default 2: two runs of one thread each)
# Needs the joblib launcher: pip install -e ".[launchers]". The 1,000-example points of the size
# sweep are the study's own runs in sweep/ (`standard` at the recipe, `longer` at the 800-step
# budget, the methods) and diagnosis/ (no dropout); every new run goes to sweep_sizes/, seed-major,
# so that a partial phase holds every size for its first seeds.
set -uo pipefail
cd "$(dirname "$0")"
jobs=${1:-2}
common=(experiment=offline_study hydra/launcher=joblib hydra.launcher.n_jobs="$jobs"
        trainer.enable_progress_bar=false hydra.sweep.dir=sweep_sizes)
status=0
sweep() {  # sweep SEEDS OVERRIDES...: one Hydra multirun; SIZES_DRY=1 prints them instead
  local seeds=$1; shift
  ${SIZES_DRY:+echo} stabilize-train -m "${common[@]}" "seed=range($seeds)" "$@" || status=1
}
stsb=(task=stsb data.train_size=100,300,3000)
mrpc=(task=mrpc optim.max_epochs=5 data.train_size=100,300,2388)   # 2388: MRPC's largest balanced size
mosbach=(method=mosbach optim.lr=2e-5 optim.max_epochs=20)        # its whole recipe, as in sweep/
no_dropout=(method=mixout method.strategies.mixout.p=0.0)         # standard without dropout (section 3)
# 1. STS-B: `standard` at the recipe (3 epochs) and at the fixed budget (`longer`: 800 steps); its
#    first 5 seeds, then the controls (short, each answering a question of its own), then the rest:
#    `standard`'s seeds before `longer`'s, so that a cut sweep holds every size for `standard`
sweep 0,5 "${stsb[@]}" method=standard,longer
# 2. the controls at 1,000 examples: LP-FT with the probe fitted as Kumar et al. fit it, on both
#    tasks; mosbach with the papers' Adam (eps added before the bias correction) on STS-B
sweep 0,10 task=stsb data.train_size=1000 method=lpft
sweep 0,10 task=mrpc optim.max_epochs=5 data.train_size=1000 method=lpft
sweep 0,10 task=stsb data.train_size=1000 "${mosbach[@]}" optim.eps_placement=before_correction
sweep 0,10 "${stsb[@]}" method=standard             # 1, seeds 5-9: `standard` first (short),
sweep 0,10 "${stsb[@]}" method=longer               #    then `longer`
# 3. STS-B: the methods that won at 1k, at the recipe, then mosbach's own recipe (20 epochs); the
#    first 5 seeds of every method, then the rest, so that a cut phase holds every method and size
for seeds in 0,5 5,10; do
  sweep $seeds "${stsb[@]}" method=reinit,llrd,lpft
  sweep $seeds "${stsb[@]}" "${no_dropout[@]}"
  sweep $seeds "${stsb[@]}" "${mosbach[@]}"
done
# 4. MRPC: `standard` and `longer` at every size (the end of the planned 40 hours)
sweep 0,10 "${mrpc[@]}" method=standard,longer
# 5. MRPC: the methods (beyond the 40 hours: run where the cores allow)
sweep 0,10 "${mrpc[@]}" method=reinit,llrd,lpft
sweep 0,10 "${mrpc[@]}" "${no_dropout[@]}"
sweep 0,10 "${mrpc[@]}" "${mosbach[@]}"
exit $status
