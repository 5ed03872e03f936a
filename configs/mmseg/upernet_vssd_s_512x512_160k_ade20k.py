# VSSD-Small variant of upernet_vssd_t_512x512_160k_ade20k.py (release: drop-path 0.4, weights
# from the checkpoint's 'model_ema' entry; a mmengine file's are its 'state_dict').
_base_ = './upernet_vssd_t_512x512_160k_ade20k.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='https://huggingface.co/YuhengSSS/VSSD/resolve/main/'
                                           'vssd_small_best_ema.pth',
                                state_key=('model_ema', 'state_dict'))))
