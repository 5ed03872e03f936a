"""Test-time-augmentation models (``tta_model`` in configs, used by ``tools/test.py --tta``)."""
from .instance_seg_tta import InstanceSegTTAModel

__all__ = ['InstanceSegTTAModel']
