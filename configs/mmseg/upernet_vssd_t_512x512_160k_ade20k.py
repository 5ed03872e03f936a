# UperNet, VSSD-Tiny backbone, ADE20K, 512x512 crops, 160k iterations.
# Recipe of the official release: its Swin-T UperNet base (AdamW lr 6e-5, weight decay 0.01 with
# decay_mult 0 on 'norm' parameters, 1500-iteration linear warm-up, poly decay power 1.0 to 0,
# 2 images per GPU x 8 GPUs = batch 16), heads with ReLU(inplace=False). Reported: mIoU 47.9
# single-scale, 48.7 multi-scale (tools/test.py --tta).
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['vssd_mm'], allow_failed_imports=False)

# Official ImageNet-1k weights (huggingface.co/YuhengSSS/VSSD). No state_key: the loader takes an
# official file's 'model' entry (what the release's tiny config reads) and a mmengine file's
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
    decode_head=dict(in_channels=[64, 128, 256, 512], act_cfg=dict(type='ReLU', inplace=False)),
    auxiliary_head=dict(in_channels=256, act_cfg=dict(type='ReLU', inplace=False)))

# Multi-scale + flip testing as the release: ratios 0.75 / 1.0 / 1.25 of the (2048, 512) test
# scale, each with and without horizontal flip (6 views), merged by mmseg's SegTTAModel.
tta_ratios = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True)
             for r in tta_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
