#!/usr/bin/env bash
# The checks a lent GPU machine runs, as one prepared script (see docs/benchmarks.md):
#   bash evaluations/device/gpu_session.sh check OUT    # build, CUDA tests, GPU benchmark rows, smoke
#   bash evaluations/device/gpu_session.sh train OUT SECONDS BATCH [RECIPE]   # a recipe's training (SS by default)
#   bash evaluations/device/gpu_session.sh all OUT SECONDS BATCH   # one call: build, training, CUDA tests,
#        throughput rows (bench_gpu, bench_stacks); fits a 600 s call with SECONDS ≤ 240
# The compiled CUDA kernels are used for training only once the CUDA-marked tests
# passed on that machine (FLOWNET2_CUDA_KERNELS=1; see flownet2_core/ops/_compiled.py).
# The machine has torch and CUDA but no network: the package is built there
# against its own torch (no dependencies installed), for Hopper (sm_90).
set -uo pipefail
phase=$1; out=$2
# Checkpoints the training warm-starts every stage from (space-separated; default: the shipped
# FlowNet2-sss, whose first two networks fill the SS recipe's). A run trained further on the CPU
# travels with `carry` (≤ 64 MiB), e.g.
#   INIT=runs/x/s-long/model.pth.tar bash evaluations/device/gpu_session.sh all OUT 240 16
inits=""
for f in ${INIT:-flownet2_core/weights/flownet2-sss-synth.pth}; do inits="$inits --init $f"; done
export PYTHONUNBUFFERED=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 MPLBACKEND=Agg
py=python3
mkdir -p "$out"
build() {
  if ! $py -c "import flownet2_core._C" 2>/dev/null; then
    ( time $py -m pip install -q --no-build-isolation --no-deps --no-index -e . ) 2>&1 | grep -v WARNING | tail -5 \
      || true
    $py -c "import flownet2_core._C" 2>/dev/null || ( time $py setup.py -q build_ext --inplace ) 2>&1 | tail -5
  fi
  $py -m flownet2_core.ops
}
if [ "$phase" = check ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
  build
  echo "== CUDA-marked tests"
  FLOWNET2_REQUIRE_COMPILED=1 timeout 240 $py -m pytest -q -m cuda -p no:cacheprovider --no-header -rs \
    tests/ops tests/models tests/train 2>&1 | tail -40
  echo "== bench_ops (cuda)"
  timeout 60 $py -m evaluations.bench_ops --device cuda --runs 20 --warmup 5 2>&1 | tail -25
  echo "== bench_train (cuda)"
  timeout 90 $py -m evaluations.bench_train --device cuda --width 0.375 --batch-size 8 --runs 10 --warmup 3 2>&1 | tail -12
  timeout 60 $py -m evaluations.bench_train --device cuda --width 0.375 --batch-size 16 --runs 10 --warmup 3 --stages C CSS 2>&1 | tail -5
  echo "== bench_gpu (fps by network, size, precision, batch)"
  timeout 120 $py -m evaluations.bench_gpu --budget 100 --json "$out/bench_gpu.json" 2>&1 | tail -40
  echo "== training smoke (cuda)"
  timeout 120 $py -m evaluations.train_synth -o /tmp/smoke --budget 20 --batch-size 8 --val-every 20 \
     --export "$out/smoke" 2>&1 | tail -15
  ls -la "$out/smoke"
  rm -rf "$out/smoke"
elif [ "$phase" = all ]; then
  # Most valuable first: the training (issue 14) warm-starts from the shipped model and uses
  # the pure-PyTorch twins (the compiled kernels are not yet validated on a GPU); then the
  # CUDA tests, then the throughput rows, each under its own timeout.
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  ( time build ) 2>&1 | tail -8
  echo "== training ($3 s, batch $4)"
  timeout $(( $3 + 150 )) $py -m evaluations.train_synth -o /tmp/synth --recipe flownet2-ss-ft-sd --budget "$3" \
     --batch-size "$4" --precision bf16 --fine-lr 3e-5 --val-every 500 \
     $inits --export "$out" --shard-mb 15 2>&1 | grep -v '^\s*$' | tail -45
  echo "== CUDA-marked tests"
  FLOWNET2_REQUIRE_COMPILED=1 timeout 120 $py -m pytest -q -m cuda -p no:cacheprovider --no-header -rs \
    tests/ops tests/models tests/train tests/evaluations 2>&1 | tail -25
  echo "== bench_gpu"
  timeout 75 $py -m evaluations.bench_gpu --budget 55 --json "$out/bench_gpu.json" 2>&1 | tail -30
  echo "== bench_stacks (flownet2, cuda)"
  timeout 45 $py -m evaluations.bench_stacks --methods flownet2 --device cuda --videos 2 --frames 25 2>&1 | tail -6
elif [ "$phase" = train ]; then
  build
  if FLOWNET2_REQUIRE_COMPILED=1 timeout 120 $py -m pytest -q -m cuda -p no:cacheprovider tests/ops >/dev/null 2>&1; then
    export FLOWNET2_CUDA_KERNELS=1; echo "CUDA kernels validated here: training uses them"
  fi
  $py -m evaluations.train_synth -o /tmp/synth --recipe "${5:-flownet2-ss-ft-sd}" --budget "$3" \
     --batch-size "$4" --val-every 500 $inits --export "$out" --shard-mb 15 2>&1 | grep -v '^\s*$' | tail -60
fi
