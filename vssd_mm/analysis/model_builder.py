"""Build the model of an mmdet / mmseg / mmpretrain config for analysis (get_flops, ONNX export,
the ERF tool)."""
import contextlib
import logging
from typing import Tuple

from mmengine.config import Config
from torch import nn


def build_model(cfg: Config, pretrained: bool = False) -> Tuple[nn.Module, str]:
    """``cfg.model`` built in the config's registry scope; returns (model, scope).

    The scope is set only while building: the process's default scope is left as it was (a
    caller building models of several libraries in one process gets each from its own registry).
    With ``pretrained=False`` the backbone's ``init_cfg`` checkpoint is not read (analysis needs
    the architecture, not the weights).
    """
    from mmengine.registry import MODELS, DefaultScope
    scope = cfg.get('default_scope', 'mmengine')
    model_cfg = cfg.model.copy()
    if not pretrained and model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor'):
        model_cfg.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
        with mmengine_warnings_only():
            model.init_weights()
    return model, scope


@contextlib.contextmanager
def mmengine_warnings_only():
    """Hold back mmengine's INFO reports (``init_weights`` per parameter, optimizer
    ``paramwise_options`` per parameter), which go to the console when no Runner log file takes
    them: over 1000 lines for VSSD-T in front of a tool's table."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)

