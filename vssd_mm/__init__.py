"""vssd_mm: the VSSD backbone as an OpenMMLab plugin.

``import vssd_mm`` (or ``custom_imports=dict(imports=['vssd_mm'])`` in a config) registers the
models with mmengine's registries. ``vssd_mm.ops`` needs only torch: on a machine without
mmengine/mmcv (a bare GPU box running the op benchmark) the models are not registered, the ops work.
"""
from importlib.util import find_spec

from .version import __version__

if find_spec('mmengine') is not None and find_spec('mmcv') is not None:
    from .stack import let_mmengine_find_mmseg_configs, warn_if_mixed
    warn_if_mixed()  # an OpenMMLab release and its OneDL fork overwriting each other's files
    let_mmengine_find_mmseg_configs()  # `mmseg::` bases on the OneDL forks
    from . import models  # noqa: F401  (registration)
    from .models.model_hub import register_with_mmpretrain
    register_with_mmpretrain()  # mmpretrain's list_models / get_model know the VSSD classifiers

__all__ = ['__version__']
