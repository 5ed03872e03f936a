# VSSD-Tiny, ImageNet-1k, 300 epochs, 224x224. Reported top-1: 83.6.
# Recipe of the official release, which is Swin's (hence mmpretrain's packaged Swin bases):
# AdamW lr 5e-4 per 512 images (1e-3 at batch 1024 = 8 GPUs x 128), weight decay 0.05 except
# 1-D parameters and biases, 20-epoch linear warm-up from 5e-7 per 512, cosine to 5e-6 per 512,
# gradient-norm clipping 5.0; RandAugment m9 mstd0.5 (increasing), random erasing 0.25,
# Mixup 0.8 / CutMix 1.0 (one of them per batch), label smoothing 0.1, EMA 0.9999; test: resize
# the short side to 256, centre crop 224 (ratio 0.875). The release trained with fp16 AMP: add
# --amp on GPUs.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssd_mm'], allow_failed_imports=False)

# The classifier's final LayerNorm is the backbone's outnorm3: official checkpoints load after
# tools/convert_checkpoint.py. VSSD initialises itself as the release does (trunc-normal linears,
# A_log / dt_bias / D), so the classifier adds no init_cfg of its own.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VSSD', arch='tiny', out_indices=(3, ), drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

lr_scale = 1024 / 512  # the release scales every lr by total batch / 512
optim_wrapper = dict(
    optimizer=dict(lr=5e-4 * lr_scale),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / 5e-4, by_epoch=True, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-6 * lr_scale, by_epoch=True, begin=20,
         convert_to_iter_based=True),
]
# timm's ModelEma, which the release used, averages the whole state dict: BatchNorm statistics too
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL')]
