#!/usr/bin/env bash
# The GPU check (issue #33, point 4): one script that a machine with a CUDA GPU runs as it is, from
# the repository root, offline (MiniLM from its pip package, the vendored GLUE copy), in under 8
# minutes on one H100. It writes its figures to one Markdown file and prints where it is.
#
#   bash benchmarks/gpu.sh                  # -> $OUT/gpu-check.md where $OUT is set, else
#                                           #    benchmarks/results/gpu-check-<date>.md
#   GPU_CHECK_DRY=1 bash benchmarks/gpu.sh  # every part at toy size on the CPU: test_cuda.py alone (the
#                                           # suite runs test_gpus.py), the tiny random model, one
#                                           # sweep of 2 runs at k=1 (tests/test_gpu_check.py runs this)
#   GPU_CHECK_OUT=FILE                      # the results file instead
#
# Parts, each under `timeout`:
#  1. the tests that need CUDA (tests/test_cuda.py: bf16 training, resume on the GPU, a real
#     claim; they skip without CUDA) and tests/test_gpus.py (the slot logic, simulated GPUs);
#  2. `trainer=gpu` (bf16-mixed) against `trainer=gpu trainer.precision=32-true`: the offline study's
#     run, `experiment=offline_study task=stsb method=standard seed=0` (STS-B 1k, 3 epochs, lr 1e-4):
#     seconds and scores side by side;
#  3. benchmark item 7 (benchmarks/items/accelerator.py: per-step stabilize/bare in bf16, whole
#     runs in turns on the GPU), `python -m benchmarks.run --only 7` at reduced sizes;
#  4. runs per hour of a joblib sweep of 16 short MiniLM runs (RTE, 320 rows, batch 16: 20 steps,
#     2 evaluations) with n_jobs = device.jobs_per_gpu = 1, 2, 4, 8 on one GPU. With one GPU no
#     slot is claimed (stabilize/gpus.py): n_jobs alone sets how many runs share it; both are set,
#     and CUDA_VISIBLE_DEVICES is narrowed to the first GPU so the figure is one GPU's.
#
# Environment. Python ($PYTHON, default python3) comes from, in this order: the active
# environment if it can import this tree's stabilize, pytest, pytest-xdist and the joblib launcher
# (PYTHONPATH is set to this tree, so its code runs whatever is installed), else ./.venv, else a
# new ./.venv with `pip install -e ".[test]"` (assumed to work from the machine's package
# registry as it does here; pip's torch for Linux x86_64 is a CUDA build; the install is not part
# of the 8 minutes and is timed in the results; a dry run never installs). Without CUDA (and not
# dry) the script writes so and exits 2; it exits 1 when a part failed or timed out.
#
# Budget on one H100 (estimates by arithmetic, not yet measured; every cap is also cut to what is
# left of BUDGET_S = 450 s, so the script ends within 8 minutes whatever hangs):
#  1. pytest start ~5 s, CUDA start ~5 s, three tiny-model tests ~10 s, test_gpus.py ~15 s: cap 50 s.
#  2. a run: process start and imports ~8 s, MiniLM and STS-B ~3 s, 96 steps of batch 32 x 128
#     tokens ~2 s, 10 evaluations of 750 rows ~3 s: ~16 s; cap 50 s each, 100 s.
#  3. fork server and imports ~10 s, 13 steps each of standard and bare ~2 s, one seed of 4 whole
#     RTE 1k runs in turns (96 steps, 10 evaluations, setup) ~4 x 8 s: ~45 s; cap 100 s.
#  4. a block: joblib workers start and import ~10 s, then a run in a warm worker ~3 s (config,
#     MiniLM load, 20 steps, 3 passes over 139 rows) and slower when k share the GPU and 16 cores:
#     k=1: 10 + 16 x 3 = 58 s, cap 70; k=2: 10 + 8 x 3.5 = 38 s, cap 45; k=4: 10 + 4 x 4.5 = 28 s,
#     cap 35; k=8: 12 + 2 x 7 = 26 s, cap 35. Caps 185 s. A block cut by its cap still counts the
#     runs that finished (runs per hour = finished / cap, marked as a lower bound).
#  Caps: 50 + 100 + 100 + 185 = 435 s, plus ~5 s of bookkeeping: under 450 s; with ~10 s of
#  finding Python and the device before the budget starts, under 8 minutes in all.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=${GPU_CHECK_DRY:-0}
# dry runs go to a CPU shared with other work: the same parts, caps x4 (toy sizes, slow starts)
SCALE=$([[ "$DRY" == 1 ]] && echo 4 || echo 1)
BUDGET_S=${GPU_CHECK_BUDGET_S:-$(( 450 * SCALE ))}
STAMP=$(date -u +%Y-%m-%d-%H%M)
if [[ -n "${GPU_CHECK_OUT:-}" ]]; then RESULT=$GPU_CHECK_OUT
elif [[ -n "${OUT:-}" ]]; then RESULT=$OUT/gpu-check.md
else RESULT=$ROOT/benchmarks/results/gpu-check-$STAMP.md
fi
mkdir -p "$(dirname "$RESULT")"
LOGS=${RESULT%.md}-logs  # each part's full output, next to the results
mkdir -p "$LOGS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stabilize-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" STABILIZE_CACHE="$WORK/cache"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

