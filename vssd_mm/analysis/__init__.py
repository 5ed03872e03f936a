"""Model analysis behind tools/get_flops.py (and the other analysis tools)."""
from .flops import count_flops, nc_ssd_flops

__all__ = ['count_flops', 'nc_ssd_flops']
