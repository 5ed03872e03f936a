# VSSD-Small variant of mask_rcnn_vssd_t_1x.py (release: drop-path 0.4).
_base_ = './mask_rcnn_vssd_t_1x.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                                           'vssd_small_best_ema.pth')))
