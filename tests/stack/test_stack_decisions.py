"""vssd_mm.stack decides per installed OpenMMLab which compatibility measures apply. Each decision
is checked against what the installed library itself does, so the same tests hold on the upstream
releases and on the OneDL forks (CI runs them on both), and fail when a new version changes the
library's behaviour under a decision."""
import importlib
import os
import subprocess
import sys
import textwrap
from importlib.metadata import distribution

import numpy as np
import pytest
import torch

from vssd_mm import stack

MODULES = sorted(stack.DISTRIBUTIONS)


@pytest.mark.parametrize('module', MODULES)
def test_the_reported_distribution_is_the_one_that_installed_the_module(module):
    found = stack.installed(module)
    assert found is not None
    package = importlib.import_module(module)
    init = os.path.realpath(package.__file__)
    owned = {os.path.realpath(distribution(found.name).locate_file(f))
             for f in distribution(found.name).files or []}
    assert init in owned, f'{found.name} does not own {init}'
    assert distribution(found.name).version == found.version


def test_a_clean_venv_has_no_mixed_module_and_a_mixed_one_is_named(tmp_path, monkeypatch):
    assert stack.mixed_modules() == []
    # a stand-in record of the other stack's mmdet distribution, as pip would leave it
    installed = stack.installed('mmdet')
    other = [name for name in stack.DISTRIBUTIONS['mmdet'] if name != installed.name][0]
    record = tmp_path / f'{other.replace("-", "_")}-9.9.9.dist-info'
    record.mkdir()
    (record / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {other}\nVersion: 9.9.9\n')
    monkeypatch.syspath_prepend(str(tmp_path))  # importlib.metadata reads sys.path when asked
    with pytest.warns(UserWarning, match='overwrite each other') as caught:
        stack.warn_if_mixed()  # what `import vssd_mm` calls
    message = str(caught[0].message)
    assert f'{other} 9.9.9' in message and f'{installed.name} {installed.version}' in message


def _training_checkpoint(path):
    """A file as mmengine's Runner writes it: weights and the message hub's training state."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('stack_decision_test')
    hub.update_scalar('train/loss', np.float64(0.5))
    torch.save({'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict(),
                'meta': {'epoch': np.int64(3)}}, path)


def test_mmengine_loads_its_training_state_itself_exactly_where_we_do_not_help(tmp_path):
    """Upstream mmengine's own loader refuses a training checkpoint under torch >= 2.6 (we
    allow-list); onedl-mmengine's loads it with its own allow-list, not through its unsafe
    fallback (we stay out of its way)."""
    from mmengine.logging import MMLogger
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'epoch_3.pth'
    _training_checkpoint(path)
    logged = []
    logger = MMLogger.get_current_instance()
    logger.addFilter(lambda record: logged.append(record.getMessage()) or True)
    try:
        checkpoint = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
        loads = True
    except Exception as err:  # upstream: pickle.UnpicklingError from torch's weights-only load
        assert 'Weights only load failed' in str(err), err
        loads = False
    assert not any('Falling back to weights_only=False' in m for m in logged), logged
    assert loads == stack.mmengine_loads_training_state()
    if loads:
        assert torch.equal(checkpoint['state_dict']['w'], torch.ones(2))
    # and the Runner's context serves the load on either stack
    with stack.runner_load_context():
        checkpoint = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert checkpoint['meta']['epoch'] == 3


def test_mmengine_needs_pkg_resources_exactly_where_we_filter_its_warning():
    code = textwrap.dedent('''\
        import sys
        sys.modules['pkg_resources'] = None  # as under setuptools >= 81
        from mmengine.utils import is_installed
        try:
            print(is_installed('mmdet'))
        except ImportError:
            print('needs pkg_resources')
        ''')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    needs = proc.stdout.strip().splitlines()[-1] == 'needs pkg_resources'
    assert needs == stack.mmengine_imports_pkg_resources(), proc.stdout + proc.stderr


def test_mmdet_tta_still_refuses_instance_masks_so_our_tta_model_is_needed():
    from mmdet.models.test_time_augs import DetTTAModel
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    views = []
    for flip in (False, True):
        sample = DetDataSample(metainfo=dict(img_shape=(8, 8), ori_shape=(8, 8), flip=flip,
                                             flip_direction='horizontal' if flip else None))
        sample.pred_instances = InstanceData(bboxes=torch.tensor([[1., 1., 4., 4.]]),
                                             scores=torch.tensor([0.9]),
                                             labels=torch.tensor([0]),
                                             masks=torch.zeros(1, 8, 8, dtype=torch.bool))
        views.append(sample)
    class Detector(torch.nn.Module):
        def test_step(self, data):
            return data

    tta = DetTTAModel(module=Detector(),
                      tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
    with pytest.raises(AssertionError, match='instance segmentation does not support'):
        tta._merge_single_sample(views)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU refusal is what is checked')
def test_mmengine_amp_still_refuses_the_cpu_so_our_runner_says_so_first():
    from mmengine.optim import AmpOptimWrapper
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(AssertionError, match='only available training on gpu'):
        AmpOptimWrapper(optimizer=optimizer)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU failure is what is checked')
def test_mmengine_pytorch_launcher_still_needs_a_gpu_so_we_start_gloo_ourselves(monkeypatch):
    from mmengine.dist import init_dist
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT='29591').items():
        monkeypatch.setenv(key, value)
    # torch.cuda.set_device on a machine without a GPU (or a CPU-only torch build)
    with pytest.raises((RuntimeError, AssertionError), match='NVIDIA|CUDA|cuda'):
        init_dist('pytorch', backend='gloo')
    assert not torch.distributed.is_initialized()


def test_mmseg_config_bases_resolve_after_import_and_were_fixed_only_where_broken():
    """mmengine's own Config.fromfile on a config with an ``mmseg::`` base, in a fresh process:
    before ``import vssd_mm`` it fails exactly where our fix applies (the forks), after it works
    on either stack."""
    code = textwrap.dedent('''\
        from mmengine.config import Config
        from mmengine.config.utils import MODULE2PACKAGE
        base = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'
        import tempfile, os
        path = os.path.join(tempfile.mkdtemp(), 'cfg.py')
        open(path, 'w').write(f"_base_ = ['{base}']\\n")
        try:
            Config.fromfile(path)
            print('before: resolves')
        except ModuleNotFoundError:
            print('before: fails')
        import vssd_mm
        print('fixed' if MODULE2PACKAGE['mmseg'] != 'mmsegmentation' else 'untouched')
        print(Config.fromfile(path).model.decode_head.type)
        ''')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, action, head = proc.stdout.strip().splitlines()[-3:]
    assert (before == 'before: fails') == (action == 'fixed'), proc.stdout
    assert head == 'UPerHead'


def test_importing_vssd_mm_prints_nothing():
    """The decisions are taken at import without asking mmengine anything that warns (upstream
    mmengine's is_installed imports pkg_resources: a warning before any tool could filter it)."""
    proc = subprocess.run([sys.executable, '-c', 'import vssd_mm'], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr[-2000:]
