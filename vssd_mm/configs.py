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


# The shipped config of each task and schedule, by the variant's initial (m, t, s, b).
TASK_CONFIGS = {
    'classification': {'': 'mmpretrain/vssd_{}_8xb128_in1k.py'},
    'detection': {'1x': 'mmdet/mask_rcnn_vssd_{}_1x.py',
                  '3x_ms': 'mmdet/mask_rcnn_vssd_{}_3x_ms.py'},
    'segmentation': {'': 'mmseg/upernet_vssd_{}_512x512_160k_ade20k.py'},
}


def task_configs(task: str, variant: str) -> list:
    """The shipped configs of ``task`` ('classification', 'detection', 'segmentation') for
    ``variant`` ('micro', 'tiny', ...), as a checkout shows them: ``configs/mmdet/...``; one per
    schedule. Empty for an unknown task."""
    return [f'configs/{template.format(variant[0])}'
            for template in TASK_CONFIGS.get(task, {}).values()]


def task_config(task: str, variant: str, schedule: str = '') -> str:
    """The one shipped config of ``task``, ``variant`` and ``schedule`` ('1x', '3x_ms' for
    detection; '' otherwise), e.g. ``'configs/mmdet/mask_rcnn_vssd_t_1x.py'``."""
    return f'configs/{TASK_CONFIGS[task][schedule].format(variant[0])}'
