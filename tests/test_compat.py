"""vssd_mm.compat: mmengine checkpoints under torch >= 2.6's weights-only loading."""
import pickle
import shutil

import pytest
import torch

from conftest import FIXTURES
from vssd_mm.compat import _history_buffer_getattr, allow_mmengine_training_state

CONFIG = FIXTURES / 'toy_regression_config.py'


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    """A work dir after 2 epochs of the toy config through tools/train.py."""
    from conftest import run_tool
    work_dir = tmp_path_factory.mktemp('toy_train')
    run_tool('train.py', CONFIG, '--work-dir', work_dir)
    assert (work_dir / 'epoch_2.pth').is_file()
    return work_dir


def test_plain_weights_only_load_refuses_mmengine_checkpoint(trained_work_dir):
    # the failure the compat module exists for: torch 2.13's default rejects mmengine's training state
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer|getattr|numpy'):
        torch.load(trained_work_dir / 'epoch_2.pth')


def test_allow_list_loads_training_state(trained_work_dir):
    from mmengine.logging import HistoryBuffer
    with allow_mmengine_training_state():
        ckpt = torch.load(trained_work_dir / 'epoch_2.pth')
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 8
    assert 'state' in ckpt['optimizer'] and ckpt['optimizer']['state']
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and loss.current() >= 0
    # the context is scoped: afterwards the default refuses again
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trained_work_dir / 'epoch_2.pth')


class _SneakyGetattr:
    """Pickles as getattr(HistoryBuffer, '__init__'): not a statistics method."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    import builtins
    from mmengine.logging import HistoryBuffer
    assert _history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        _history_buffer_getattr(builtins, 'eval')
    path = tmp_path / 'sneaky.pth'
    torch.save({'x': _SneakyGetattr()}, path)
    with allow_mmengine_training_state(), pytest.raises(pickle.UnpicklingError,
                                                        match='refusing getattr'):
        torch.load(path)


def test_resume_auto_and_from_path(trained_work_dir, tmp_path, tool):
    # --resume (auto): continues after epoch 2 instead of starting again
    auto_dir = tmp_path / 'auto'
    shutil.copytree(trained_work_dir, auto_dir)
    proc = tool('train.py', CONFIG, '--work-dir', auto_dir, '--resume',
                '--cfg-options', 'train_cfg.max_epochs=3')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in log and 'Epoch(train) [3]' in log
    assert 'Epoch(train) [1]' not in log
    with allow_mmengine_training_state():
        ckpt = torch.load(auto_dir / 'epoch_3.pth')
    assert ckpt['meta']['epoch'] == 3 and ckpt['meta']['iter'] == 12
    # the param scheduler's state came back too: MultiStepLR halved lr once at epoch 1
    assert ckpt['optimizer']['param_groups'][0]['lr'] == pytest.approx(0.025)

    # --resume PATH: continues from that file, into a fresh work dir
    path_dir = tmp_path / 'from_path'
    proc = tool('train.py', CONFIG, '--work-dir', path_dir, '--resume',
                trained_work_dir / 'epoch_1.pth')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1' in log and 'Epoch(train) [2]' in log and 'Epoch(train) [1]' not in log
    assert (path_dir / 'epoch_2.pth').is_file() and not (path_dir / 'epoch_1.pth').exists()


def test_test_tool_evaluates_checkpoint(trained_work_dir, tmp_path, tool):
    proc = tool('test.py', CONFIG, trained_work_dir / 'epoch_2.pth', '--work-dir', tmp_path)
    log = proc.stdout + proc.stderr
    assert 'Load checkpoint from' in log and 'mse:' in log