say() { echo "[gpu-check] $*"; }
md() { printf '%s\n' "$@" >>"$RESULT"; }
elapsed() { echo $(( $(date +%s) - T0 )); }

# ------------------------------------------------------------------ 0. Python and the device
PY=${PYTHON:-python3}
usable() { "$PY" -c "import stabilize.train, pytest, xdist, hydra_plugins.hydra_joblib_launcher" >/dev/null 2>&1; }
INSTALL_S=0
if ! usable; then
  if [[ -f .venv/bin/activate ]]; then . .venv/bin/activate && PY=python; fi
  if ! usable && [[ "$DRY" == 1 ]]; then say "$PY cannot import stabilize, pytest and the joblib launcher"; exit 2; fi
  if ! usable; then
    say "no environment with stabilize's dependencies: creating .venv (pip install -e \".[test]\")"
    t=$(date +%s)
    python3 -m venv .venv && . .venv/bin/activate && PY=python && pip install -q -e ".[test]" >"$LOGS/install.log" 2>&1
    INSTALL_S=$(( $(date +%s) - t ))
    usable || { say "the install failed: see $LOGS/install.log"; exit 2; }
  fi
fi
DEVICE=$("$PY" - <<'EOF'
import torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"{torch.cuda.device_count()} x {p.name} ({p.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
else:
    print(f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda})")
EOF
)
if [[ "$DRY" == 1 ]]; then
  MODE="dry (GPU_CHECK_DRY=1): every part at toy size on the CPU"
  GPU=(trainer=cpu); BF16=(trainer=cpu trainer.precision=bf16-mixed); FP32=(trainer=cpu trainer.precision=32-true)
  SIZE2=(debug=tiny); ITEM7=(--quick --only 7)
  TESTS1=(tests/test_cuda.py)
  SIZE4=(debug=tiny); RUNS4=2; JOBS4=(1); CAPS4=(70)
else
  MODE="full"
  GPU=(trainer=gpu); BF16=(trainer=gpu); FP32=(trainer=gpu trainer.precision=32-true)
  SIZE2=(); ITEM7=(--only 7 --steps 10 --turns 1 --repeats 0)
  SIZE4=(task=rte model=minilm data.train_size=320 optim.batch_size=16 optim.max_steps=20 eval.times=2)
  TESTS1=(tests/test_cuda.py tests/test_gpus.py)
  RUNS4=16; JOBS4=(1 2 4 8); CAPS4=(70 45 35 35)
fi

