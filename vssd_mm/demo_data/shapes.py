"""Deterministic synthetic scenes: coloured shapes with exact polygon outlines on a textured
background. Shared by the COCO, ADE20K and ImageFolder demo writers.

A scene is an image plus a list of ``Shape``s; every shape is a polygon (circles are 32-gons),
so the polygon *is* the ground-truth mask and a rasteriser reproduces it exactly. Shapes never
overlap, so no instance hides part of another.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

# name -> base colour (B, G, R); each class has its own hue, jittered per instance
SHAPE_CLASSES: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
    ('square', (60, 60, 220)),
    ('circle', (60, 200, 60)),
    ('triangle', (220, 120, 40)),
)
CLASS_NAMES = tuple(name for name, _ in SHAPE_CLASSES)
POLYGON_SHIFT = 4  # cv2 fixed-point bits: vertices are drawn with 1/16 px precision


@dataclass
class Shape:
    """One object: ``label`` indexes ``CLASS_NAMES``; ``polygon`` is (vertices, 2) x/y in pixels."""
    label: int
    polygon: np.ndarray

    @property
    def bbox_xyxy(self) -> Tuple[float, float, float, float]:
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())

    @property
    def area(self) -> float:
        """Polygon area in px² (shoelace formula)."""
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def outline(label: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    name = CLASS_NAMES[label]
    if name == 'square':
        t = angle + np.pi / 4 + np.arange(4) * np.pi / 2
    elif name == 'triangle':
        t = angle + np.arange(3) * 2 * np.pi / 3
    else:
        t = np.arange(32) * 2 * np.pi / 32
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(90, 160, size=3)
    slope = rng.uniform(-0.3, 0.3, size=(3, 2))
    img = base + xx[..., None] * slope[:, 0] + yy[..., None] * slope[:, 1]
    img += rng.normal(0, 8, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def random_scene(rng: np.random.Generator, height: int, width: int, num_objects: Tuple[int, int],
                 radius: Tuple[float, float], labels: Sequence[int] = None
                 ) -> Tuple[np.ndarray, List[Shape]]:
    """Draw a scene.

    Args:
        rng: the only source of randomness (same seed -> same scene).
        height, width: image size in pixels.
        num_objects: inclusive (min, max) number of shapes to try to place.
        radius: (min, max) circumradius of a shape in pixels.
        labels: the classes to draw from (default: all).

    Returns:
        image (height, width, 3) uint8 BGR, and the placed shapes (fewer than asked when the image
        is too crowded to place one without overlap).
    """
    labels = list(range(len(CLASS_NAMES))) if labels is None else list(labels)
    image = background(rng, height, width)
    shapes: List[Shape] = []
    taken: List[Tuple[float, float, float]] = []
    for _ in range(int(rng.integers(num_objects[0], num_objects[1] + 1))):
        for _attempt in range(20):
            r = rng.uniform(*radius)
            cx, cy = rng.uniform(r + 1, width - r - 1), rng.uniform(r + 1, height - r - 1)
            if all((cx - x) ** 2 + (cy - y) ** 2 > (r + rr + 2) ** 2 for x, y, rr in taken):
                break
        else:
            continue
        label = int(rng.choice(labels))
        polygon = outline(label, cx, cy, r, rng.uniform(0, 2 * np.pi))
        colour = np.clip(np.array(SHAPE_CLASSES[label][1]) + rng.integers(-25, 26, 3), 0, 255)
        fill_polygon(image, polygon, tuple(int(c) for c in colour))
        shapes.append(Shape(label, polygon))
        taken.append((cx, cy, r))
    return image, shapes


def fill_polygon(canvas: np.ndarray, polygon: np.ndarray, value) -> np.ndarray:
    """Fill ``polygon`` ((vertices, 2) x/y px) into ``canvas`` in place, sub-pixel accurate."""
    pts = np.round(polygon * (1 << POLYGON_SHIFT)).astype(np.int32)
    cv2.fillPoly(canvas, [pts], value, lineType=cv2.LINE_8, shift=POLYGON_SHIFT)
    return canvas
