# Mask R-CNN + FPN, VSSD-Tiny backbone, 1x schedule (12 epochs), COCO 2017.
# Recipe of the official release: its Swin-T 1x base (AdamW lr 1e-4, weight decay 0.05 with
# decay_mult 0 on 'norm' parameters, 1000-iteration linear warm-up, steps at epochs 8 and 11,
# 2 images per GPU x 8 GPUs = batch 16). Reported: box AP 46.9, mask AP 42.6.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    './_base_/mask_rcnn_tta.py',
]
# vssd_mm.datasets: LoadCocoAnnotations (needs mmdet, so detection configs import it)
custom_imports = dict(imports=['vssd_mm', 'vssd_mm.datasets'], allow_failed_imports=False)

# Official ImageNet-1k weights (huggingface.co/YuhengSSS/VSSD). No state_key: the loader takes an
# official file's 'model' entry (what the release's detection configs read) and a mmengine file's
# 'state_dict' (your own tools/train.py checkpoint, e.g. of configs/mmpretrain).
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
