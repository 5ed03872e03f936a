"""What ``tools/image_demo.py INPUT`` names: one image, a folder of images (searched
recursively), or a video file. Each problem is a ``ToolError`` raised before any model is built."""
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import cv2
import numpy as np

from ..engine.errors import ToolError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# suffix -> the fourcc the drawn copy is written with (opencv-python's own encoders)
VIDEO_FOURCC = {'.mp4': 'mp4v', '.m4v': 'mp4v', '.mov': 'mp4v', '.avi': 'MJPG', '.mkv': 'MJPG'}


@dataclass
class Video:
    """A readable video file: ``frames`` BGR uint8 (height, width, 3), ``fps`` frames per
    second, ``frame_count`` as the container states it (the frames read are what counts)."""
    path: str
    fps: float
    frame_count: int
    size: tuple  # (width, height) in pixels

    def frames(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(self.path)
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()


@dataclass
class Inputs:
    """Either ``images`` (paths, sorted) with the ``root`` their output names are relative to,
    or one ``video``."""
    images: List[str]
    root: str
    video: Optional[Video] = None


def open_video(path: str) -> Video:
    """The video at ``path``; ``ToolError`` when OpenCV cannot decode a first frame."""
    capture = cv2.VideoCapture(path)
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise ToolError(f'video {path} cannot be read (not a video, a codec OpenCV lacks, '
                            'or no frames)')
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return Video(path, fps if fps > 0 else 25., count, (frame.shape[1], frame.shape[0]))


def collect_inputs(path: str) -> Inputs:
    """The images or the video ``path`` names (see the module docstring)."""
    if osp.isdir(path):
        images = sorted(str(p) for p in Path(path).rglob('*')
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ToolError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in folder {path}')
        by_stem = {}
        for image in images:  # their outputs are named by the path without its suffix
            other = by_stem.setdefault(osp.splitext(image)[0], image)
            if other != image:
                raise ToolError(f'{other} and {image} would write the same output files '
                                '(they differ only in their suffix): rename one')
        return Inputs(images, path)
    if not osp.exists(path):
        raise ToolError(f'input not found: {path}')
    suffix = osp.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return Inputs([path], osp.dirname(path))
    if suffix in VIDEO_FOURCC:
        return Inputs([], osp.dirname(path), open_video(path))
    raise ToolError(f'{path}: unknown input type {suffix or "(no suffix)"}; give an image '
                    f'({", ".join(IMAGE_SUFFIXES)}), a folder of images or a video '
                    f'({", ".join(VIDEO_FOURCC)})')


def read_image(path: str, color_type: str = 'color', backend: str = 'cv2') -> np.ndarray:
    """The image file decoded as mmcv's ``LoadImageFromFile`` decodes it (BGR for 'color');
    ``ToolError`` when it does not decode."""
    import mmcv
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as err:
        raise ToolError(f'image {path} cannot be read ({err.strerror})') from None
    try:
        img = mmcv.imfrombytes(content, flag=color_type, backend=backend)
    except Exception:  # backends raise their own types on garbage
        img = None
    if img is None:
        raise ToolError(f'image {path} does not decode (a corrupt file, or not an image)')
    return img


class VideoWriter:
    """The drawn copy of a video: same fps and frame size, the input's container."""

    def __init__(self, path: str, fps: float, size: tuple):
        fourcc = VIDEO_FOURCC[osp.splitext(path)[1].lower()]
        self.path = path
        self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self._writer.isOpened():
            raise ToolError(f'cannot write video {path} (OpenCV has no {fourcc} encoder here)')
        self.size = size

    def write(self, bgr: np.ndarray) -> None:
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(bgr)

    def close(self) -> None:
        self._writer.release()
