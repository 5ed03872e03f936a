"""tools/export_onnx.py: the file of each demo config equals, in onnxruntime, what the config's own
library computes on a real image file read through the config's test pipeline (mmpretrain and
mmseg ``test_step``; mmdet's data preprocessor + ``extract_feat``), at sizes other than the
exported one; the data preprocessor's part of the file equals each library's preprocessor; the
tool's errors."""
import contextlib
import io

import cv2
import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from vssd_mm.analysis.model_builder import build_model
from vssd_mm.deploy.onnx_export import ImageToOutputs, ShapeGenericAdaptiveAvgPool2d
from vssd_mm.deploy.preprocessing import from_data_preprocessor, run_preprocessor
from vssd_mm.engine import load_config
from vssd_mm.engine.errors import ToolError

CONFIGS = {'cls': 'configs/mmpretrain/demo/vssd_t_demo.py',
           'seg': 'configs/mmseg/demo/upernet_vssd_t_demo.py',
           'det': 'configs/mmdet/demo/mask_rcnn_vssd_t_demo.py'}
# task: (the size exported at, the (height, width) of the image files written). The test
# pipelines make of them: cls 64 x 64 each (resize short side 73, centre crop 64; two images, a
# batch of 2); seg 192 x 250, unresized (short side 192 already), so test_step's logits, which
# mmseg resizes to the original image, are at the input's size; det 145 x 256 (resize to fit
# 256 x 192), which mmdet's preprocessor pads to 160 x 256 (pad_size_divisor 32).
EXPORTS = {'cls': ((96, 96), [(80, 100), (90, 70)]),
           'seg': ((64, 64), [(192, 250)]),
           'det': ((128, 128), [(170, 300)])}
# |onnxruntime - library| / max |library|: float32 rounding of the same computation in another
# runtime (measured <= 1.3e-6; the channels read in the other order: 3e-4 cls, 3e-2 seg)
TOLERANCE = 1e-5


@pytest.mark.parametrize('bins', [1, 2, 3, 6, (2, 5), (None, 3)])
@pytest.mark.parametrize('size', [(7, 9), (16, 16), (5, 13), (3, 2)])
def test_shape_generic_pooling_equals_adaptive_pooling(bins, size):
    x = torch.randn(2, 4, *size)
    torch.testing.assert_close(ShapeGenericAdaptiveAvgPool2d(bins)(x),
                               nn.AdaptiveAvgPool2d(bins)(x), rtol=1e-5, atol=1e-5)


def _preprocessors():
    from mmengine.model import ImgDataPreprocessor
    from mmpretrain.models import ClsDataPreprocessor
    from mmseg.models import SegDataPreProcessor
    from mmdet.models import DetDataPreprocessor
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    return {
        'mmdet bgr_to_rgb pad 32': DetDataPreprocessor(mean, std, bgr_to_rgb=True,
                                                       pad_size_divisor=32),
        'mmengine rgb_to_bgr pad 8 value 5': ImgDataPreprocessor(
            mean, std, rgb_to_bgr=True, pad_size_divisor=8, pad_value=5),
        'mmseg bgr_to_rgb': SegDataPreProcessor(mean, std, bgr_to_rgb=True, size=(128, 128)),
        'mmseg test_cfg size_divisor 16': SegDataPreProcessor(
            mean, std, bgr_to_rgb=True, pad_val=3, test_cfg=dict(size_divisor=16)),
        'mmseg no normalisation': SegDataPreProcessor(),
        'mmpretrain to_rgb': ClsDataPreprocessor(mean, std, to_rgb=True),
        'mmpretrain bgr, pad 4': ClsDataPreprocessor(mean, std, pad_size_divisor=4),
    }


@pytest.mark.parametrize('name', list(_preprocessors()))
def test_preprocessing_equals_the_library_preprocessor(name):
    """What the file does before the model equals each library's data preprocessor (test mode)
    on images of sizes that are and are not multiples of its padding divisor."""
    preprocessor = _preprocessors()[name]
    module = from_data_preprocessor(preprocessor)
    g = torch.Generator().manual_seed(1)
    for height, width in ((37, 50), (64, 48)):
        image = torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8)
        expected = run_preprocessor(preprocessor, image)
        with torch.no_grad():
            got = module(image[None].float())[0]
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-5)


def test_preprocessing_refuses_padding_to_a_fixed_size():
    from mmseg.models import SegDataPreProcessor
    with pytest.raises(ToolError, match='not to a multiple of .* not to a fixed size'):
        from_data_preprocessor(SegDataPreProcessor(test_cfg=dict(size=(40, 40))))


def _shallow_config(task, folder):
    """The demo config with one block per stage (VSSD-T's widths, so the same heads): every
    block exports alike, and the whole VSSD-T doubles the export's time."""
    from conftest import REPO
    config = folder / f'{task}_shallow.py'
    config.write_text(f"_base_ = '{REPO / CONFIGS[task]}'\n"
                      "model = dict(backbone=dict(arch=dict(_delete_=True, embed_dim=64, "
                      "depths=(1, 1, 1, 1), num_heads=(2, 4, 8, 16), d_state=64)))\n")
    return config


@pytest.fixture(scope='module', params=list(CONFIGS))
def exported(request, tmp_path_factory):
    """(task, config, model, the tool's stdout, onnxruntime session): the shallow demo config's
    model with seeded random weights, saved as a checkpoint and exported by the tool from it."""
    from conftest import tool_main
    task = request.param
    folder = tmp_path_factory.mktemp(f'onnx_{task}')
    config = _shallow_config(task, folder)
    torch.manual_seed(0)
    cfg = load_config(str(config))
    model, _ = build_model(cfg)
    checkpoint = folder / 'weights.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = folder / f'{task}.onnx'
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        tool_main('export_onnx.py')([str(config), str(checkpoint), '--out', str(out),
                                     '--shape', *map(str, EXPORTS[task][0])])
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    return task, cfg, model.eval(), stdout.getvalue(), session


