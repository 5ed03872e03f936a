# VSSD-Micro variant of mask_rcnn_vssd_t_3x_ms.py (release: drop-path 0.1).
_base_ = './mask_rcnn_vssd_t_3x_ms.py'
model = dict(
    backbone=dict(arch='micro', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                                           'vssd_micro_best.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
