"""The pinned OpenMMLab stack (the releases or the OneDL forks, whichever the venv holds) imports
and resolves its packaged configs on current torch."""
import importlib

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import REPO
from vssd_mm import stack


def test_versions_are_the_pinned_ones():
    fork = stack.installed('mmengine').fork
    pins = (REPO / 'requirements' / ('stack-onedl.txt' if fork else 'stack.txt')).read_text()
    pinned = {req.name: next(spec.version for spec in req.specifier if spec.operator == '==')
              for req in map(Requirement, (line for line in pins.splitlines()
                                           if line.strip() and not line.startswith('#')))
              if any(spec.operator == '==' for spec in req.specifier)}
    assert Version(torch.__version__).release[:2] >= (2, 6)  # the weights_only-by-default era
    for module in stack.DISTRIBUTIONS:
        found = stack.installed(module)
        assert found.fork == fork, f'{found.name} in a venv of the other stack'
        # the module's own version attribute, not only the distribution's record
        assert importlib.import_module(module).__version__ == pinned[found.name], found


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
    # upstream mmengine: `mmdet::` etc. go through pkg_resources (breaks with setuptools >= 81);
    # onedl-mmengine misses `mmseg::` unless vssd_mm was imported (vssd_mm.stack), as our tools do
    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    cfg_file = tmp_path / 'child.py'
    cfg_file.write_text(f"_base_ = ['{base}']\n")
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == model_type


def test_setuptools_keeps_pkg_resources_where_mmengine_needs_it():
    import setuptools
    assert Version('77.0.3') <= Version(setuptools.__version__)  # torch 2.13's floor
    if stack.mmengine_imports_pkg_resources():
        assert Version(setuptools.__version__) < Version('81')
