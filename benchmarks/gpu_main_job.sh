#!/usr/bin/env bash
# The project's main job on a lent GPU, in one call of the device tool (benchmarks/gpu_check.sh runs it
# as its part `mainjob`):
#   1. install the carried wheels ($GPU_WHEELS, made here by benchmarks/make_gpu_wheels.sh) into a
#      scratch folder on PYTHONPATH (the GPU machine has torch and triton, no mm* packages);
#   2. build mmcv's ops against that machine's torch with the install script's own build step,
#      tools/build_mmcv.sh: the system nvcc, TORCH_CUDA_ARCH_LIST (default 9.0), all cores,
#      stopped with one line after $BUILD_TIMEOUT s (default 480); MMCV_WHEEL=PATH installs a
#      prebuilt wheel instead (the CPU dry run);
#   3. tools/check_mmcv_cuda.py: CUDA version, archs, RoIAlign / NMS kernels of that build;
#   4. benchmarks/main_job_speed.py --tasks mask_rcnn: VSSD-T (NC-SSD backend auto, i.e. the
#      Triton kernels as a user runs them, and torch) vs Swin-T, fp16 / bf16 AMP and fp32,
#      2 x 1344x800, with a profile of the fp16 VSSD step; its table's last column and its JSON
#      say whether NC-SSD fell back to the PyTorch reference (a give-up, or calls the kernels
#      cannot serve);
#   5. the test path: demo data, tools/train.py (--amp on CUDA) for one short epoch, then
#      tools/test.py with and without --tta on its checkpoint: seconds per image of each, and
#      one line per process naming NC-SSD's fallback warnings in its log (or none);
#   6. benchmarks/main_job_speed.py --tasks upernet (2 x 512^2), as 4.
# Each step writes $OUT/<step>.txt and has a time limit (seconds, scaled by $LIMIT_SCALE), so one
# hang cannot take the later steps' time. Arguments go to both main_job_speed.py calls.
# $STEPS picks steps (default all: wheels mmcv_build mmcv_check mask_rcnn test_path upernet). All
# of them take ~12 min on an H200 (estimate) and one device call runs 10 min at most: make two
# calls back to back, the second while the machine is still warm (the scratch folder with the
# built mmcv survives; mmcv_build is skipped when $SITE already has mmcv with CUDA ops):
#   STEPS="wheels mmcv_build mmcv_check mask_rcnn"  then  STEPS="wheels mmcv_build test_path upernet"
#   OUT=R bash benchmarks/gpu_main_job.sh; tar czf "$DEVICE_OUT/main_job.tgz" R      # on the GPU
#   a CPU dry run (wheels for this Python, the CPU wheel, tiny shapes):
#   PYVER=3.11 bash benchmarks/make_gpu_wheels.sh work_dirs/gw311 && PYTHON=.venv/bin/python \
#     GPU_WHEELS=work_dirs/gw311 \
#     MMCV_WHEEL=../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl \
#     TEST_PATH_OPTIONS="train_dataloader.dataset.indices=4 test_dataloader.dataset.indices=2" \
#     bash benchmarks/gpu_main_job.sh --device cpu --precisions fp32 --backends torch --iters 2 \
#     --timed 1 --det-shape 96 128 --seg-shape 64 64
set -u
PYTHON=${PYTHON:-python3}
OUT=${OUT:-work_dirs/gpu_main_job}
GPU_WHEELS=${GPU_WHEELS:-work_dirs/gpu_wheels}
SITE=${SITE:-work_dirs/gpu_main_job_site}   # the carried packages and the built mmcv
BUILD_TIMEOUT=${BUILD_TIMEOUT:-480}
LIMIT_SCALE=${LIMIT_SCALE:-1}
mkdir -p "$OUT" "$SITE"
OUT=$(cd "$OUT" && pwd) SITE=$(cd "$SITE" && pwd)
export PYTHON GPU_WHEELS SITE BUILD_TIMEOUT MMCV_WHEEL=${MMCV_WHEEL:-} \
    TEST_PATH_OPTIONS=${TEST_PATH_OPTIONS:-}
export PYTHONPATH="$(pwd):$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
STEPS=${STEPS:-wheels mmcv_build mmcv_check mask_rcnn test_path upernet}
status=0
want() { [[ " $STEPS " == *" $1 "* ]]; }
limit() { echo $(( $1 * LIMIT_SCALE )); }
step() {  # step NAME SECONDS COMMAND...: run it, output to $OUT/NAME.txt, note a failure
    local name=$1 seconds; seconds=$(limit "$2"); shift 2
    echo "== $name (limit ${seconds}s): $*" | tee "$OUT/$name.txt"
    local start=$SECONDS
    # through bash, so that the functions below (exported) can be steps too
    timeout "$seconds" bash -c '"$@"' step "$@" 2>&1 | tee -a "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/$name.txt"
    [ "$rc" -eq 0 ] || status=1
    return "$rc"
}

