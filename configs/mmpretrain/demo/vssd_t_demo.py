# Demo: vssd_t_8xb128_in1k.py on the generated ImageFolder shapes dataset
# (tools/make_demo_data.py imagenet): 3 classes, 64x64 images (test: resize 73, centre crop 64,
# the real 0.875 ratio), batch 32, a short schedule. Model, optimizer, augmentation (RandAugment,
# random erasing, Mixup/CutMix, label smoothing) and EMA are the real config's.
_base_ = '../vssd_t_8xb128_in1k.py'

data_root = 'data/imagenet_demo'
num_classes = 3

model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

bgr_mean = [103.53, 116.28, 123.675]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
# mmpretrain's ImageNet dataset knows only the 1000 ImageNet classes; CustomDataset reads the
# same folder layout with the classes it finds.
train_dataloader = dict(
    batch_size=32, num_workers=1,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=1,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# 30 epochs of 6 iterations: 2 warm-up epochs, then cosine decay
train_cfg = dict(max_epochs=30, val_interval=10)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=2,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=6), checkpoint=dict(interval=10, max_keep_ckpts=2))
