"""Data loading for our configs; importing this registers the transforms (needs mmdet)."""
from .coco_annotations import LoadCocoAnnotations

__all__ = ['LoadCocoAnnotations']
