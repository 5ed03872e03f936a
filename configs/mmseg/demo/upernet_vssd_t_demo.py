# Demo: upernet_vssd_t_512x512_160k_ade20k.py on the generated ADE20K-format shapes dataset
# (tools/make_demo_data.py ade): 4 classes, 256x192 images and 128x128 crops, a short schedule,
# no pretrained weights (nothing is downloaded). Everything else - model, optimizer, augmentation
# types, multi-scale + flip TTA - is the real config's.
# `make demo-seg` runs it: train (mIoU at iterations 80 and 160) -> multi-scale test -> pictures.
_base_ = '../upernet_vssd_t_512x512_160k_ade20k.py'

data_root = 'data/ade_demo/ADEChallengeData2016'
metainfo = dict(classes=('ground', 'square', 'circle', 'triangle'),
                palette=[[120, 120, 120], [220, 60, 60], [60, 200, 60], [40, 120, 220]])
num_classes = len(metainfo['classes'])
crop_size = (128, 128)
test_scale = (1024, 192)  # short side 192: the images' own size (the real config: 512)

model = dict(
    backbone=dict(init_cfg=None),
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=test_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
# ADE20KDataset only accepts ADE's 150 class names; the generic dataset reads the same layout
# with ADE's conventions (.jpg images, .png labels, 0 = unlabelled via reduce_zero_label).
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(num_workers=1, dataset=dict(dataset, pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader

tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in [0.75, 1.0, 1.25]],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]

# 160 iterations, evaluated at 80 and 160; the real schedule's shape (linear warm-up, then poly
# decay to 0), shortened.
max_iters = 160
train_cfg = dict(max_iters=max_iters, val_interval=80)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters, by_epoch=False),
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=80, max_keep_ckpts=2))
randomness = dict(seed=0)  # the same numbers on every run of the demo
