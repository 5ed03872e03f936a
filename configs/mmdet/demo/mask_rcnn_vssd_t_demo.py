# Demo: mask_rcnn_vssd_t_1x.py on the generated shapes dataset (tools/make_demo_data.py coco):
# 3 classes, 256x192 images, a short schedule, no pretrained weights (nothing is downloaded).
# Everything else - model, optimizer, augmentation, TTA merging - is the real config's.
# `make demo` runs it: train (COCO AP after each epoch) -> multi-scale + flip test -> pictures.
_base_ = '../mask_rcnn_vssd_t_1x.py'

data_root = 'data/coco_demo/'
metainfo = dict(classes=('square', 'circle', 'triangle'))
num_classes = len(metainfo['classes'])
image_scale = (256, 192)  # the images' own size (width, height)

model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=num_classes), mask_head=dict(num_classes=num_classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCocoAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadCocoAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
dataset = dict(data_root=data_root, metainfo=metainfo)
train_dataloader = dict(num_workers=1, dataset=dict(dataset, pipeline=train_pipeline,
                                     filter_cfg=dict(filter_empty_gt=True, min_size=8)))
val_dataloader = dict(num_workers=1, dataset=dict(dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

tta_scales = [(213, 160), (256, 192), (320, 240)]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True) for s in tta_scales],
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='LoadCocoAnnotations', with_bbox=True, with_mask=True)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                             'flip', 'flip_direction'))],
        ])
]

# 3 epochs of 32 iterations, evaluated after each; warm-up, then the real lr (no decay step).
max_epochs = 3
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
]
default_hooks = dict(
    logger=dict(interval=8),
    checkpoint=dict(interval=1, max_keep_ckpts=2),
    visualization=dict(score_thr=0.5))
randomness = dict(seed=0)  # the same numbers on every run of the demo
