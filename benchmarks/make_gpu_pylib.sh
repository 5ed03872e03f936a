#!/usr/bin/env bash
# Copy the pure-Python packages the model-level GPU benchmark needs (mmengine, mmpretrain, mmcv's
# Python part, their small dependencies and the metadata mmengine's config loader looks up) from
# this environment into one folder, for a GPU machine that has torch and triton but no mm*
# packages and no network: carry the folder, and benchmarks/gpu_check.sh puts it on PYTHONPATH.
# mmcv's compiled ops (*.so, built for this machine's torch) are left out, so Mask R-CNN and
# UperNet, which need them, cannot run from it; VSSD and the classifier can.
#   bash benchmarks/make_gpu_pylib.sh [DEST]     # default work_dirs/gpu_pylib
set -eu
PYTHON=${PYTHON:-.venv/bin/python}
DEST=${1:-work_dirs/gpu_pylib}
SITE=$("$PYTHON" -c 'import mmengine, os; print(os.path.dirname(os.path.dirname(mmengine.__file__)))')
PACKAGES="mmengine mmcv mmpretrain addict termcolor yapf yapf_third_party platformdirs mat4py
modelindex ordered_set importlib_metadata lazy_importer setuptools pkg_resources"
rm -rf "$DEST"
mkdir -p "$DEST"
cd "$SITE"
for name in $PACKAGES; do
    # the package and its metadata (mmengine resolves 'mmpretrain::' base configs through it)
    tar cf - --exclude='*.so' --exclude='__pycache__' --exclude='*.pyc' "$name" \
        $(ls -d "$name"-*.dist-info 2>/dev/null || true) | tar xf - -C "$OLDPWD/$DEST"
done
cd "$OLDPWD"
echo "make_gpu_pylib: $(du -sh "$DEST" | cut -f1) in $DEST"
