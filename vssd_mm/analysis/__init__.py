"""Model analysis shared by the tools (parameter counts, feature shapes, timing)."""
from .backbone_summary import summarize_backbone

__all__ = ['summarize_backbone']
