#!/usr/bin/env bash
# Build an mmcv wheel with compiled ops, CPU-only or with CUDA: the build step of tools/install.sh,
# also run alone where a machine brings its own torch (benchmarks/gpu_check.sh's main-job part).
#   bash tools/build_mmcv.sh PYTHON SOURCE OUT_DIR PLAN
#     PYTHON   the interpreter whose torch the ops are built against
#     SOURCE   a requirement (mmcv==2.1.0 or onedl-mmcv==2.3.6: the source from the package
#              registry) or an sdist path
#     OUT_DIR  where the wheel goes
#     PLAN     what vssd_mm/engine/mmcv_cuda.py's `plan` printed: "cuda 13.0 8.0;9.0" builds CUDA
#              ops for those archs, "cpu" or "any" CPU-only ops
# Environment: MAX_JOBS (default: all cores); BUILD_TIMEOUT (seconds, default: none) stops a build
# that runs longer with one clear line; VSSD_MM_CUDA_TOOLKIT (see cuda_toolkit.py); CACHE (default
# <checkout>/.cache: where the registry's CUDA compiler is installed when needed).
# The wheel's path is the last line printed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 4 ] || { echo "usage: bash tools/build_mmcv.sh PYTHON SOURCE OUT_DIR PLAN" >&2; exit 2; }
PY=$1 SOURCE=$2 OUT=$3 PLAN=$4
CACHE=${CACHE:-$ROOT/.cache}

say() { printf '\033[1m[build_mmcv]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[build_mmcv] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

for tool in gcc g++; do
    command -v "$tool" >/dev/null || die "mmcv's ops need a C++ compiler and '$tool' is missing. Install one (Debian/Ubuntu: apt install build-essential; plus the python3-dev headers) and re-run, or put a prebuilt mmcv wheel for this torch into VSSD_MM_WHEELS."
done
"$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || die "Python headers (Python.h) are missing; install python3-dev (Debian/Ubuntu) and re-run."

env_vars=()
if [[ $PLAN == cuda* ]]; then
    read -r _ _ archs <<< "$PLAN"
    toolkit=$("$PY" "$ROOT/vssd_mm/engine/cuda_toolkit.py" "$CACHE" "$ROOT/requirements") \
        || die "no CUDA toolkit to build mmcv's CUDA ops with (message above)."
    mapfile -t env_vars < <(grep -v '^CUOBJDUMP_DIR=' <<< "$toolkit")
    env_vars+=("FORCE_CUDA=1" "TORCH_CUDA_ARCH_LIST=$archs")
    say "CUDA ops for $archs with ${env_vars[0]}"
else
    # mmcv's setup.py builds CUDA ops whenever torch sees a GPU: hide them for a CPU-only build
    env_vars+=("FORCE_CUDA=0" "CUDA_VISIBLE_DEVICES=")
fi

mkdir -p "$OUT"
limit=()
[ -n "${BUILD_TIMEOUT:-}" ] && limit=(timeout "$BUILD_TIMEOUT")
start=$SECONDS
set +e
"${limit[@]}" env "${env_vars[@]}" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$PY" -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps \
    --no-binary :all: -w "$OUT" "$SOURCE" >&2
rc=$?
set -e
[ $rc -eq 124 ] && die "the mmcv build passed BUILD_TIMEOUT=${BUILD_TIMEOUT}s and was stopped; give it more time or fewer archs (TORCH_CUDA_ARCH_LIST)."
[ $rc -eq 0 ] || die "building mmcv failed (compiler output above). Check that gcc/g++ >= 9 and python3-dev are installed, then re-run; or supply a prebuilt wheel through VSSD_MM_WHEELS."
wheel=$(ls -t "$OUT"/*mmcv-*.whl | head -n 1)   # mmcv-* or the fork's onedl_mmcv-*
say "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1)) in $((SECONDS - start)) s on ${MAX_JOBS:-$(nproc)} jobs"
echo "$wheel"
