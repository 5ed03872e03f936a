"""configs/mmseg: every config builds and runs; the recipe equals the official release's."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from pretrained_entries import entry_read

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs' / 'mmseg'
VARIANTS = {  # letter: (arch, drop_path_rate, stage channels, state_key) - the release's
# segmentation/configs/vssd/upernet_vssd_4xb4-160k_ade20k-512x512_*.py
    'm': ('micro', 0.1, [48, 96, 192, 384], 'model'),
    't': ('tiny', 0.2, [64, 128, 256, 512], 'model'),
    's': ('small', 0.4, [64, 128, 256, 512], 'model_ema'),
    'b': ('base', 0.6, [96, 192, 384, 768], 'model_ema'),
}
CONFIGS = [f'upernet_vssd_{v}_512x512_160k_ade20k.py' for v in VARIANTS]


def _load(name):
    import vssd_mm  # noqa: F401
    return Config.fromfile(str(CONFIG_DIR / name))


def test_the_config_set_is_complete():
    assert sorted(p.name for p in CONFIG_DIR.glob('upernet_vssd_*.py')) == sorted(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_recipe_matches_the_release(name):
    cfg = _load(name)
    arch, drop_path, channels, key = VARIANTS[name[len('upernet_vssd_')]]
    backbone = cfg.model.backbone
    assert backbone.type == 'VSSD' and backbone.arch == arch
    assert backbone.drop_path_rate == drop_path and tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert set(backbone) == {'type', 'arch', 'drop_path_rate', 'out_indices', 'init_cfg'}
    assert arch in backbone.init_cfg.checkpoint
    assert entry_read(backbone.init_cfg) == {'official': key, 'mmengine': 'state_dict'}
    assert cfg.custom_imports.imports == ['vssd_mm'] and cfg.default_scope == 'mmseg'

    head, aux = cfg.model.decode_head, cfg.model.auxiliary_head
    assert head.type == 'UPerHead' and head.in_channels == channels and head.channels == 512
    assert head.pool_scales == (1, 2, 3, 6) and head.num_classes == 150
    assert aux.type == 'FCNHead' and aux.in_channels == channels[2] and aux.channels == 256
    assert aux.loss_decode.loss_weight == 0.4
    for h in (head, aux):
        assert h.act_cfg == dict(type='ReLU', inplace=False)
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.test_cfg.mode == 'whole'

    optim = cfg.optim_wrapper
    assert optim.type == 'OptimWrapper' and optim.get('clip_grad') is None
    assert optim.optimizer == dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
    assert optim.paramwise_cfg.custom_keys['norm'] == dict(decay_mult=0.)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.begin, warmup.end) == \
        ('LinearLR', 1e-6, False, 0, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end, poly.by_epoch) == \
        ('PolyLR', 1.0, 0.0, 1500, 160000, False)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 160000
    assert cfg.train_cfg.val_interval == 16000 and cfg.train_dataloader.batch_size == 2

    data = cfg.train_dataloader.dataset
    assert data.type == 'ADE20KDataset' and data.data_root == 'data/ade/ADEChallengeData2016'
    steps = {t['type']: t for t in data.pipeline}
    assert steps['LoadAnnotations'].reduce_zero_label is True
    assert steps['RandomResize'].scale == (2048, 512)
    assert steps['RandomResize'].ratio_range == (0.5, 2.0)
    assert steps['RandomCrop'].crop_size == (512, 512) and steps['RandomCrop'].cat_max_ratio == 0.75
    assert 'PhotoMetricDistortion' in steps

    assert cfg.tta_model.type == 'SegTTAModel'
    scales, flips = cfg.tta_pipeline[1].transforms[:2]
    assert [s.scale for s in scales] == [(1536, 384), (2048, 512), (2560, 640)]
    assert [f.prob for f in flips] == [0., 1.]


@pytest.mark.parametrize('name', CONFIGS)
@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_builds_and_runs_train_and_inference(name, mode):
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    cfg = _load(name)
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = (64, 64)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                        pad_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)
    losses = model(**model.data_preprocessor(data, training=True), mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()

    model.eval()
    from mmengine.config import ConfigDict
    model.test_cfg = ConfigDict(mode=mode, crop_size=(64, 64), stride=(48, 48))
    image = torch.randint(0, 256, (3, 80, 100), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(80, 100), ori_shape=(80, 100)))
    with torch.no_grad():
        pred = model.test_step(dict(inputs=[image], data_samples=[sample]))[0]
    assert pred.pred_sem_seg.data.shape == (1, 80, 100)
    assert pred.seg_logits.data.shape == (150, 80, 100)