: >"$RESULT"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null || COMMIT+=" with uncommitted changes"; }
md "# GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'))" "" \
   "\`bash benchmarks/gpu.sh\` (mode: $MODE) at commit ${COMMIT:-unknown (no git)}." \
   "Device: $DEVICE. Host: $(nproc) cores. Install before the check: ${INSTALL_S} s. Each part's output: \`$LOGS/\`." ""
say "results -> $RESULT"
if [[ "$DRY" != 1 && "$DEVICE" == no\ CUDA* ]]; then
  md "Not run: $DEVICE."
  say "$DEVICE: nothing measured (GPU_CHECK_DRY=1 runs the parts on the CPU)"
  exit 2
fi

T0=$(date +%s)  # the budget starts here: finding Python and the device took ~10 s
FAILED=()
# run_part NAME CAP LOG COMMAND...: COMMAND under `timeout`, capped by what is left of the budget;
# sets PART_RC (124: timed out or no time left), PART_S (wall seconds) and PART_CAP (the timeout used).
run_part() {
  local name=$1 cap=$2 log=$3; shift 3
  local left=$(( BUDGET_S - $(elapsed) )) t
  cap=$(( cap * SCALE ))
  t=$(( cap < left ? cap : left ))
  PART_CAP=$t
  if (( t < 5 )); then PART_RC=124; PART_S=0; echo "no time left in the budget" >"$log"; say "$name: skipped, budget spent"; return; fi
  say "$name (cap ${t} s) ..."
  local s=$EPOCHREALTIME
  timeout --kill-after=10 "$t" "$@" >"$log" 2>&1
  PART_RC=$?
  PART_S=$("$PY" -c "print(f'{$EPOCHREALTIME - $s:.1f}')")
  say "$name: exit $PART_RC after ${PART_S} s"
}

# ------------------------------------------------------------------ 1. tests that need CUDA
run_part "1. CUDA tests" 50 "$LOGS/1-tests.log" "$PY" -m pytest -q -n 0 -p no:cacheprovider "${TESTS1[@]}"
md "## 1. Tests that need CUDA" "" \
   "\`python -m pytest -q -n 0 ${TESTS1[*]}\`: exit $PART_RC, $PART_S s: $(tail -n 1 "$LOGS/1-tests.log")" ""
(( PART_RC == 0 )) || FAILED+=("1")

# ------------------------------------------------------------------ 2. bf16 against fp32
md "## 2. bf16-mixed against fp32: \`experiment=offline_study task=stsb method=standard seed=0\`" "" \
   "| precision | overrides | status | run seconds | process seconds | steps | val | test | test (last state) | error or reason |" \
   "|---|---|---|---|---|---|---|---|---|---|"
for variant in bf16 fp32; do
  if [[ $variant == bf16 ]]; then over=("${BF16[@]}"); else over=("${FP32[@]}"); fi
  dir=$WORK/2-$variant
  run_part "2. $variant run" 50 "$LOGS/2-$variant.log" "$PY" -m stabilize.train experiment=offline_study task=stsb \
    method=standard seed=0 "${over[@]}" "${SIZE2[@]}" trainer.enable_progress_bar=false "hydra.run.dir=$dir"
  (( PART_RC == 0 )) || FAILED+=("2 $variant")
  "$PY" - "$dir/results.json" "$PART_RC" "$PART_S" "${over[*]}" >>"$RESULT" <<'EOF' || FAILED+=("2 $variant: no results.json")
import json, sys
path, rc, secs, over = sys.argv[1:]
try:
    r = json.load(open(path))
except OSError:
    print(f"| ? | `{over}` | no results.json (exit {rc}) | | {secs} | | | | | |")
    sys.exit(1)
f = lambda x: "-" if x is None else f"{x:.4f}"
print(f"| {r['config']['trainer']['precision']} | `{over}` | {r['status']} | {r['seconds']:.1f} | {secs} | {r['steps']} | "
      f"{f(r['val'])} | {f(r['test'])} | {f(r['test_last'])} | {r['error'] or r['reason'] or ''} |")
