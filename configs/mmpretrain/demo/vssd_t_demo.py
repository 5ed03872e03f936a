# Demo: vssd_t_8xb128_in1k.py on the generated ImageFolder shapes dataset
# (tools/make_demo_data.py imagenet): 3 classes, 64x64 images (test: resize 73, centre crop 64,
# the real 0.875 ratio), batch 32, 40 epochs of 6 iterations on a CPU.
# Kept from the real config: model, AdamW with its decay exclusions and lr, gradient clipping,
# label smoothing, warm-up + cosine. Left out, because they are built for 300 epochs of 1.28 M
# images and keep a 240-iteration run at chance (measured: 33 % top-1): RandAugment, random
# erasing, Mixup/CutMix, and the EMA (decay 0.9999 averages over ~10k iterations).
_base_ = '../vssd_t_8xb128_in1k.py'

data_root = 'data/imagenet_demo'
num_classes = 3

model = dict(head=dict(num_classes=num_classes), train_cfg=dict(_delete_=True))
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.35, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
# mmpretrain's ImageNet dataset knows only the 1000 ImageNet classes; CustomDataset reads the
# same folder layout with the classes it finds. No loader worker processes: on a 2-core machine
# one takes a core from torch's two compute threads (measured: 0.83 instead of 1.15 s/iteration).
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# 40 epochs of 6 iterations: 2 warm-up epochs, then cosine decay
train_cfg = dict(max_epochs=40, val_interval=10)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=2,
         convert_to_iter_based=True),
]
custom_hooks = []
default_hooks = dict(
    logger=dict(interval=6), checkpoint=dict(interval=10, max_keep_ckpts=2),
    visualization=dict(rescale_factor=4.0))  # --show-dir: labels readable on 64-px images
randomness = dict(seed=0)  # the same top-1 on every run of the demo
