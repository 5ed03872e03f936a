"""Small deterministic datasets in the real formats, generated locally (nothing is downloaded)."""
from .coco import make_coco_demo
from .shapes import CLASS_NAMES

__all__ = ['CLASS_NAMES', 'make_coco_demo']
