# The paper's Table 5 (VSSD-Micro, ImageNet-1k, 100 epochs), shared by its rows: the released
# micro recipe (../vssd_m_8xb128_in1k.py) for 100 epochs (20-epoch warm-up, cosine to the end).
# Each row's config sets the backbone's mixers, stem and downsampling (the ablation flags of the
# release's classification/models/mamba2.py and mamba_util.py); the last row is the released
# architecture.
_base_ = '../vssd_m_8xb128_in1k.py'
train_cfg = dict(max_epochs=100)
