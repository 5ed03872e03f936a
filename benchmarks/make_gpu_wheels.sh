#!/usr/bin/env bash
# Fetch what the main job needs on the GPU machine, which has its own Python, torch and triton but
# no mm* packages and no network: the OpenMMLab libraries (pinned in requirements/stack.txt) and
# their small dependencies as wheels for that machine's Python, plus mmcv's source archive (its ops
# are built there, against that torch, by tools/build_mmcv.sh). Carry the folder to the device
# (the device tool's `carry`), then `PARTS=mainjob bash benchmarks/gpu_check.sh` installs it.
#   bash benchmarks/make_gpu_wheels.sh [DEST]      # default work_dirs/gpu_wheels
# Environment: PYVER (default 3.12, the GPU machine's), PYTHON (default .venv/bin/python: its pip
# and torch prepare mmcv's source archive).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-work_dirs/gpu_wheels}
PYVER=${PYVER:-3.12}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PINS=$ROOT/requirements/stack.txt
pin() { grep -E "^$1([=<>!~ ,]|$)" "$PINS" | head -n 1; }
# The libraries and what they import that the GPU machine's image lacks (its package list:
# the device tool's KINDS.md); setuptools < 81 for pkg_resources (mmcv's setup.py, mmengine's
# `mmdet::` config lookup).
WANTED=("$(pin mmengine)" "$(pin mmdet)" "$(pin mmsegmentation)" "$(pin setuptools)"
        addict yapf platformdirs termcolor terminaltables shapely pycocotools prettytable wcwidth
        ftfy)
rm -rf "$DEST"
mkdir -p "$DEST"
PIP=("$PYTHON" -m pip --disable-pip-version-check)
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$DEST" "${WANTED[@]}"
# the source archive; preparing its metadata imports torch, hence no build isolation
"${PIP[@]}" download --quiet --no-deps --no-binary :all: --no-build-isolation -d "$DEST" \
    "$(pin mmcv)"
echo "make_gpu_wheels: $(ls "$DEST" | wc -l) files, $(du -sh "$DEST" | cut -f1) in $DEST"
