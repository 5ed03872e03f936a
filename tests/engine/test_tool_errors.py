"""Bad invocations of the shared tools end with a clear message, not a trace."""
import pytest
import torch

from conftest import FIXTURES

CONFIG = FIXTURES / 'toy_regression_config.py'


@pytest.mark.skipif(torch.cuda.is_available(), reason='the message is for machines without CUDA')
def test_amp_without_cuda_is_a_clear_error(tool, tmp_path):
    proc = tool('train.py', CONFIG, '--amp', '--work-dir', tmp_path, check=False)
    assert proc.returncode != 0
    assert '--amp needs a CUDA GPU' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.parametrize('args, message', [
    (['--resume', 'no/such/epoch_3.pth'], '--resume checkpoint not found: no/such/epoch_3.pth'),
    (['--auto-scale-lr'], '--auto-scale-lr needs `auto_scale_lr'),
])
def test_train_flag_errors(tool, tmp_path, args, message):
    proc = tool('train.py', CONFIG, '--work-dir', tmp_path, *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr and 'Traceback' not in proc.stderr


def test_missing_checkpoint_for_test_tool(tool, tmp_path):
    proc = tool('test.py', CONFIG, tmp_path / 'missing.pth', check=False)
    assert proc.returncode != 0 and 'checkpoint not found' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_config_is_a_clear_error(tool, tmp_path):
    proc = tool('train.py', tmp_path / 'no_such_config.py', check=False)
    assert proc.returncode != 0 and 'config file not found' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_coco_shows_the_layout_and_the_demo(tool, tmp_path):
    """A real config run where there is no data/coco: the layout and the way out, no trace."""
    config = FIXTURES.parent.parent / 'configs' / 'mmdet' / 'mask_rcnn_vssd_t_1x.py'
    proc = tool('train.py', config, '--work-dir', tmp_path / 'work', cwd=tmp_path, check=False)
    err = proc.stderr
    assert proc.returncode != 0 and 'Traceback' not in err, err[-2000:]
    assert 'train_dataloader: CocoDataset data not found' in err
    assert 'data/coco/annotations/instances_train2017.json does not exist' in err
    assert 'data/coco/train2017/' in err and 'make demo' in err
    assert not (tmp_path / 'work').exists()  # nothing was started


def _real_config(name='mask_rcnn_vssd_m_1x.py'):
    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    return Config.fromfile(str(FIXTURES.parent.parent / 'configs' / 'mmdet' / name))


def test_missing_pretrained_weights_say_where_to_get_them(tmp_path):
    from vssd_mm.engine import ToolError
    from vssd_mm.engine.preflight import check_pretrained
    cfg = _real_config()
    cfg.model.backbone.init_cfg.checkpoint = 'checkpoints/vssd_micro_best.pth'  # a local copy
    with pytest.raises(ToolError) as err:
        check_pretrained(cfg)
    msg = str(err.value)
    assert 'pretrained weights not found: checkpoints/vssd_micro_best.pth' in msg
    assert 'huggingface.co/YuhengSSS/VSSD' in msg
    assert '--cfg-options model.backbone.init_cfg=None' in msg
    ckpt = tmp_path / 'w.pth'
    ckpt.write_bytes(b'')
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    check_pretrained(cfg)  # present: no error
    cfg.model.backbone.init_cfg = None
    check_pretrained(cfg)


def test_init_cfg_none_from_the_command_line_disables_pretraining():
    from mmengine.config import DictAction
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', 'model.backbone.init_cfg=None']).cfg_options
    cfg = _real_config()
    cfg.merge_from_dict(options)
    assert cfg.model.backbone.init_cfg is None


@pytest.mark.parametrize('change, flag, message', [
    (lambda cfg: cfg.pop('tta_model'), dict(tta=True), '--tta needs tta_model'),
    (lambda cfg: None, dict(out='preds.json'), '--out preds.json must end in .pkl or .pickle'),
    (lambda cfg: cfg.default_hooks.pop('visualization'), dict(show_dir='vis'),
     'need a visualization hook'),
])
def test_test_flag_errors(tmp_path, change, flag, message):
    from vssd_mm.engine import ToolError, prepare_test_config
    cfg = _real_config()
    for loader in ('test_dataloader',):
        cfg[loader].dataset.data_root = str(tmp_path) + '/'
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'instances_val2017.json').write_text('{}')
    (tmp_path / 'val2017').mkdir()
    ckpt = tmp_path / 'c.pth'
    torch.save({'state_dict': {}}, ckpt)
    change(cfg)
    with pytest.raises(ToolError, match=message):
        prepare_test_config(cfg, 'x.py', str(ckpt), data_check=False, **flag)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the message is for machines without CUDA')
def test_distributed_launcher_outside_torchrun_is_a_clear_error(tool, tmp_path):
    proc = tool('train.py', CONFIG, '--work-dir', tmp_path, '--launcher', 'pytorch', check=False)
    assert proc.returncode != 0 and 'started by torchrun' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = tool('train.py', CONFIG, '--work-dir', tmp_path, '--launcher', 'slurm', check=False)
    assert proc.returncode != 0 and 'started by srun' in proc.stderr
    assert 'tools/slurm_train.sh' in proc.stderr and 'Traceback' not in proc.stderr


def test_missing_ade20k_shows_the_layout_and_the_demo(tmp_path, monkeypatch):
    import vssd_mm  # noqa: F401
    from mmengine.config import Config

    from vssd_mm.engine import ToolError
    from vssd_mm.engine.preflight import check_datasets
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(str(FIXTURES.parent.parent / 'configs' / 'mmseg' /
                              'upernet_vssd_t_512x512_160k_ade20k.py'))
    with pytest.raises(ToolError) as err:
        check_datasets(cfg, ['train_dataloader', 'val_dataloader'])
    msg = str(err.value)
    assert 'train_dataloader: ADE20KDataset data not found' in msg
    assert 'data/ade/ADEChallengeData2016/images/training does not exist' in msg
    assert 'annotations/validation/*.png' in msg and 'make_demo_data.py ade' in msg
