"""Where the installed package keeps its configs: ``vssd_mm/.mim/configs``, the OpenMMLab layout
that mim reads (in a checkout a link to ``configs/``; in a built wheel the files themselves).
Code finds a config here, never by a path relative to a checkout."""
from pathlib import Path

CONFIGS_DIR = Path(__file__).resolve().parent / '.mim' / 'configs'


def config_path(relative: str) -> Path:
    """The file of a packaged config, e.g. ``'mmdet/mask_rcnn_vssd_t_1x.py'``. Raises
    FileNotFoundError naming the folder it looked in."""
    path = CONFIGS_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(f'no config {relative} in {CONFIGS_DIR} (the configs vssd_mm '
                                'ships; reinstall vssd_mm if the folder is missing)')
    return path
