from .vssd import ARCH_SETTINGS, VSSD

__all__ = ['ARCH_SETTINGS', 'VSSD']
