"""Image files of a dataset: which exist (one directory listing per folder, so that a
COCO-sized list takes seconds) and which decode."""
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Set

import numpy as np

from .report import DataCheckReport

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


def check_images(paths: List[str], split: str, full: bool, report: DataCheckReport, progress,
                 named_in: str, fix_missing: str) -> None:
    """Every path exists (a problem each: '<named_in> does not exist') and a sample of them (all
    with ``full``) decodes."""
    missing = missing_files(progress(paths, f'{split}: images exist'))
    report.count(f'{split}: images exist', len(paths), len(missing))
    for path in missing:
        report.add(path, f'image named in {named_in} does not exist', fix_missing)
    absent = set(missing)
    decoded = sample([p for p in paths if p not in absent], full)
    broken = [p for p in progress(decoded, f'{split}: images decode') if decode(p) is None]
    report.count(f'{split}: images decode' + ('' if full else ' (sample)'), len(decoded),
                 len(broken))
    for path in broken:
        report.add(path, 'does not decode as an image', 'replace it with a valid image file')
