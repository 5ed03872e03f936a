"""The official VSSD checkpoints: file names as released (Hugging Face YuhengSSS/VSSD), the config
here that evaluates each, and the published numbers. The README's model-zoo tables and the
configs' ``init_cfg`` URLs are checked against this table (tests/models/test_zoo.py).
"""
from typing import List, NamedTuple

from ..configs import task_config

HF_REPO = 'https://huggingface.co/YuhengSSS/VSSD'


def official_url(filename: str) -> str:
    """Direct download URL of an official file (``resolve/main``, not the ``blob`` page)."""
    return f'{HF_REPO}/resolve/main/{filename}'


class OfficialCheckpoint(NamedTuple):
    filename: str
    task: str        # 'classification' | 'detection' | 'segmentation'
    variant: str     # 'micro' | 'tiny' | 'small' | 'base'
    published: str   # the release README's metric(s)
    schedule: str = ''  # detection: '1x' | '3x_ms'
    note: str = ''

    @property
    def url(self) -> str:
        return official_url(self.filename)

    @property
    def config(self) -> str:
        """The shipped config that evaluates the file, relative to the repository root."""
        return task_config(self.task, self.variant, self.schedule)


_C, _D, _S = 'classification', 'detection', 'segmentation'
OFFICIAL_CHECKPOINTS: List[OfficialCheckpoint] = [
    OfficialCheckpoint('vssd_micro_best.pth', _C, 'micro', 'top-1 82.5'),
    OfficialCheckpoint('vssd_tiny_best_ema.pth', _C, 'tiny', 'top-1 83.6'),
    OfficialCheckpoint('vssd_small_best_ema.pth', _C, 'small', 'top-1 84.1'),
    OfficialCheckpoint('vssd_base_best_ema.pth', _C, 'base', 'top-1 84.7'),
    OfficialCheckpoint('vssd_tiny_e300_with_mesa.pth', _C, 'tiny', 'top-1 84.1',
                       note='trained with MESA'),
    OfficialCheckpoint('vssd_small_e300_with_mesa.pth', _C, 'small', 'top-1 84.5',
                       note='trained with MESA'),
    OfficialCheckpoint('vssd_base_e300_with_mesa.pth', _C, 'base', 'top-1 85.4',
                       note='trained with MESA'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_micro.pth', _D, 'micro',
                       'box AP 45.4, mask AP 41.3', '1x'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_tiny.pth', _D, 'tiny',
                       'box AP 46.9, mask AP 42.6', '1x'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_small.pth', _D, 'small',
                       'box AP 48.4, mask AP 43.5', '1x'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_micro_3x.pth', _D, 'micro',
                       'box AP 47.7, mask AP 42.8', '3x_ms'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_tiny_3x.pth', _D, 'tiny',
                       'box AP 48.8, mask AP 43.6', '3x_ms'),
    OfficialCheckpoint('upernet_vssd_final_4xb4-160k_ade20k-512x512_micro.pth', _S, 'micro',
                       'mIoU 45.6 (single scale), 46.0 (--tta)'),
    OfficialCheckpoint('upernet_vssd_4xb4-160k_ade20k-512x512_tiny.pth', _S, 'tiny',
                       'mIoU 47.9 (single scale), 48.7 (--tta)'),
]

# Published but with no file of its own: the release README's "Small 3x" row (box AP 50.0, mask
# AP 44.6) links to mask_rcnn_vssd_fpn_coco_small.pth, the 1x file.
UNRELEASED = {'mask_rcnn_vssd_fpn_coco_small_3x': 'the release links the Small 3x row to the 1x '
              'file mask_rcnn_vssd_fpn_coco_small.pth; no 3x file is published'}
