"""Operators of vssd_mm. Importable with torch alone (no mm* packages)."""
from .nc_ssd import nc_ssd, nc_ssd_reference

__all__ = ['nc_ssd', 'nc_ssd_reference']
