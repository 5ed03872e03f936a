# VSSD-Small variant of vssd_t_8xb128_in1k.py: drop-path 0.4, lr 3e-4 and min lr 3e-6 per 512
# images; warm-up still starts at 5e-7 per 512 images. Reported top-1: 84.1.
_base_ = './vssd_t_8xb128_in1k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.4))
optim_wrapper = dict(optimizer=dict(lr=3e-4 * 1024 / 512))
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / 3e-4, by_epoch=True, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=3e-6 * 1024 / 512, by_epoch=True, begin=20,
         convert_to_iter_based=True),
]
