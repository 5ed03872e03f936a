# VSSD-Base variant of upernet_vssd_t_512x512_160k_ade20k.py. The release has no Base
# segmentation config: drop-path 0.6 (the variant's classification value, the rule the other
# variants follow) and the EMA weights, as its small config (a mmengine file's: its 'state_dict').
_base_ = './upernet_vssd_t_512x512_160k_ade20k.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.6,
                  init_cfg=dict(checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                                           'vssd_base_best_ema.pth',
                                state_key=('model_ema', 'state_dict'))),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
