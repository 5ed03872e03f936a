# VSSD-Base variant of mask_rcnn_vssd_t_1x.py. The release has no Base detection config:
# drop-path 0.6 follows its rule for the other variants (detection uses the drop-path the
# classification recipe intended for the variant).
_base_ = './mask_rcnn_vssd_t_1x.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.6,
                  init_cfg=dict(checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                                           'vssd_base_best_ema.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