def _batch_from_image_files(cfg, sizes, folder):
    """Demo scenes (uint8 BGR) written as PNG files, read through the config's test pipeline
    (without its annotation loaders, as mmseg's inferencer does) and collated as the test
    dataloader does: {'inputs': [(3, H, W) uint8], 'data_samples': [...]}."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import DefaultScope

    from vssd_mm.demo_data.shapes import random_scene
    rng = np.random.default_rng(0)
    items = []
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        pipeline = Compose([t for t in cfg.test_dataloader.dataset.pipeline
                            if 'Annotation' not in t['type']])
        for i, (height, width) in enumerate(sizes):
            image, _ = random_scene(rng, height, width, num_objects=(2, 4), radius=(8, 30))
            path = folder / f'image{i}.png'
            assert cv2.imwrite(str(path), image)
            items.append(pipeline(dict(img_path=str(path))))
    return pseudo_collate(items)


def _relative_error(got: np.ndarray, expected: torch.Tensor) -> float:
    expected = expected.detach().numpy()
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def test_onnx_file_equals_the_library_on_an_image_file(exported, tmp_path):
    """The file's input is the test pipeline's image (BGR, 0-255, unpadded); what is compared:
    - cls: log_softmax of the file's logits against the log of ``test_step``'s ``pred_score``
      (softmax of mmpretrain's logits): the logits, each image's shared constant aside;
    - seg: the file's ``seg_logits`` against ``test_step``'s ``seg_logits`` (the image's size is
      unchanged by the pipeline, so mmseg's resize to the original shape is the identity);
    - det: the file's features against mmdet's data preprocessor (BGR -> RGB, normalise, pad to
      a multiple of 32) + ``extract_feat``, the padded maps whole."""
    task, cfg, model, stdout, session = exported
    shape, sizes = EXPORTS[task]
    assert {'cls': '[logits]', 'seg': '[seg_logits]',
            'det': '[feat0, feat1, feat2, feat3, feat4]'}[task] in stdout
    check = next(line for line in stdout.splitlines() if line.startswith('onnxruntime vs'))
    assert float(check.rsplit(' ', 1)[1]) <= 1e-4

    data = _batch_from_image_files(cfg, sizes, tmp_path)
    image = torch.stack(data['inputs']).float()
    assert tuple(image.shape[2:]) != tuple(shape)  # a size the file was not traced at
    got = session.run(None, {'image': image.numpy()})
    with torch.no_grad():
        if task == 'det':
            expected = model.extract_feat(model.data_preprocessor(data, False)['inputs'])
            assert expected[0].shape[2] * 4 > image.shape[2]  # the library padded the input
        else:
            results = model.test_step(data)
    if task == 'cls':
        expected = [torch.stack([r.pred_score for r in results]).log()]
        got = [torch.from_numpy(got[0]).log_softmax(1).numpy()]
    elif task == 'seg':
        assert all(r.ori_shape == r.img_shape == tuple(image.shape[2:]) for r in results)
        expected = [torch.stack([r.seg_logits.data for r in results])]
    assert len(got) == len(expected)
    errors = [_relative_error(g, e) for g, e in zip(got, expected)]
    assert max(errors) <= TOLERANCE, errors


def test_segmentation_with_test_padding_equals_test_step(tmp_path):
    """An mmseg preprocessor that pads at test time (``test_cfg=dict(size_divisor=32)``): the
    export's graph, run eagerly (its ONNX fidelity is the test above's), pads 192 x 250 to
    192 x 256 and cuts the logits back as mmseg's ``test_step`` does; compared with
    ``test_step``'s ``seg_logits`` (at the original size: the pipeline does not resize this
    image)."""
    cfg = load_config(str(_shallow_config('seg', tmp_path)))
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=32)
    torch.manual_seed(0)
    model, scope = build_model(cfg)
    model.eval()
    data = _batch_from_image_files(cfg, EXPORTS['seg'][1], tmp_path)
    image = torch.stack(data['inputs']).float()
    assert image.shape[3] % 32 != 0
    with torch.no_grad():
        results = model.test_step(data)
        got = ImageToOutputs(model, scope)(image)
    assert list(results[0].img_padding_size) == [0, 256 - image.shape[3], 0, 0]
    assert all(r.ori_shape == tuple(image.shape[2:]) for r in results)
    expected = torch.stack([r.seg_logits.data for r in results])
    assert _relative_error(got.numpy(), expected) <= TOLERANCE


def test_segmentation_in_slide_mode_is_refused(tmp_path):
    cfg = load_config(str(_shallow_config('seg', tmp_path)))
    cfg.model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(32, 32))
    model, scope = build_model(cfg)
    with pytest.raises(ToolError, match="mode='slide'.*model.test_cfg.mode=whole"):
        ImageToOutputs(model, scope)


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


def test_tool_help_says_the_input_is_the_loaded_bgr_image(capsys):
    from conftest import tool_main
    with pytest.raises(SystemExit) as stop:
        tool_main('export_onnx.py')(['--help'])
    assert stop.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    assert ("the image as the config's test pipeline loads and resizes it" in text
            and 'BGR for OpenMMLab\'s LoadImageFromFile' in text)


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
