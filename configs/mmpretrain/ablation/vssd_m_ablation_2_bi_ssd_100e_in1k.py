# Table 5, row 2: Bi-SSD in every stage (heads and B/C groups split in halves, one half scanned
# in reverse; ngroups 2 as in the release's runs), simple stem and downsampling.
_base_ = './vssd_m_ablation_base_100e_in1k.py'
model = dict(backbone=dict(
    arch=dict(_delete_=True, embed_dim=48, depths=(2, 2, 8, 4), num_heads=(2, 4, 8, 16),
              d_state=48, ngroups=2),
    mixer=('bi_ssd', ) * 4, patch_embed='simple', downsample='simple'))
