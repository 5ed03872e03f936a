"""Models; importing this registers them in mmengine's root MODELS registry, which the MODELS
registries of mmdet, mmseg and mmpretrain consult as their parent."""
from . import mesa  # noqa: F401  (registers MESAClassifier, MESAHook)
from .backbones import VSSD
from .tta import InstanceSegTTAModel

__all__ = ['InstanceSegTTAModel', 'VSSD']
