"""The official VSSD checkpoints: file names as released (Hugging Face YuhengSSS/VSSD), the config
here that evaluates each, and the published numbers. The README's model-zoo tables and the
configs' ``init_cfg`` URLs are checked against this table (tests/models/test_zoo.py).
"""
from typing import List, NamedTuple

HF_REPO = 'https://huggingface.co/YuhengSSS/VSSD'


def official_url(filename: str) -> str:
    """Direct download URL of an official file (``resolve/main``, not the ``blob`` page)."""
    return f'{HF_REPO}/resolve/main/{filename}'


class OfficialCheckpoint(NamedTuple):
    filename: str
    task: str        # 'classification' | 'detection' | 'segmentation'
    variant: str     # 'micro' | 'tiny' | 'small' | 'base'
    config: str      # relative to the repository root
    published: str   # the release README's metric(s)
    note: str = ''

    @property
    def url(self) -> str:
        return official_url(self.filename)


_CLS = 'configs/mmpretrain/vssd_{}_8xb128_in1k.py'
_DET = 'configs/mmdet/mask_rcnn_vssd_{}_{}.py'
_SEG = 'configs/mmseg/upernet_vssd_{}_512x512_160k_ade20k.py'

OFFICIAL_CHECKPOINTS: List[OfficialCheckpoint] = [
    OfficialCheckpoint('vssd_micro_best.pth', 'classification', 'micro', _CLS.format('m'),
                       'top-1 82.5'),
    OfficialCheckpoint('vssd_tiny_best_ema.pth', 'classification', 'tiny', _CLS.format('t'),
                       'top-1 83.6'),
    OfficialCheckpoint('vssd_small_best_ema.pth', 'classification', 'small', _CLS.format('s'),
                       'top-1 84.1'),
    OfficialCheckpoint('vssd_base_best_ema.pth', 'classification', 'base', _CLS.format('b'),
                       'top-1 84.7'),
    OfficialCheckpoint('vssd_tiny_e300_with_mesa.pth', 'classification', 'tiny', _CLS.format('t'),
                       'top-1 84.1', 'trained with MESA'),
    OfficialCheckpoint('vssd_small_e300_with_mesa.pth', 'classification', 'small',
                       _CLS.format('s'), 'top-1 84.5', 'trained with MESA'),
    OfficialCheckpoint('vssd_base_e300_with_mesa.pth', 'classification', 'base', _CLS.format('b'),
                       'top-1 85.4', 'trained with MESA'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_micro.pth', 'detection', 'micro',
                       _DET.format('m', '1x'), 'box AP 45.4, mask AP 41.3'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_tiny.pth', 'detection', 'tiny',
                       _DET.format('t', '1x'), 'box AP 46.9, mask AP 42.6'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_small.pth', 'detection', 'small',
                       _DET.format('s', '1x'), 'box AP 48.4, mask AP 43.5'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_micro_3x.pth', 'detection', 'micro',
                       _DET.format('m', '3x_ms'), 'box AP 47.7, mask AP 42.8'),
    OfficialCheckpoint('mask_rcnn_vssd_fpn_coco_tiny_3x.pth', 'detection', 'tiny',
                       _DET.format('t', '3x_ms'), 'box AP 48.8, mask AP 43.6'),
    OfficialCheckpoint('upernet_vssd_final_4xb4-160k_ade20k-512x512_micro.pth', 'segmentation',
                       'micro', _SEG.format('m'), 'mIoU 45.6 (single scale), 46.0 (--tta)'),
    OfficialCheckpoint('upernet_vssd_4xb4-160k_ade20k-512x512_tiny.pth', 'segmentation', 'tiny',
                       _SEG.format('t'), 'mIoU 47.9 (single scale), 48.7 (--tta)'),
]

# Published but with no file of its own: the release README's "Small 3x" row (box AP 50.0, mask
# AP 44.6) links to mask_rcnn_vssd_fpn_coco_small.pth, the 1x file.
UNRELEASED = {'mask_rcnn_vssd_fpn_coco_small_3x': 'the release links the Small 3x row to the 1x '
              'file mask_rcnn_vssd_fpn_coco_small.pth; no 3x file is published'}
