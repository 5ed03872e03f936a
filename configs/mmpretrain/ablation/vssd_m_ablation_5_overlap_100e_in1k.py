# Table 5, row 5: + overlapped stem and downsampling = the released VSSD-Micro architecture.
_base_ = './vssd_m_ablation_base_100e_in1k.py'
