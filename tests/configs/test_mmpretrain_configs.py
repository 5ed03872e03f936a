"""configs/mmpretrain: every config builds and runs; the recipe equals the official release's."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs' / 'mmpretrain'
# letter: (arch, drop_path (effective: the release's classification/configs/vssd/*.yaml),
#          width, lr per 512, min lr per 512)
VARIANTS = {
    'm': ('micro', 0.2, 384, 5e-4, 5e-6),
    't': ('tiny', 0.2, 512, 5e-4, 5e-6),
    's': ('small', 0.4, 512, 3e-4, 3e-6),
    'b': ('base', 0.6, 768, 3e-4, 3e-6),
}
CONFIGS = [f'vssd_{v}_8xb128_in1k.py' for v in VARIANTS]
# MESA (the comments of the release's classification/configs/vssd/*.yaml):
# variant letter -> weight V
MESA_WEIGHTS = {'t': 1.0, 's': 1.5, 'b': 2.0}
MESA_CONFIGS = [f'vssd_{v}_8xb128_in1k_mesa.py' for v in MESA_WEIGHTS]
BATCH = 8 * 128
EMA_HOOK = dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL')


def _load(name):
    import vssd_mm  # noqa: F401
    return Config.fromfile(str(CONFIG_DIR / name))


def test_the_config_set_is_complete():
    assert sorted(p.name for p in CONFIG_DIR.glob('vssd_*.py')) == sorted(CONFIGS + MESA_CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_recipe_matches_the_release(name):
    cfg = _load(name)
    arch, drop_path, width, lr, min_lr = VARIANTS[name[len('vssd_')]]
    model = cfg.model
    assert model.type == 'ImageClassifier' and model.get('init_cfg') is None
    assert model.backbone == dict(type='VSSD', arch=arch, out_indices=(3, ),
                                  drop_path_rate=drop_path)
    assert model.neck.type == 'GlobalAveragePooling'
    assert model.head.in_channels == width and model.head.num_classes == 1000
    assert model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    assert model.head.init_cfg == dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)
    assert model.train_cfg.augments == [dict(type='Mixup', alpha=0.8),
                                        dict(type='CutMix', alpha=1.0)]

    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.weight_decay == 0.05
    assert opt.optimizer.betas == (0.9, 0.999) and opt.optimizer.eps == 1e-8
    assert opt.optimizer.lr == pytest.approx(lr * BATCH / 512)
    pw = opt.paramwise_cfg
    assert pw.norm_decay_mult == pw.bias_decay_mult == pw.flat_decay_mult == 0.
    assert opt.clip_grad == dict(max_norm=5.0)
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.convert_to_iter_based) == ('LinearLR', 20, True)
    assert warmup.start_factor * opt.optimizer.lr == pytest.approx(5e-7 * BATCH / 512)
    assert (cosine.type, cosine.begin, cosine.convert_to_iter_based) == \
        ('CosineAnnealingLR', 20, True)
    assert cosine.eta_min == pytest.approx(min_lr * BATCH / 512)
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.train_dataloader.batch_size == 128 and cfg.auto_scale_lr.base_batch_size == BATCH
    assert cfg.custom_hooks == [EMA_HOOK]

    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop'].scale == 224
    assert train['RandomResizedCrop'].interpolation == 'bicubic'
    ra = train['RandAugment']
    assert (ra.policies, ra.num_policies, ra.magnitude_level, ra.magnitude_std) == \
        ('timm_increasing', 2, 9, 0.5)
    assert train['RandomErasing'].erase_prob == 0.25 and train['RandomErasing'].mode == 'rand'
    assert train['RandomFlip'].prob == 0.5
    test = {t['type']: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test['ResizeEdge'].scale == 256 and test['CenterCrop'].crop_size == 224
    assert cfg.test_dataloader.dataset.data_root == 'data/imagenet'


def test_weight_decay_spares_every_one_dimensional_parameter():
    """As the release: no decay on norms, biases, A_log, D, dt_bias (all 1-D); 0.05 elsewhere."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    cfg = _load('vssd_m_8xb128_in1k.py')
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    shapes = dict((n, p.dim()) for n, p in model.named_parameters())
    for n, wd in decay.items():
        expected = 0. if shapes[n] == 1 else 0.05
        assert wd == expected, (n, wd)
    assert decay['backbone.layers.0.blocks.0.attn.A_log'] == 0
    assert decay['backbone.layers.0.blocks.0.cpe1.weight'] == 0.05


@pytest.mark.parametrize('name', MESA_CONFIGS)
def test_mesa_config_is_the_plain_recipe_plus_mesa(name):
    """The same recipe as the variant's plain config; only the classifier type and the hook
    differ (weight V of the release, start at 25 % of the epochs)."""
    letter = name[len('vssd_')]
    cfg, plain = _load(name), _load(f'vssd_{letter}_8xb128_in1k.py')
    assert cfg.model.type == 'MESAClassifier'
    assert cfg.custom_hooks == [
        EMA_HOOK, dict(type='MESAHook', weight=MESA_WEIGHTS[letter], start_ratio=0.25)]
    cfg.model.type = plain.model.type
    cfg.custom_hooks = plain.custom_hooks
    assert cfg.to_dict() == plain.to_dict()


@pytest.mark.parametrize('name', CONFIGS + MESA_CONFIGS[:1])
def test_builds_and_runs_train_and_predict(name):
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    cfg = _load(name)
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.init_weights()
    data = dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
                data_samples=[DataSample().set_gt_label(i) for i in (3, 7)])
    losses = model(**model.data_preprocessor(data, training=True), mode='loss')
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(data, training=False), mode='predict')
    assert preds[0].pred_score.shape == (1000, )


def test_ema_averages_batchnorm_statistics_too():
    """The configs' EMAHook averages the whole state dict, as timm's ModelEma in the release:
    after a training step the EMA's BN running variance is the lerp of old and new, not a copy."""
    from types import SimpleNamespace

    from mmengine.registry import HOOKS
    from mmpretrain.registry import MODELS
    cfg = _load('vssd_m_8xb128_in1k.py')
    model = MODELS.build(cfg.model)
    hook_cfg = dict(cfg.custom_hooks[0])
    hook_cfg.pop('priority')  # the Runner's, not the hook's
    hook = HOOKS.build(hook_cfg)
    runner = SimpleNamespace(model=model, iter=0)
    hook.before_run(runner)
    hook.after_train_iter(runner, 0)  # the EMA's first update copies the model
    bn = next(n for n, b in model.named_buffers() if n.endswith('running_var'))
    before = dict(model.named_buffers())[bn].clone()
    model.train()
    model.backbone(torch.randn(2, 3, 64, 64))  # updates BN statistics
    after = dict(model.named_buffers())[bn]
    assert not torch.allclose(before, after)
    runner.iter = 1
    hook.after_train_iter(runner, 1)
    ema = dict(hook.ema_model.module.named_buffers())[bn]
    torch.testing.assert_close(ema, before + hook_cfg['momentum'] * (after - before))
