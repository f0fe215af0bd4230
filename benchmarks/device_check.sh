#!/usr/bin/env bash
# Every GPU check of the project in one device-tool call (about 8 minutes on an H200), for a session
# that has the device:
#   run(command="bash benchmarks/device_check.sh", timeout_s=580)
# 1. the GPU tests; 2. bench_gpu.py: iterations/s of the paper preset with each fast-path option;
# 3. bench_fastpath.py: the fastest option's training curves against fp32 (3,000 iterations, 5 runs).
# Logs and the curve figure land in $OUT (the device tool brings them back) or benchmarks/out/.
# The device image has torch, numpy, scikit-learn, matplotlib and tqdm; fvae_lib runs from the tree.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
OUT="${OUT:-benchmarks/out}"
mkdir -p "$OUT" benchmarks/out
PY="${PY:-python3}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"

# the replica is built once (cached in data/) and shared by every step below
timeout 60 $PY -m fvae_lib data --source replica > "$OUT/data.log" 2>&1 || { echo "dataset build failed"; tail "$OUT/data.log"; }

echo "== GPU tests"
timeout 90 $PY -m pytest -q -o addopts="" -p no:cacheprovider -m gpu tests 2>&1 | tee "$OUT/gpu_tests.log" | tail -5

echo "== bench_gpu"
timeout 260 $PY benchmarks/bench_gpu.py --iterations 500 --budget-s 180 2>&1 | tee "$OUT/bench_gpu.log"
spec=$(sed -n 's/^fast spec: //p' "$OUT/bench_gpu.log" | tail -1)

if [ -n "$spec" ] && [ "$spec" != fp32 ]; then
  echo "== bench_fastpath --fast $spec"
  timeout 150 $PY benchmarks/bench_fastpath.py --device cuda --iterations 3000 --fast "$spec" 2>&1 | tee "$OUT/bench_fastpath.log"
  cp benchmarks/out/fastpath_curves*.png "$OUT/" 2>/dev/null
fi
echo "== done"
