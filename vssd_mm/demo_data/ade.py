"""ADE20K-format semantic-segmentation demo data (the layout mmseg's ``ADE20KDataset`` reads).

::

    OUT/images/training/ADE_train_00000001.jpg       OUT/annotations/training/ADE_train_00000001.png
    OUT/images/validation/ADE_val_00000001.jpg       OUT/annotations/validation/ADE_val_00000001.png

Label PNGs follow ADE20K: 0 = unlabelled (ignored through ``reduce_zero_label``), 1..K = the
classes ``SEG_CLASSES`` (1 = the textured ground, 2.. = the shapes). A one-pixel outline around
every shape is left unlabelled, like the ambiguous boundaries of real annotations.
"""
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from .shapes import CLASS_NAMES, random_scene
from .writer import write_train_val

SEG_CLASSES = ('ground',) + CLASS_NAMES
SPLITS = {'training': 'ADE_train', 'validation': 'ADE_val'}


def scene_label_map(shapes, height: int, width: int) -> np.ndarray:
    """(height, width) uint8 ADE labels for a scene: ground 1, shape of class c -> c + 2,
    outlines 0."""
    labels = np.ones((height, width), np.uint8)
    for shape in shapes:
        pts = np.round(shape.polygon * 16).astype(np.int32)
        cv2.fillPoly(labels, [pts], shape.label + 2, lineType=cv2.LINE_8, shift=4)
        cv2.polylines(labels, [pts], True, 0, thickness=1, lineType=cv2.LINE_8, shift=4)
    return labels


def _write_split(out: Path, split: str, num_images: int, image_size: Tuple[int, int],
                 seed: int) -> None:
    rng = np.random.default_rng([seed, list(SPLITS).index(split), 7])
    (out / 'images' / split).mkdir(parents=True, exist_ok=True)
    (out / 'annotations' / split).mkdir(parents=True, exist_ok=True)
    height, width = image_size
    for i in range(1, num_images + 1):
        image, shapes = random_scene(rng, height, width, num_objects=(2, 6),
                                     radius=(0.08 * min(height, width), 0.22 * min(height, width)))
        name = f'{SPLITS[split]}_{i:08d}'
        cv2.imwrite(str(out / 'images' / split / f'{name}.jpg'), image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(out / 'annotations' / split / f'{name}.png'),
                    scene_label_map(shapes, height, width))


def make_ade_demo(out_dir, num_train: int = 64, num_val: int = 16,
                  image_size: Tuple[int, int] = (192, 256), seed: int = 0) -> Path:
    """Write (or reuse, if already there with the same parameters) the ADE20K-format demo.

    Args:
        out_dir: the ``ADEChallengeData2016``-like root (``data_root`` of the config).
        num_train, num_val: number of images per split.
        image_size: (height, width) of every image in pixels.
        seed: same seed, same bytes.
    """
    return write_train_val(out_dir, 'ade20k', _write_split, tuple(SPLITS), num_train, num_val,
                           image_size, seed, SEG_CLASSES)
