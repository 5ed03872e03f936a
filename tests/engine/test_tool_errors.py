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
