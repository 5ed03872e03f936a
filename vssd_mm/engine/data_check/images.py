"""Image files of a dataset: which exist (one directory listing per folder, so that a
COCO-sized list takes seconds) and which decode."""
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Set

import numpy as np

SAMPLE = 16  # images decoded in the fast mode


def missing_files(paths: Iterable[str]) -> List[str]:
    """The ``paths`` that are not files, in their order."""
    listings: Dict[str, Set[str]] = {}
    missing = []
    for path in paths:
        folder, name = osp.split(path)
        if folder not in listings:
            try:
                listings[folder] = {e.name for e in os.scandir(folder or '.') if e.is_file()}
            except OSError:
                listings[folder] = set()
        if name not in listings[folder]:
            missing.append(path)
    return missing


def sample(paths: List[str], full: bool) -> List[str]:
    """All ``paths`` with ``full``, else ``SAMPLE`` of them spread evenly over the list."""
    if full or len(paths) <= SAMPLE:
        return list(paths)
    step = len(paths) / SAMPLE
    return [paths[int(i * step)] for i in range(SAMPLE)]


def decode(path: str, flag: str = 'color') -> Optional[np.ndarray]:
    """The decoded image (as training reads it: mmcv, cv2 backend), or None if it does not
    decode."""
    import mmcv
    try:
        with open(path, 'rb') as f:
            return mmcv.imfrombytes(f.read(), flag=flag)
    except (OSError, ValueError):
        return None
