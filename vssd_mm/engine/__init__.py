"""Building mmengine Runners for the shared train/test tools (any of mmdet, mmseg, mmpretrain)."""
from .runner import (build_runner, load_config, prepare_test_config, prepare_train_config,
                     run_or_exit)

__all__ = ['build_runner', 'load_config', 'prepare_test_config', 'prepare_train_config',
           'run_or_exit']
