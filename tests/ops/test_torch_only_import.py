"""vssd_mm.ops works where only torch is installed (e.g. a bare GPU machine)."""
import subprocess
import sys


def test_ops_import_and_run_without_mm_packages():
    code = '\n'.join([
        'import sys',
        'for name in ("mmengine", "mmcv", "mmdet", "mmseg", "mmpretrain"):',
        '    sys.modules[name] = None  # any import of them now fails',
        'import torch',
        'from vssd_mm.ops import nc_ssd',
        'x = torch.randn(1, 5, 2, 4); B = torch.randn(1, 5, 3)',
        'print(nc_ssd(x, torch.rand(1, 5, 2), B, B, torch.ones(2)).shape)',
    ])
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'torch.Size([1, 5, 2, 4])'
