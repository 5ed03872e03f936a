# Mask R-CNN + FPN, VSSD-Tiny backbone, 3x schedule (36 epochs) with DETR-style multi-scale
# resize / random-crop training, COCO 2017. Recipe: the release's Swin-T ms-crop-3x base (as 1x,
# steps at epochs 27 and 33). Reported: box AP 48.8, mask AP 43.6.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
    './_base_/mask_rcnn_tta.py',
]
# vssd_mm.datasets: LoadCocoAnnotations (needs mmdet, so detection configs import it)
custom_imports = dict(imports=['vssd_mm', 'vssd_mm.datasets'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='VSSD',
        arch='tiny',
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                       'vssd_tiny_best_ema.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
