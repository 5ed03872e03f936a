#!/usr/bin/env bash
# The checks a task with a lent GPU runs in one call of the device tool:
#   1. the device (nvidia-smi, torch, triton versions),
#   2. tests/ops: the Triton NC-SSD kernels against the PyTorch reference, on CUDA,
#   3. tools/check_kernels.py --loaded: registers, spills, shared memory and occupancy of every
#      kernel as the driver loaded it (the ahead-of-time table in docs/benchmarks.md, for real),
#   4. tools/benchmark_op.py in float16 and bfloat16 (release formulation vs reference vs Triton).
# Needs only torch + triton + pytest (the device machine has no mm* packages). Each part's output
# goes to a file in $OUT (default work_dirs/gpu_check); arguments go to benchmark_op.py.
#   bash tools/gpu_check.sh                      # on the GPU machine
#   bash tools/gpu_check.sh --scale-batch 0.02   # a quick dry run on a CPU
set -u
PYTHON=${PYTHON:-python3}
OUT=${OUT:-work_dirs/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
status=0

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
        || echo "nvidia-smi: not available"
    "$PYTHON" -c "import torch, triton; print('torch', torch.__version__, '| triton', \
triton.__version__, '| CUDA available:', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/device.txt"

"$PYTHON" -m pytest tests/ops -q -p no:cacheprovider 2>&1 | tee "$OUT/tests_ops.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# exit 2 (no CUDA) is a dry run's answer, not a failure
"$PYTHON" tools/check_kernels.py --loaded --json "$OUT/kernels_loaded.json" 2>&1 \
    | tee "$OUT/kernels_loaded.txt"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || status=1

for dtype in float16 bfloat16; do
    "$PYTHON" tools/benchmark_op.py --dtype "$dtype" "$@" 2>&1 | tee "$OUT/benchmark_op_$dtype.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "gpu_check: results in $OUT (exit status $status)"
exit $status
