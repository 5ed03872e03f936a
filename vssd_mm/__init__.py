"""vssd_mm: the VSSD backbone as an OpenMMLab plugin.

``import vssd_mm`` (or ``custom_imports=dict(imports=['vssd_mm'])`` in a config) registers the
models with mmengine's registries. ``vssd_mm.ops`` needs only torch.
"""
from .version import __version__

from . import models  # noqa: E402,F401  (registration)

__all__ = ['__version__']
