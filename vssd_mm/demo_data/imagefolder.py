"""ImageNet-style (ImageFolder) classification demo data::

    OUT/train/<class>/<class>_0001.JPEG ...     OUT/val/<class>/...

One large shape per image on a textured background; the class is the shape (``CLASS_NAMES``),
its colour is random, so the model has to learn the outline. Read by mmpretrain's
``CustomDataset`` (folder mode) or ``ImageNet`` with the same layout.
"""
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from .shapes import CLASS_NAMES, background, outline, fill_polygon
from .writer import write_train_val

SPLITS = ('train', 'val')


def _write_split(out: Path, split: str, per_class: int, image_size: Tuple[int, int],
                 seed: int) -> None:
    rng = np.random.default_rng([seed, SPLITS.index(split), 11])
    height, width = image_size
    for label, name in enumerate(CLASS_NAMES):
        folder = out / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            image = background(rng, height, width)
            r = rng.uniform(0.25, 0.4) * min(height, width)
            cx = rng.uniform(r, width - r)
            cy = rng.uniform(r, height - r)
            polygon = outline(label, cx, cy, r, rng.uniform(0, 2 * np.pi))
            fill_polygon(image, polygon, tuple(int(c) for c in rng.integers(0, 256, 3)))
            cv2.imwrite(str(folder / f'{name}_{i:04d}.JPEG'), image,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_imagefolder_demo(out_dir, num_train: int = 64, num_val: int = 16,
                          image_size: Tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """Write (or reuse, if already there with the same parameters) the ImageFolder demo.

    Args:
        out_dir: dataset root (``data_root`` of the config).
        num_train, num_val: images per class and split.
        image_size: (height, width) of every image in pixels.
        seed: same seed, same bytes.
    """
    return write_train_val(out_dir, 'imagefolder', _write_split, SPLITS, num_train, num_val,
                           image_size, seed, CLASS_NAMES)
