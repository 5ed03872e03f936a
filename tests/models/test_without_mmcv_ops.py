"""``import vssd_mm`` and the mmpretrain classifier work with an mmcv built without its compiled
ops (mmcv-lite, ``MMCV_WITH_OPS=0``): only detection needs them."""
import subprocess
import sys

from conftest import REPO


def test_classifier_builds_and_runs_without_mmcv_ops():
    code = '\n'.join([
        'import sys',
        "sys.modules['mmcv._ext'] = None  # as if mmcv had been built without ops",
        'import torch',
        'import vssd_mm',
        'from vssd_mm.analysis.model_builder import build_model',
        'from vssd_mm.engine import load_config',
        "cfg = load_config('configs/mmpretrain/vssd_m_8xb128_in1k.py', None)",
        'model, _ = build_model(cfg)',
        'print(tuple(model(torch.randn(1, 3, 64, 64)).shape))',
    ])
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '(1, 1000)'