sys.exit(0 if r["status"] in ("ok", "failed") else 1)
EOF
done
md "" "Scores in the task metric (${SIZE2[*]:-STS-B: Spearman}); run seconds from results.json, process seconds include Python's start." ""

# ------------------------------------------------------------------ 3. benchmark item 7
run_part "3. benchmark item 7" 100 "$LOGS/3-item7.log" "$PY" -m benchmarks.run "${ITEM7[@]}" --out "$WORK/item7.md"
md "## 3. Benchmark item 7 (accelerator path): \`python -m benchmarks.run ${ITEM7[*]}\`" "" "Exit $PART_RC, $PART_S s." ""
if [[ -f "$WORK/item7.md" ]]; then
  sed 's/^#/###/' "$WORK/item7.md" >>"$RESULT"; cp "$WORK/item7.md" "$LOGS/3-item7.md"
  [[ -f "$WORK/item7.json" ]] && cp "$WORK/item7.json" "$LOGS/3-item7.json"
else
  md "(no report written: see \`$LOGS/3-item7.log\`)"
fi
md ""
(( PART_RC == 0 )) && grep -q "^## 7\. Accelerator path" "$WORK/item7.md" 2>/dev/null || FAILED+=("3")

# ------------------------------------------------------------------ 4. runs per hour against jobs per GPU
FIRST_GPU=${CUDA_VISIBLE_DEVICES:-0}
md "## 4. Runs per hour: a joblib sweep of $RUNS4 short runs on one GPU" "" \
   "Each run: \`${SIZE4[*]}\`, \`logger=none analysis.weight_change=false checkpoint_minutes=null\`; n_jobs = device.jobs_per_gpu = k; CUDA_VISIBLE_DEVICES=${FIRST_GPU%%,*}." "" \
   "| k | finished (ok / failed / error) | wall seconds | runs per hour | cap (s) | exit |" "|---|---|---|---|---|---|"
for i in "${!JOBS4[@]}"; do
  k=${JOBS4[$i]}; dir=$WORK/4-k$k
  CUDA_VISIBLE_DEVICES=${FIRST_GPU%%,*} run_part "4. sweep, k=$k" "${CAPS4[$i]}" "$LOGS/4-k$k.log" \
    "$PY" -m stabilize.train -m hydra/launcher=joblib "hydra.launcher.n_jobs=$k" "device.jobs_per_gpu=$k" \
    "${GPU[@]}" "${SIZE4[@]}" logger=none analysis.weight_change=false checkpoint_minutes=null \
    trainer.enable_progress_bar=false "seed=range(0,$RUNS4)" "hydra.sweep.dir=$dir"
  "$PY" - "$dir" "$k" "$RUNS4" "$PART_RC" "$PART_S" "$PART_CAP" >>"$RESULT" <<'EOF' || FAILED+=("4 k=$k")
import json, pathlib, sys
folder, k, runs, rc, secs, cap = sys.argv[1:]
status = [json.load(open(p)).get("status") for p in pathlib.Path(folder).rglob("results.json")]
done = sum(s in ("ok", "failed") for s in status)
per_hour = done / float(secs) * 3600 if float(secs) > 0 else 0
bound = "≥ " if rc in ("124", "137") else ""  # cut by its cap: the runs finished by then
print(f"| {k} | {done} of {runs} ({status.count('ok')} / {status.count('failed')} / {status.count('error')}) | "
      f"{secs} | {bound}{per_hour:.0f} | {cap} | {rc} |")
sys.exit(0 if done == int(runs) and rc == "0" else 1)
EOF
done
md "" "Wall seconds from the launch to the end of the sweep (worker start-up included)." ""

# ------------------------------------------------------------------ the end
md "Total: $(elapsed) s of a ${BUDGET_S} s budget. Parts that failed: ${FAILED[*]:-none}."
say "figures in $RESULT (logs in $LOGS/); $(elapsed) s; failed parts: ${FAILED[*]:-none}"
(( ${#FAILED[@]} == 0 ))
