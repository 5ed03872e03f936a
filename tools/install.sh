#!/usr/bin/env bash
# Install vssd_mm and its pinned OpenMMLab stack into a virtual environment (default: .venv in the
# checkout). Safe to re-run: a stamp makes a re-run that has nothing to do take a few seconds.
#
# Environment:
#   VSSD_MM_STACK   which OpenMMLab: upstream (default; the 2023-24 releases, requirements/stack.txt)
#                   or onedl (the maintained OneDL forks, requirements/stack-onedl.txt). Switching a
#                   venv from one to the other removes the other stack's packages first.
#   VSSD_MM_VENV    the virtual environment to create or reuse (default: <checkout>/.venv, and
#                   <checkout>/.venv-onedl for the onedl stack)
#   VSSD_MM_WHEELS  a directory with prebuilt wheels to prefer (default: <checkout>/../shared/wheels);
#                   an mmcv wheel there is used only if its compiled ops load with the installed torch
#                   (and, where CUDA ops are wanted, were compiled with torch's CUDA for the archs)
#   VSSD_MM_CUDA_OPS  1: build mmcv's ops with CUDA; 0: CPU-only ops; unset: CUDA ops when torch is
#                   a CUDA build and a GPU is visible
#   TORCH_CUDA_ARCH_LIST  GPU archs of those CUDA ops (default: the visible GPUs', else
#                   8.0;8.6;8.9;9.0+PTX)
#   VSSD_MM_CUDA_TOOLKIT  system | packages: force the system nvcc, or CUDA's compiler from the
#                   package registry (default: a system nvcc whose release matches torch's CUDA,
#                   else the packages)
#   PYTHON          the interpreter that creates the venv (default: python3)
#
# Only the venv and <checkout>/.cache (pip's cache, self-built wheels, the packaged CUDA compiler)
# are written, unless PIP_CACHE_DIR points elsewhere.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=${VSSD_MM_WHEELS:-$ROOT/../shared/wheels}
[ -d "$WHEELS" ] && WHEELS=$(cd "$WHEELS" && pwd)
STACK=${VSSD_MM_STACK:-upstream}
# The distributions that install each module, per stack (both install mmengine, mmcv, mmdet, ...)
UPSTREAM_DISTS=(mmengine mmcv mmdet mmsegmentation mmpretrain)
ONEDL_DISTS=(onedl-mmengine onedl-mmcv onedl-mmdetection onedl-mmsegmentation onedl-mmpretrain)
case $STACK in
    upstream) PINS=$ROOT/requirements/stack.txt; DISTS=("${UPSTREAM_DISTS[@]}"); OTHER_DISTS=("${ONEDL_DISTS[@]}") ;;
    onedl) PINS=$ROOT/requirements/stack-onedl.txt; DISTS=("${ONEDL_DISTS[@]}"); OTHER_DISTS=("${UPSTREAM_DISTS[@]}") ;;
    *) printf '[install] ERROR: VSSD_MM_STACK=%s is not a stack; use upstream (the OpenMMLab releases) or onedl (the OneDL forks).\n' "$STACK" >&2; exit 2 ;;
esac
# module -> this stack's distribution
MMENGINE=${DISTS[0]} MMCV=${DISTS[1]} MMDET=${DISTS[2]} MMSEG=${DISTS[3]} MMPRETRAIN=${DISTS[4]}
MMCV_WHEEL_PREFIX=${MMCV//-/_}     # wheel file names spell the distribution with '_'
# each stack its own venv by default, so that trying the other stack never replaces a working one
DEFAULT_VENV=$ROOT/.venv
[ "$STACK" = onedl ] && DEFAULT_VENV=$ROOT/.venv-onedl
VENV=${VSSD_MM_VENV:-$DEFAULT_VENV}
TEST_PINS=$ROOT/requirements/tests.txt
BUILT_WHEELS=$ROOT/.cache/wheels     # mmcv wheels we compiled ourselves, a folder per build id
MMCV_CUDA=$ROOT/vssd_mm/engine/mmcv_cuda.py        # run by path: vssd_mm is not installed yet
CUDA_TOOLKIT=$ROOT/vssd_mm/engine/cuda_toolkit.py
STAMP=$VENV/.vssd_mm_install_stamp
# pip's download cache stays in the checkout too (nothing outside it and the venv is written)
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$ROOT/.cache/pip}
START=$SECONDS

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[install] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# The requirement line of one distribution in the stack's pins, e.g. pin mmcv -> "mmcv==2.1.0".
pin() { grep -E "^$1([=<>!~ ,]|$)" "$PINS" | head -n 1; }
pinned_version() { pin "$1" | sed -E 's/^[^=]*==([^,;]*).*/\1/'; }

