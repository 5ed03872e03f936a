# VSSD-Base variant of vssd_s_8xb128_in1k.py (same lr): drop-path 0.6. Reported top-1: 84.7.
_base_ = './vssd_s_8xb128_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.6), head=dict(in_channels=768))
