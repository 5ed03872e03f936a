"""COCO-format instance-segmentation demo data (the layout mmdet's ``CocoDataset`` reads).

::

    OUT/annotations/instances_train2017.json   instances_val2017.json
    OUT/train2017/000000000001.jpg ...         OUT/val2017/...

Every annotation has an exact polygon ``segmentation``, its ``bbox`` (x, y, w, h) and ``area``.
"""
import json
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from .shapes import CLASS_NAMES, random_scene
from .writer import write_train_val

SPLITS = ('train2017', 'val2017')


def _write_split(out: Path, split: str, num_images: int, image_size: Tuple[int, int],
                 seed: int) -> None:
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    (out / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    height, width = image_size
    for image_id in range(1, num_images + 1):
        image, shapes = random_scene(rng, height, width, num_objects=(2, 5),
                                     radius=(0.08 * min(height, width), 0.2 * min(height, width)))
        file_name = f'{image_id:012d}.jpg'
        cv2.imwrite(str(out / split / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
        for shape in shapes:
            x0, y0, x1, y1 = shape.bbox_xyxy
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=shape.label + 1,
                segmentation=[[round(float(v), 2) for v in shape.polygon.reshape(-1)]],
                bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                area=round(shape.area, 2), iscrowd=0))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASS_NAMES)]
    (out / 'annotations').mkdir(exist_ok=True)
    with open(out / 'annotations' / f'instances_{split}.json', 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def make_coco_demo(out_dir, num_train: int = 64, num_val: int = 16,
                   image_size: Tuple[int, int] = (192, 256), seed: int = 0) -> Path:
    """Write (or reuse, if already there with the same parameters) the COCO demo dataset.

    Args:
        out_dir: dataset root (``data_root`` of the config).
        num_train, num_val: number of images per split.
        image_size: (height, width) of every image in pixels.
        seed: same seed, same bytes.

    Returns:
        ``out_dir`` as a Path.
    """
    return write_train_val(out_dir, 'coco', _write_split, SPLITS, num_train, num_val,
                           image_size, seed, CLASS_NAMES)