stamp_of_inputs() {  # the pins, this script and what this machine wants of mmcv's ops
    { echo "stack $STACK"; cat "$PINS" "$TEST_PINS" "$ROOT/setup.py" "${BASH_SOURCE[0]}" "$MMCV_CUDA"
      "$PY" "$MMCV_CUDA" plan 2>&1 || true; } | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- venv
PY=$VENV/bin/python
if [ ! -x "$PY" ]; then
    command -v "${PYTHON:-python3}" >/dev/null || die "no '${PYTHON:-python3}' on PATH; install Python >= 3.9 or set PYTHON=/path/to/python."
    say "creating virtual environment $VENV"
    "${PYTHON:-python3}" -m venv "$VENV" || die "could not create a venv (on Debian/Ubuntu: apt install python3-venv)."
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null \
    || die "$VENV has Python $("$PY" -c 'import platform; print(platform.python_version())'); vssd_mm needs >= 3.9."

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_of_inputs)" ] \
    && "$PY" -c 'import torch, torchvision, mmcv.ops, mmdet, mmseg, mmpretrain, onnxruntime, vssd_mm' 2>/dev/null; then
    say "up to date ($VENV, $STACK stack)"
    exit 0
fi

PIP=("$PY" -m pip --disable-pip-version-check)
CONSTRAINTS=$VENV/vssd_mm-constraints.txt   # keeps later steps from replacing torch or setuptools

"${PIP[@]}" install --quiet "$(pin setuptools)" wheel packaging

# ---------------------------------------------------------------- torch + torchvision
torch_pair_works() {
    "$PY" - <<'EOF' 2>/dev/null
import torch, torchvision
# the compiled torchvision ops are what a mismatched pair breaks
torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
EOF
}
if torch_pair_works; then
    say "keeping torch $("$PY" -c 'import torch; print(torch.__version__)') + torchvision $("$PY" -c 'import torchvision; print(torchvision.__version__)') already in $VENV"
else
    say "installing $(pin torch) and $(pin torchvision) (the standard build: ~3.5 GB download, a few minutes)"
    "${PIP[@]}" install --progress-bar off "$(pin torch)" "$(pin torchvision)" \
        || die "installing torch/torchvision failed (see pip's message above)."
    torch_pair_works || die "torch and torchvision are installed but torchvision's ops do not load; a machine-local '+cpu' torch with the published torchvision does this. Remove $VENV and re-run."
fi
"$PY" - "$CONSTRAINTS" "$(pin setuptools)" <<'EOF'
import sys
from importlib.metadata import version
# the distributions' versions as pip sees them (torch.__version__ may carry a local '+cu130'
# that the published wheel's metadata lacks: such a constraint matches nothing)
with open(sys.argv[1], 'w') as f:
    f.write(f'torch=={version("torch")}\ntorchvision=={version("torchvision")}\n{sys.argv[2]}\n')
EOF
PIPC=("${PIP[@]}" install --progress-bar off -c "$CONSTRAINTS")

