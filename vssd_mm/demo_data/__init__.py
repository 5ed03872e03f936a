"""Small deterministic datasets in the real formats, generated locally (nothing is downloaded)."""
from .ade import SEG_CLASSES, make_ade_demo
from .coco import make_coco_demo
from .imagefolder import make_imagefolder_demo
from .shapes import CLASS_NAMES

__all__ = ['CLASS_NAMES', 'SEG_CLASSES', 'make_ade_demo', 'make_coco_demo',
           'make_imagefolder_demo']
