"""Data loading for our detection configs; importing this registers the transforms (needs mmdet
with mmcv's ops, so ``import vssd_mm`` leaves it to the configs' ``custom_imports``)."""
from .coco_annotations import LoadCocoAnnotations

__all__ = ['LoadCocoAnnotations']
