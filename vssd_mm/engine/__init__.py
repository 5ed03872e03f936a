"""Building mmengine Runners for the shared train/test tools (any of mmdet, mmseg, mmpretrain).
Library code here raises typed errors (``errors.TOOL_ERRORS``); the tools turn them into one
``error:`` line with ``exit_on_error``."""
from .errors import TOOL_ERRORS, ToolError, exit_on_error
from .runner import build_runner, load_config, prepare_test_config, prepare_train_config

__all__ = ['TOOL_ERRORS', 'ToolError', 'build_runner', 'exit_on_error', 'load_config',
           'prepare_test_config', 'prepare_train_config']
