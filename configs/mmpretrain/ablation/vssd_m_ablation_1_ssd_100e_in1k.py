# Table 5, row 1 (baseline): causal SSD in every stage, simple stem and downsampling.
_base_ = './vssd_m_ablation_base_100e_in1k.py'
model = dict(backbone=dict(mixer=('causal_ssd', ) * 4, patch_embed='simple',
                           downsample='simple'))
