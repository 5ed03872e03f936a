"""tools/export_onnx.py: what each config builds, exported with dynamic batch and H x W through
torch's default exporter, equal in onnxruntime to eager PyTorch at sizes other than the traced
one; its errors."""
import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from vssd_mm.analysis.model_builder import build_model
from vssd_mm.deploy.onnx_export import (ImageToOutputs, ShapeGenericAdaptiveAvgPool2d,
                                        example_image)
from vssd_mm.engine import load_config

CONFIGS = {'cls': 'configs/mmpretrain/demo/vssd_t_demo.py',
           'seg': 'configs/mmseg/demo/upernet_vssd_t_demo.py',
           'det': 'configs/mmdet/demo/mask_rcnn_vssd_t_demo.py'}


@pytest.mark.parametrize('bins', [1, 2, 3, 6, (2, 5), (None, 3)])
@pytest.mark.parametrize('size', [(7, 9), (16, 16), (5, 13), (3, 2)])
def test_shape_generic_pooling_equals_adaptive_pooling(bins, size):
    x = torch.randn(2, 4, *size)
    torch.testing.assert_close(ShapeGenericAdaptiveAvgPool2d(bins)(x),
                               nn.AdaptiveAvgPool2d(bins)(x), rtol=1e-5, atol=1e-5)


def _model_with_checkpoint(config, tmp_path):
    torch.manual_seed(0)
    cfg = load_config(str(config))
    model, scope = build_model(cfg)
    path = tmp_path / 'weights.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return model.eval(), scope, path


@pytest.mark.parametrize('task, shape, sizes', [
    ('cls', (96, 96), [(1, 96, 128), (3, 160, 64)]),
    ('seg', (64, 64), [(1, 96, 128), (2, 64, 160)]),
    ('det', (128, 128), [(1, 160, 192), (2, 128, 224)]),
])
def test_tool_exports_and_onnxruntime_matches_eager(task, shape, sizes, tool, tmp_path):
    from conftest import REPO

    # the demo config with one block per stage (VSSD-T's widths, so the same heads): every block
    # exports alike, and the whole VSSD-T doubles the test's time (50-64 s instead of 26-36 s)
    config = tmp_path / f'{task}_shallow.py'
    config.write_text(f"_base_ = '{REPO / CONFIGS[task]}'\n"
                      "model = dict(backbone=dict(arch=dict(_delete_=True, embed_dim=64, "
                      "depths=(1, 1, 1, 1), num_heads=(2, 4, 8, 16), d_state=64)))\n")
    model, scope, checkpoint = _model_with_checkpoint(config, tmp_path)
    out = tmp_path / f'{task}.onnx'
    stdout = tool('export_onnx.py', config, checkpoint, '--out', out, '--shape', *shape).stdout
    written = next(line for line in stdout.splitlines() if line.startswith('written: '))
    assert {'cls': '[logits]', 'seg': '[seg_logits]',
            'det': '[feat0, feat1, feat2, feat3, feat4]'}[task] in written
    check = next(line for line in stdout.splitlines() if line.startswith('onnxruntime vs'))
    assert float(check.rsplit(' ', 1)[1]) <= 1e-4

    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    module = ImageToOutputs(model, scope)
    for batch, height, width in sizes:
        image = example_image(batch, height, width, seed=height)
        got = session.run(None, {'image': image.numpy()})
        with torch.no_grad():
            expected = module(image)
        expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == tuple(e.shape)
            assert np.abs(g - e.numpy()).max() / np.abs(e.numpy()).max() <= 1e-4


def test_tool_refuses_to_overwrite_and_sizes_out_of_range(tool, tmp_path):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'keep me')
    proc = tool('export_onnx.py', CONFIGS['cls'], '--out', out, check=False)
    assert proc.returncode == 2 and 'exists; pass --force' in proc.stderr
    assert out.read_bytes() == b'keep me'
    proc = tool('export_onnx.py', CONFIGS['det'], '--out', tmp_path / 'det.onnx', '--shape',
                '96', '96', check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: --shape must be within [128, 2048] for a mmdet config, got [96, 96]')
    assert not (tmp_path / 'det.onnx').exists()


def test_tool_names_the_missing_extra(monkeypatch, tmp_path, capsys):
    import importlib.util
    import sys
    from conftest import REPO
    spec = importlib.util.spec_from_file_location('export_onnx', REPO / 'tools/export_onnx.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, 'onnxscript', None)
    with pytest.raises(SystemExit, match=r'needs the deploy extra \(onnxscript is missing\): '
                                         r'pip install -e "\.\[deploy\]"'):
        module.main([str(REPO / CONFIGS['cls']), '--out', str(tmp_path / 'x.onnx')])


@pytest.mark.parametrize('what', ['backbone', 'classifier'])
def test_plain_torch_onnx_export_works_without_our_tool(what, tmp_path):
    """A user's own ``torch.onnx.export(..., dynamo=True)`` with dynamic H x W, no translation
    table: the VSSD backbone and an mmpretrain VSSD classifier, equal in onnxruntime to eager at
    two sizes they were not exported at."""
    import vssd_mm  # noqa: F401
    from mmpretrain.registry import MODELS

    from vssd_mm.models import VSSD
    torch.manual_seed(0)
    arch = dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), d_state=16)
    if what == 'backbone':
        model = VSSD(arch, out_indices=(0, 1, 2, 3))
    else:
        model = MODELS.build(dict(
            type='ImageClassifier', backbone=dict(type='VSSD', arch=arch, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=5, in_channels=256)))
    model.eval()
    dims = {0: torch.export.Dim('batch', min=1, max=64),
            2: torch.export.Dim('height', min=64, max=1024),
            3: torch.export.Dim('width', min=64, max=1024)}
    out = tmp_path / f'{what}.onnx'
    torch.onnx.export(model, (torch.randn(2, 3, 96, 128), ), dynamo=True,
                      dynamic_shapes=(dims, )).save(str(out))
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    for shape in ((1, 3, 64, 160), (2, 3, 128, 96)):
        image = torch.randn(shape)
        with torch.no_grad():
            expected = model(image)
        expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        got = session.run(None, {session.get_inputs()[0].name: image.numpy()})
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            e = e.numpy()
            assert g.shape == e.shape
            assert np.abs(g - e).max() <= 1e-4 * np.abs(e).max()