pip_site() { "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
    --no-compile --upgrade --target "$SITE" "$@"; }
export -f pip_site
if want wheels; then
    step wheels 60 pip_site "$GPU_WHEELS"/*.whl \
        || { echo "main job: the carried wheels did not install"; exit 1; }
fi

build_mmcv() {
    local wheel plan
    [ -n "${MMCV_WHEEL:-}" ] && { pip_site "$MMCV_WHEEL"; return; }
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
    plan=$(VSSD_MM_CUDA_OPS=1 "$PYTHON" vssd_mm/engine/mmcv_cuda.py plan) || return 1
    if "$PYTHON" vssd_mm/engine/mmcv_cuda.py accepts "$plan" >/dev/null 2>&1; then
        echo "mmcv with CUDA ops for $plan already in $SITE (an earlier call on this machine)"
        return 0
    fi
    wheel=$(BUILD_TIMEOUT=$BUILD_TIMEOUT bash tools/build_mmcv.sh "$PYTHON" \
        "$(ls "$GPU_WHEELS"/mmcv-*.tar.gz)" work_dirs/gpu_main_job_mmcv "$plan" | tail -n 1) \
        || return 1
    pip_site "$wheel"
}
export -f build_mmcv
# the build's own limit is BUILD_TIMEOUT; the step's leaves room for the install after it
if want mmcv_build; then
    step mmcv_build $(( (BUILD_TIMEOUT + 30) / LIMIT_SCALE )) build_mmcv \
        || { echo "main job: no mmcv with compiled ops, nothing else can run"; exit 1; }
fi
want mmcv_check && step mmcv_check 30 "$PYTHON" tools/check_mmcv_cuda.py

want mask_rcnn && step mask_rcnn 240 "$PYTHON" -m benchmarks.main_job_speed --tasks mask_rcnn \
    --precisions fp16 bf16 fp32 --backends auto torch --profile-steps 3 --out-dir "$OUT" "$@"

nc_ssd_fallback() {  # nc_ssd_fallback NAME LOG: NC-SSD's fallback warnings (dispatch.py) in LOG
    local lines
    lines=$(grep -h 'nc_ssd: .*PyTorch reference' "$2" | sed -E 's/.*RuntimeWarning: //' \
        | sort -u)
    echo "NC-SSD fallback in $1: ${lines:-none}"
}
export -f nc_ssd_fallback

test_path() {
    local config=configs/mmdet/demo/mask_rcnn_vssd_t_demo.py work=work_dirs/gpu_demo amp ckpt
    amp=$("$PYTHON" -c 'import torch; print("--amp" if torch.cuda.is_available() else "")')
    # shellcheck disable=SC2086  # TEST_PATH_OPTIONS: several KEY=VALUE words
    "$PYTHON" tools/make_demo_data.py coco --out data/coco_demo || return 1
    mkdir -p "$work"
    "$PYTHON" tools/train.py "$config" --work-dir "$work" $amp \
        --cfg-options train_cfg.max_epochs=1 ${TEST_PATH_OPTIONS:-} 2>&1 | tee "$work/train.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
    nc_ssd_fallback "tools/train.py${amp:+ $amp}" "$work/train.log"
    ckpt=$(cat "$work/last_checkpoint")
    for tta in "" --tta; do
        "$PYTHON" tools/test.py "$config" "$ckpt" --work-dir "$work" $tta \
            ${TEST_PATH_OPTIONS:+--cfg-options $TEST_PATH_OPTIONS} > "$work/test$tta.log" 2>&1 \
            || { cat "$work/test$tta.log"; return 1; }
        # mmengine's last test line: the metrics and the mean seconds per iteration (1 image)
        echo "tools/test.py ${tta:-(single scale)}: $(grep 'Epoch(test)' "$work/test$tta.log" \
            | tail -n 1 | sed -E 's/.*Epoch\(test\)//')"
        nc_ssd_fallback "tools/test.py ${tta:-(single scale)}" "$work/test$tta.log"
    done
}
export -f test_path
want test_path && step test_path 150 test_path
want upernet && step upernet 150 "$PYTHON" -m benchmarks.main_job_speed --tasks upernet \
    --precisions fp16 bf16 fp32 --backends auto torch --profile-steps 3 --out-dir "$OUT" "$@"
echo "main job: results in $OUT (exit status $status)"
exit $status
