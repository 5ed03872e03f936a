# VSSD-Micro variant of upernet_vssd_t_512x512_160k_ade20k.py. The release reports micro
# (mIoU 45.6 / 46.0) but ships no config: drop-path 0.1 as its micro detection configs.
_base_ = './upernet_vssd_t_512x512_160k_ade20k.py'
model = dict(
    backbone=dict(arch='micro', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                                           'vssd_micro_best.pth')),
    decode_head=dict(in_channels=[48, 96, 192, 384]),
    auxiliary_head=dict(in_channels=192))
