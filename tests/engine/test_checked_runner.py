"""The Runner the tools build: mmengine's (or the config's own ``runner_type``) with checked
checkpoint loading, as a subclass rather than patched methods."""
import sys

import pytest
import torch

from conftest import FIXTURES


def _toy_config(tmp_path, **changes):
    from mmengine.config import Config
    cfg = Config.fromfile(str(FIXTURES / 'toy_regression_config.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'checked_runner_{tmp_path.name}'  # one logger per runner
    cfg.merge_from_dict(changes)
    return cfg


def test_the_runner_class_of_a_config():
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from vssd_mm.engine.checked_runner import CheckedLoading, CheckedRunner, checked_runner_class
    assert checked_runner_class(None) is CheckedRunner
    assert checked_runner_class('Runner') is CheckedRunner

    @RUNNERS.register_module(name='_OwnRunnerOfATest', force=True)
    class OwnRunner(Runner):
        pass
    checked = checked_runner_class('_OwnRunnerOfATest')
    assert issubclass(checked, OwnRunner) and checked.__mro__[1] is CheckedLoading
    assert checked_runner_class(checked) is checked
    with pytest.raises(KeyError, match="'NoSuchRunner' is not a registered Runner"):
        checked_runner_class('NoSuchRunner')


@pytest.mark.parametrize('runner_type', [None, '_OwnRunnerOfATest2'])
def test_a_checkpoint_of_another_model_stops_resume_and_strict_load(tmp_path, monkeypatch,
                                                                       runner_type):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from vssd_mm.engine import build_runner
    from vssd_mm.models.checkpoints import CheckpointMismatchError
    monkeypatch.syspath_prepend(str(FIXTURES))
    RUNNERS.register_module(name='_OwnRunnerOfATest2', force=True,
                            module=type('OwnRunner2', (Runner, ), {}))
    cfg = _toy_config(tmp_path, **({'runner_type': runner_type} if runner_type else {}))
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'linear.weight': torch.zeros(3, 3)}}, other)
    runner = build_runner(cfg, strict_load_from=True)
    assert runner.strict_load_from and type(runner).__name__.startswith('Checked')
    for load in (runner.resume, runner.load_checkpoint):
        with pytest.raises(CheckpointMismatchError, match='other.pth does not fit the model of'):
            load(str(other))
    lenient = build_runner(_toy_config(tmp_path / 'b'))
    assert not lenient.strict_load_from and 'toy_regression' in sys.modules