# ---------------------------------------------------------------- one stack per venv
# An upstream package and its fork install the same files under two distribution names: removing
# one later deletes files of the other. Where the other stack is present, its distributions go,
# and so do this stack's (their files may have been overwritten); they are installed again below.
installed_of() { "$PY" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for name in sys.argv[1:]:
    try:
        print(f'{name}=={version(name)}')
    except PackageNotFoundError:
        pass
EOF
}
mapfile -t others < <(installed_of "${OTHER_DISTS[@]}")
if [ ${#others[@]} -gt 0 ]; then
    say "switching $VENV to the $STACK stack: removing ${others[*]} $(installed_of "${DISTS[@]}" | tr '\n' ' ')"
    "${PIP[@]}" uninstall --quiet -y "${OTHER_DISTS[@]}" "${DISTS[@]}" 2>/dev/null \
        || die "could not remove the other stack's packages from $VENV (pip's message above); remove the venv and re-run."
fi

# ---------------------------------------------------------------- mmengine + mmcv (compiled ops)
"${PIPC[@]}" --quiet "$(pin $MMENGINE)" "$(pin numpy)"

MMCV_VERSION=$(pinned_version $MMCV)
# What this machine wants of mmcv's ops: "cuda 13.0 8.0;9.0", "cpu" (forced) or "any" (no GPU)
PLAN=$("$PY" "$MMCV_CUDA" plan) || die "$("$PY" "$MMCV_CUDA" plan 2>&1 | tail -n 1)"
BUILD_ID=$("$PY" "$MMCV_CUDA" build-id "$PLAN")
CUOBJDUMP_DIR=""   # reads the archs and kernels inside a CUDA build
if [[ $PLAN == cuda* ]]; then
    say "mmcv's ops are wanted with CUDA ($PLAN); finding a CUDA toolkit"
    toolkit=$("$PY" "$CUDA_TOOLKIT" "$ROOT/.cache" "$ROOT/requirements") \
        || die "no CUDA toolkit to build mmcv's CUDA ops with (message above)."
    CUOBJDUMP_DIR=$(sed -n 's/^CUOBJDUMP_DIR=//p' <<< "$toolkit")
    say "toolkit: $(head -n 1 <<< "$toolkit")"
fi

mmcv_ops_work() {  # the pinned mmcv is installed, its ops load and serve $PLAN
    "$PY" - "$MMCV_VERSION" <<'EOF' 2>/dev/null || return 1
import sys, torch, mmcv
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
from mmcv.ops import nms
nms(torch.tensor([[0., 0., 1., 1.]]), torch.tensor([1.]), 0.5)
EOF
    local verdict
    verdict=$("$PY" "$MMCV_CUDA" accepts "$PLAN" $CUOBJDUMP_DIR 2>&1) && return 0
    say "not kept: $verdict"
    return 1
}
sha_ok() {  # sha_ok WHEEL: true when the directory has no SHA256SUMS or the wheel's entry matches
    local dir sums
    dir=$(dirname "$1"); sums=$dir/SHA256SUMS
    [ -f "$sums" ] || return 0
    (cd "$dir" && grep " $(basename "$1")\$" SHA256SUMS | sha256sum --check --status -)
}
try_mmcv_wheel() {  # try_mmcv_wheel WHEEL: install it; keep it only if its ops load and serve $PLAN
    sha_ok "$1" || { say "skipping $1: not listed in its folder's SHA256SUMS, or its checksum does not match"; return 1; }
    "${PIPC[@]}" --quiet --force-reinstall --no-deps "$1" >/dev/null 2>&1 || return 1
    "${PIPC[@]}" --quiet "$1" >/dev/null || return 1  # its dependencies
    mmcv_ops_work && return 0
    say "$(basename "$1") does not serve this machine; removing it"
    "${PIP[@]}" uninstall --quiet -y "$MMCV" >/dev/null
    return 1
}

if mmcv_ops_work; then
    say "$MMCV $MMCV_VERSION with compiled ops already installed"
else
    installed=""
    # prebuilt wheels, then ours kept for this kind of build (a CPU-only and a CUDA build are kept
    # in separate folders), then flat ones from older installs; each is checked for real
    mapfile -t candidates < <(ls "$WHEELS/$MMCV_WHEEL_PREFIX-$MMCV_VERSION"-*.whl 2>/dev/null
        "$PY" "$MMCV_CUDA" cached "$PLAN" "$BUILT_WHEELS" | grep "/$MMCV_WHEEL_PREFIX-$MMCV_VERSION-"
        ls "$BUILT_WHEELS/$MMCV_WHEEL_PREFIX-$MMCV_VERSION"-*.whl 2>/dev/null)
    for wheel in "${candidates[@]}"; do
        [ -f "$wheel" ] || continue
        say "trying cached wheel $wheel"
        if try_mmcv_wheel "$wheel"; then installed=$wheel; break; fi
    done
    if [ -z "$installed" ]; then
        if [[ $PLAN == cuda* ]]; then
            took="CUDA ops for ${PLAN##* }: ~70 min on 2 cores for two archs, ~7 min per arch more"
        else
            took="CPU ops: ~45 min on 2 cores for mmcv 2.1.0, ~13 min for onedl-mmcv 2.3.6"
        fi
        say "building $MMCV $MMCV_VERSION with compiled ops from source (no matching wheel; $took)"
        "${PIPC[@]}" --quiet ninja psutil
        build_start=$SECONDS
        wheel=$(bash "$ROOT/tools/build_mmcv.sh" "$PY" "$(pin $MMCV)" "$BUILT_WHEELS/$BUILD_ID" "$PLAN" \
            | tail -n 1) || die "building $MMCV $MMCV_VERSION failed (message above)."
        out=$(dirname "$wheel")
        try_mmcv_wheel "$wheel" || die "the freshly built $wheel does not serve this machine ($PLAN); remove $out and re-run."
        { echo "plan: $PLAN"
          echo "build: $("$PY" "$MMCV_CUDA" accepts "$PLAN" $CUOBJDUMP_DIR)"
          echo "built in $((SECONDS - build_start)) s on $(nproc) cores, wheel $(du -h "$wheel" | cut -f1)"
        } > "$out/BUILD.txt"
        say "built: $(tr '\n' ' ' < "$out/BUILD.txt")"
    fi
fi

# ---------------------------------------------------------------- mm* libraries, tests, vssd_mm
extra_pins=()
[ "$STACK" = onedl ] && extra_pins+=("$(pin imaug)")
"${PIPC[@]}" --quiet "$(pin $MMDET)" "$(pin $MMSEG)" "$(pin $MMPRETRAIN)" "$(pin pycocotools)" \
    "$(pin ftfy)" "$(pin regex)" "${extra_pins[@]}" \
    || die "installing $MMDET/$MMSEG/$MMPRETRAIN failed (see pip's message above)."
"${PIPC[@]}" --quiet "$(pin onnx)" "$(pin onnxruntime)" "$(pin onnxscript)" \
    || die "installing the deployment extra (onnx, onnxruntime, onnxscript) failed (see pip's message above)."
"${PIPC[@]}" --quiet -r "$TEST_PINS"
# with its dependencies, as a user's `pip install -e .`: it must not bring an OpenMMLab package
"${PIPC[@]}" --quiet -e "$ROOT"

"$PY" - "$STACK" "${OTHER_DISTS[@]}" <<'EOF' || die "the installed stack does not import, or mixes the two stacks (message above)."
import sys
from importlib.metadata import PackageNotFoundError, version
mixed = []
for name in sys.argv[2:]:
    try:
        mixed.append(f'{name}=={version(name)}')
    except PackageNotFoundError:
        pass
if mixed:
    sys.exit(f'[install] the {sys.argv[1]} stack is installed and so is {", ".join(mixed)} of the other stack')
import torch, torchvision, mmengine, mmcv, mmdet, mmseg, mmpretrain, vssd_mm
import onnx, onnxruntime, onnxscript  # the [deploy] extra
import mmdet.models, mmseg.models, mmpretrain.models  # their run-time imports are all there
from mmcv.ops import nms, RoIAlign, get_compiling_cuda_version
print(f'[install] {sys.argv[1]} stack: torch', torch.__version__, '| torchvision', torchvision.__version__,
      '| mmengine', mmengine.__version__, '| mmcv', mmcv.__version__,
      f'(ops: CUDA {get_compiling_cuda_version()})', '| mmdet', mmdet.__version__,
      '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__, '| vssd_mm', vssd_mm.__version__)
EOF
stamp_of_inputs > "$STAMP"
say "done in $((SECONDS - START)) s ($VENV)"
