#!/usr/bin/env bash
# One short GPU check (about 10 minutes on one H200): the machine, the GPU tests, and the train-step suite at
# GPU sizes (ResNet-18 224x224 b64 and ResNet-50 224x224 b64; fp32 and mixed bf16; nebulae on both engines,
# the hand-written baselines, and the Keras 3 peers when keras imports). Installs nothing.
#
# Usage (from anywhere): benchmarks/gpu_check.sh OUTDIR
# Writes into OUTDIR: gpu_check.log (everything printed), gpu_tests.json (measured figures of tests/test_gpu.py)
# and gpu_tests.xml, bench-<engine>-<workload>-<precision>/ (one `nebulae bench` run each: bench.csv/.json/.md/.png)
# and the merged bench.csv, bench.json and bench.md. Each step has its own time limit (`timeout`) and the whole
# script a budget; a step that fails or times out is reported, the rest still runs, and the exit status is 1.
#
# Environment:
#   PYTHON               the interpreter (default .venv/bin/python if present, else python)
#   GPU_CHECK_DRY=1      the same sequence on a CPU with --quick sizes (GPU tests skip): checks the script itself
#   GPU_CHECK_WORKLOADS  train-step workloads (default "resnet resnet50")
#   GPU_CHECK_ENGINES    engines (default "pytorch jax"); each engine's contenders run in their own bench run
#   GPU_CHECK_PRECISIONS precisions (default "fp32 bf16")
#   GPU_CHECK_REPS       interleaved repetitions per bench run (default 5; dry 2)
#   GPU_CHECK_BUDGET     seconds for the whole script (default 570; dry 3600); a step starts only with >= 30 s left
#   GPU_CHECK_TEST_S / GPU_CHECK_TORCH_S / GPU_CHECK_JAX_S  per-step limits: GPU tests (240), one torch
#                        bench run (70; dry 300), one JAX bench run (110: it compiles every contender's step;
#                        dry 600)
set -euo pipefail

OUT=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset NEB_CORE XLA_FLAGS KERAS_BACKEND
DRY=${GPU_CHECK_DRY:-0}
WORKLOADS=${GPU_CHECK_WORKLOADS:-resnet resnet50}
ENGINES=${GPU_CHECK_ENGINES:-pytorch jax}
PRECISIONS=${GPU_CHECK_PRECISIONS:-fp32 bf16}
TEST_S=${GPU_CHECK_TEST_S:-240}
if [[ $DRY == 1 ]]; then  # a CPU compiles and steps far slower: the limits only catch a hang
  SIZE=--quick REPS=${GPU_CHECK_REPS:-2} BUDGET=${GPU_CHECK_BUDGET:-3600} TORCH_S=${GPU_CHECK_TORCH_S:-300}
  JAX_S=${GPU_CHECK_JAX_S:-600}
else
  SIZE=--gpu REPS=${GPU_CHECK_REPS:-5} BUDGET=${GPU_CHECK_BUDGET:-570} TORCH_S=${GPU_CHECK_TORCH_S:-70}
  JAX_S=${GPU_CHECK_JAX_S:-110}
fi
declare -A BENCH_S=([pytorch]=$TORCH_S [jax]=$JAX_S)

exec > >(tee -a "$OUT/gpu_check.log") 2>&1
TEE=$!
trap 'exec >&- 2>&-; wait "$TEE" 2>/dev/null || true' EXIT  # the log is complete when the script returns
START=$SECONDS
FAILED=()

# step NAME LIMIT_S COMMAND...: run COMMAND under `timeout`, within what is left of the budget; record failures
step() {
  local name=$1 limit=$2 left rc=0
  shift 2
  left=$((BUDGET - (SECONDS - START)))
  if ((left < 30)); then
    echo "=== $name: SKIPPED (budget of ${BUDGET} s spent)"
    FAILED+=("$name (skipped: budget)")
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "=== $name (limit ${limit} s, $((SECONDS - START)) s elapsed)"
  timeout --kill-after=15 "$limit" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "=== $name: TIMED OUT after ${limit} s"
    FAILED+=("$name (timed out)")
  elif ((rc != 0)); then
    echo "=== $name: FAILED (exit status $rc)"
    FAILED+=("$name (exit $rc)")
  else
    echo "=== $name: ok ($((SECONDS - START)) s elapsed)"
  fi
}

machine() {
  date -u
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  elif [[ $DRY == 1 ]]; then
    echo "nvidia-smi: not found (dry run on a CPU)"
  else
    echo "nvidia-smi: not found" >&2
    return 1
  fi
  "$PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available',
torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
}

echo "gpu_check: $( [[ $DRY == 1 ]] && echo 'DRY RUN (CPU, --quick sizes)' || echo 'GPU') into $OUT; python $PYTHON"
export -f machine
export DRY PYTHON
step machine 60 bash -c machine  # `timeout` runs programs, not functions

required=1
[[ $DRY == 1 ]] && required=0
step gpu-tests "$TEST_S" env NEB_CORE=pytorch NEB_GPU_REPORT="$OUT/gpu_tests.json" NEB_GPU_REQUIRED=$required \
  "$PYTHON" -m pytest -q -s -rA -p no:cacheprovider tests/test_gpu.py --junitxml="$OUT/gpu_tests.xml"

PEERS=()
if KERAS_BACKEND=jax "$PYTHON" -c "import keras" >/dev/null 2>&1; then
  PEERS=(--peers keras)
else
  echo "keras does not import here: the Keras peers are left out"
fi

# most important first: ResNet-18 fp32 on every engine, then the rest
for workload in $WORKLOADS; do
  for precision in $PRECISIONS; do
    for engine in $ENGINES; do
      run="$engine-$workload-$precision"
      step "bench-$run" "${BENCH_S[$engine]}" "$PYTHON" -m nebulae bench "$SIZE" --only train_step \
        --engines "$engine" --workloads "$workload" --precision "$precision" --until-separated 0 \
        --reps "$REPS" "${PEERS[@]}" --out "$OUT/bench-$run"
    done
  done
done

step merge 60 "$PYTHON" - "$OUT" <<'EOF'
import csv, json, sys
from pathlib import Path

out = Path(sys.argv[1])
runs = sorted(p for p in out.glob("bench-*/bench.csv"))
rows, fields = [], None
for path in runs:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = fields or reader.fieldnames
        rows += list(reader)
if not runs:
    sys.exit("merge: no bench run wrote a bench.csv")
with (out / "bench.csv").open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
info = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("bench-*/bench.json"))}
(out / "bench.json").write_text(json.dumps({"runs": info}, indent=2) + "\n")
md = [f"## {p.parent.name}\n\n" + p.read_text() for p in sorted(out.glob("bench-*/bench.md"))]
(out / "bench.md").write_text("\n".join(md))
print(f"merge: {len(rows)} rows of {len(runs)} runs into {out / 'bench.csv'}, bench.json, bench.md")
EOF

echo "gpu_check: $((SECONDS - START)) s in all; wrote $OUT"
if ((${#FAILED[@]})); then
  printf 'gpu_check: not ok: %s\n' "${FAILED[@]}"
  exit 1
fi
echo "gpu_check: every step ok"
