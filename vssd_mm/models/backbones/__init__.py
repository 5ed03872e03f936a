from ...variants import ARCH_SETTINGS
from .vssd import VSSD

__all__ = ['ARCH_SETTINGS', 'VSSD']
