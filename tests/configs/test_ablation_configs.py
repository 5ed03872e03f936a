"""configs/mmpretrain/ablation: the paper's Table 5 on VSSD-Micro. Each row builds (mmpretrain,
and its backbone through mmdet's and mmseg's registries too) and trains a step."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

ABLATION_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'mmpretrain' / 'ablation'
ROWS = {  # config -> (mixers per stage, stem and downsampling)
    'vssd_m_ablation_1_ssd_100e_in1k.py': (('causal_ssd', ) * 4, 'simple'),
    'vssd_m_ablation_2_bi_ssd_100e_in1k.py': (('bi_ssd', ) * 4, 'simple'),
    'vssd_m_ablation_3_nc_ssd_100e_in1k.py': (('nc_ssd', ) * 4, 'simple'),
    'vssd_m_ablation_4_attention_100e_in1k.py': (('nc_ssd', ) * 3 + ('attention', ), 'simple'),
    'vssd_m_ablation_5_overlap_100e_in1k.py': (('nc_ssd', ) * 3 + ('attention', ), 'overlap'),
}


def _load(name):
    import vssd_mm  # noqa: F401
    return Config.fromfile(str(ABLATION_DIR / name))


def test_one_config_per_row():
    assert sorted(p.name for p in ABLATION_DIR.glob('vssd_m_ablation_[0-9]*.py')) == sorted(ROWS)


@pytest.mark.parametrize('name', ROWS)
def test_row_builds_everywhere_and_trains_a_step(name):
    from mmengine.registry import DefaultScope

    from benchmarks.support.batches import synthetic_batch
    from vssd_mm.analysis.model_builder import build_model
    cfg = _load(name)
    assert cfg.train_cfg.max_epochs == 100
    mixers, layout = ROWS[name]
    model, scope = build_model(cfg)
    backbone = model.backbone
    assert backbone.mixers == mixers
    assert type(backbone.patch_embed).__name__ == ('SimpleStem' if layout == 'simple' else 'Stem')
    assert type(backbone.layers[0].downsample).__name__ == (
        'SimpleDownsample' if layout == 'simple' else 'Downsample')
    assert backbone.arch['depths'] == (2, 2, 8, 4) and backbone.arch['embed_dim'] == 48
    for registry_scope in ('mmdet', 'mmseg'):
        from mmengine.registry import MODELS
        with DefaultScope.overwrite_default_scope(registry_scope):
            built = MODELS.build(dict(cfg.model.backbone, out_indices=(0, 1, 2, 3)))
        assert type(built).__name__ == 'VSSD' and built.mixers == mixers
    model.train()
    batch = model.data_preprocessor(synthetic_batch(scope, 2, 64, 64, num_classes=1000), True)
    losses = model(**batch, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.backbone.parameters())
