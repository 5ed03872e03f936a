"""The pinned OpenMMLab stack imports and resolves its packaged configs on current torch."""
import pytest
import torch
from packaging.version import Version


def test_versions_are_the_pinned_ones():
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    import mmseg
    assert Version(torch.__version__).release[:2] >= (2, 6)  # the weights_only-by-default era
    assert mmcv.__version__ == '2.1.0'
    assert (mmengine.__version__, mmdet.__version__, mmseg.__version__, mmpretrain.__version__) \
        == ('0.10.7', '3.3.0', '1.2.2', '1.2.0')


@pytest.mark.parametrize('module', ['mmdet.models', 'mmdet.datasets', 'mmdet.evaluation',
                                    'mmseg.models', 'mmseg.datasets', 'mmseg.evaluation',
                                    'mmpretrain.models', 'mmpretrain.datasets'])
def test_library_modules_import(module):
    # the registries import these lazily; a missing run-time dependency (mmseg needs ftfy and
    # regex without declaring them) would only show when a config is built
    import importlib
    importlib.import_module(module)


def test_mmcv_has_compiled_ops():
    from mmcv.utils import ext_loader
    ext = ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
    assert callable(ext.nms) and callable(ext.roi_align_forward)


@pytest.mark.parametrize('base, model_type', [
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'MaskRCNN'),
    ('mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py', 'EncoderDecoder'),
    ('mmpretrain::resnet/resnet18_8xb32_in1k.py', 'ImageClassifier'),
])
def test_packaged_config_bases_resolve(tmp_path, base, model_type):
    # `mmdet::` etc. go through pkg_resources: this breaks with setuptools >= 81
    from mmengine.config import Config
    cfg_file = tmp_path / 'child.py'
    cfg_file.write_text(f"_base_ = ['{base}']\n")
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == model_type


def test_setuptools_keeps_pkg_resources():
    import setuptools
    assert Version('77.0.3') <= Version(setuptools.__version__) < Version('81')
