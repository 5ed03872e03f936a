#!/usr/bin/env bash
# The checks a task with a lent GPU runs in one call of the device tool:
#   1. the device (nvidia-smi, torch, triton versions),
#   2. tests/ops: the Triton NC-SSD kernels against the PyTorch reference, on CUDA,
#   3. benchmarks/check_kernels.py --loaded: registers, spills, shared memory and occupancy of every
#      kernel as the driver loaded it (the ahead-of-time table in docs/benchmarks.md, for real),
#   4. benchmarks/op_speed.py in float16, bfloat16 and float32 (release formulation vs reference vs
#      Triton),
#   5. benchmarks/model_speed.py: the VSSD-T classifier with each NC-SSD backend (Triton, PyTorch), fp32
#      and fp16 AMP, inference and training, at 128 x 224^2 and 2 x 1344x800 (only where $PYLIB,
#      made by benchmarks/make_gpu_pylib.sh and carried, holds mmengine/mmpretrain),
#   6. benchmarks/ablation_speed.py: the paper's Table-5 models (VSSD-Micro ablation) side by side,
#      fp16 AMP training at batch 128, the NC-SSD : SSD : Bi-SSD speed ratios (also needs $PYLIB),
#   7. benchmarks/tune_kernels.py: every candidate launch setting timed (last: it gets the time left),
#   8. tools/check_mmcv_cuda.py: where mmcv is importable, whether its ops have CUDA kernels for
#      this GPU (RoIAlign, NMS; what Mask R-CNN needs),
#   9. `mainjob` (only when named): benchmarks/gpu_main_job.sh, the main job on the GPU (mmcv's CUDA
#      ops built there, Mask R-CNN / UperNet training steps vs Swin-T, the test path); it needs
#      the wheels of benchmarks/make_gpu_wheels.sh carried in $GPU_WHEELS; $MAINJOB_ARGS go to its
#      benchmark (a CPU dry run's tiny shapes).
# $PARTS picks parts 2-9 by name (default: tests kernels op model ablation tune mmcv); part 1
# always runs. Parts 1-4 and 7 need only torch + triton + pytest (the device machine has no mm*
# packages). Each part's output goes to a file in $OUT (default work_dirs/gpu_check); each part
# has a time limit (seconds, scaled by $LIMIT_SCALE) so one hang cannot take the others' time.
# Arguments go to op_speed.py.
#   bash benchmarks/gpu_check.sh                      # on the GPU machine
#   OUT=RESULTS bash benchmarks/gpu_check.sh; tar czf "$DEVICE_OUT/gpu_check.tgz" RESULTS
#                                                # the device tool brings back 8 files at most:
#                                                # write to a scratch folder, return one archive
#   bash benchmarks/gpu_check.sh --scale-batch 0.02   # a quick dry run on a CPU
#   PARTS="tests ablation" bash benchmarks/gpu_check.sh   # what an earlier GPU run left unmeasured
set -u
PYTHON=${PYTHON:-python3}
OUT=${OUT:-work_dirs/gpu_check}
PYLIB=${PYLIB:-work_dirs/gpu_pylib}
LIMIT_SCALE=${LIMIT_SCALE:-1}
PARTS=${PARTS:-tests kernels op model ablation tune mmcv}
mkdir -p "$OUT"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
status=0
limit() { echo $(( $1 * LIMIT_SCALE )); }
want() { [[ " $PARTS " == *" $1 "* ]]; }

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
        || echo "nvidia-smi: not available"
    "$PYTHON" -c "import torch, triton; print('torch', torch.__version__, '| triton', \
triton.__version__, '| CUDA available:', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/device.txt"

if want tests; then
    # several workers share the GPU where pytest-xdist is there: the run is compile-bound
    workers=$("$PYTHON" -c 'import xdist' 2>/dev/null && echo "-n 4")
    timeout "$(limit 200)" "$PYTHON" -m pytest tests/ops -q -p no:cacheprovider $workers -rs \
        2>&1 | tee "$OUT/tests_ops.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

# exit 2 (no CUDA) is a dry run's answer, not a failure
if want kernels; then
    timeout "$(limit 60)" "$PYTHON" -m benchmarks.check_kernels --loaded \
        --json "$OUT/kernels_loaded.json" 2>&1 | tee "$OUT/kernels_loaded.txt"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || status=1
fi

want op && for dtype in float16 bfloat16 float32; do
    timeout "$(limit 60)" "$PYTHON" -m benchmarks.op_speed --dtype "$dtype" "$@" 2>&1 \
        | tee "$OUT/op_speed_$dtype.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

has_cuda() { "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; }
if want model || want ablation; then
    if [ -d "$PYLIB" ] && has_cuda; then
        pylib_path="$PYTHONPATH:$(cd "$PYLIB" && pwd)"
        want model && for run in "128 224 224" "2 800 1344"; do
            read -r batch height width <<< "$run"
            for backend in triton torch; do
                PYTHONPATH="$pylib_path" timeout "$(limit 90)" "$PYTHON" \
                    -m benchmarks.model_speed configs/mmpretrain/vssd_t_8xb128_in1k.py --device cuda \
                    --batch-size "$batch" --shape "$height" "$width" --amp both \
                    --out-dir "$OUT/benchmark" \
                    --cfg-options model.backbone.nc_ssd_backend=$backend 2>&1 \
                    | tee "$OUT/benchmark_vssd_t_${batch}x${height}x${width}_$backend.txt"
                [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
            done
        done
        if want ablation; then
            # the paper's setting: fp16 AMP, batch 128
            PYTHONPATH="$pylib_path" timeout "$(limit 240)" "$PYTHON" \
                -m benchmarks.ablation_speed --device cuda --amp --batch-size 128 --rounds 3 \
                --warmup 2 --iters 5 --out-dir "$OUT/benchmark" 2>&1 \
                | tee "$OUT/ablation_speed.txt"
            [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
        fi
    else
        echo "model-level benchmarks skipped: needs CUDA and $PYLIB" \
            "(bash benchmarks/make_gpu_pylib.sh)" | tee "$OUT/benchmark_skipped.txt"
    fi
fi

if want tune; then
    timeout "$(limit 150)" "$PYTHON" -m benchmarks.tune_kernels --json "$OUT/tune_kernels.json" \
        2>&1 | tee "$OUT/tune_kernels.txt"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || status=1
fi
if want mmcv; then
    mm_path="$PYTHONPATH:$(cd "$PYLIB" 2>/dev/null && pwd)"   # mmcv from $PYLIB where it is there
    if PYTHONPATH="$mm_path" "$PYTHON" -c 'import mmcv.ops' 2>/dev/null; then
        PYTHONPATH="$mm_path" timeout "$(limit 60)" "$PYTHON" \
            tools/check_mmcv_cuda.py 2>&1 | tee "$OUT/check_mmcv_cuda.txt"
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    else
        echo "check_mmcv_cuda skipped: mmcv's compiled ops are not importable here" \
            | tee "$OUT/check_mmcv_cuda.txt"
    fi
fi

if want mainjob; then
    # shellcheck disable=SC2086  # MAINJOB_ARGS: main_job_speed.py's options (a CPU dry run's)
    OUT="$OUT/main_job" PYTHON="$PYTHON" LIMIT_SCALE="$LIMIT_SCALE" bash benchmarks/gpu_main_job.sh \
        ${MAINJOB_ARGS:-} || status=1
fi

echo "gpu_check: results in $OUT (exit status $status)"
exit $status
