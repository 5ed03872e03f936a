# Table 5, row 4: NC-SSD in stages 0-2, global attention in stage 3, simple stem and
# downsampling.
_base_ = './vssd_m_ablation_base_100e_in1k.py'
model = dict(backbone=dict(mixer='nc_ssd', patch_embed='simple', downsample='simple'))
