"""configs/mmdet: every config builds and runs; the recipe equals the official release's."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from pretrained_entries import entry_read

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs' / 'mmdet'
VARIANTS = {  # letter: (arch, drop_path_rate, stage channels) - the release's
# detection/configs/vssd/mask_rcnn_vssd_fpn_coco_*.py (base: see config)
    'm': ('micro', 0.1, [48, 96, 192, 384]),
    't': ('tiny', 0.2, [64, 128, 256, 512]),
    's': ('small', 0.4, [64, 128, 256, 512]),
    'b': ('base', 0.6, [96, 192, 384, 768]),
}
SCHEDULES = {'1x': (12, [8, 11]), '3x_ms': (36, [27, 33])}
CONFIGS = [f'mask_rcnn_vssd_{v}_{s}.py' for v in VARIANTS for s in SCHEDULES]


def _load(name):
    import vssd_mm  # noqa: F401
    return Config.fromfile(str(CONFIG_DIR / name))


def test_the_config_set_is_complete():
    found = sorted(p.name for p in CONFIG_DIR.glob('mask_rcnn_vssd_*.py'))
    assert found == sorted(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_recipe_matches_the_release(name):
    cfg = _load(name)
    letter, schedule = name[len('mask_rcnn_vssd_'):-3].split('_', 1)
    arch, drop_path, channels = VARIANTS[letter]
    epochs, milestones = SCHEDULES[schedule]

    backbone = cfg.model.backbone
    assert backbone.type == 'VSSD' and backbone.arch == arch
    assert backbone.drop_path_rate == drop_path
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert backbone.init_cfg.type == 'Pretrained'
    # the release's detection configs read an official file's 'model'; a mmengine file (one of
    # configs/mmpretrain trained with tools/train.py) has its weights in 'state_dict'
    assert entry_read(backbone.init_cfg) == {'official': 'model', 'mmengine': 'state_dict'}
    assert arch in backbone.init_cfg.checkpoint
    assert set(backbone) == {'type', 'arch', 'drop_path_rate', 'out_indices', 'init_cfg'}, \
        'Swin keys leaked into the backbone (missing _delete_)'
    assert cfg.model.neck.in_channels == channels
    assert cfg.custom_imports.imports == ['vssd_mm', 'vssd_mm.datasets']
    assert cfg.default_scope == 'mmdet'

    optim = cfg.optim_wrapper
    assert optim.type == 'OptimWrapper' and optim.get('clip_grad') is None
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert optim.paramwise_cfg.custom_keys['norm'] == dict(decay_mult=0.)

    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.begin, warmup.end) == \
        ('LinearLR', 0.001, False, 0, 1000)
    assert (steps.type, steps.by_epoch, steps.milestones, steps.gamma, steps.end) == \
        ('MultiStepLR', True, milestones, 0.1, epochs)
    assert cfg.train_cfg.max_epochs == epochs and cfg.train_cfg.val_interval == 1
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.val_evaluator.metric == ['bbox', 'segm']

    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    if schedule == '1x':
        assert types == ['LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomFlip',
                         'PackDetInputs']
        assert cfg.train_dataloader.dataset.pipeline[2].scale == (1333, 800)
    else:
        assert types == ['LoadImageFromFile', 'LoadAnnotations', 'RandomFlip', 'RandomChoice',
                         'PackDetInputs']
        crop_branch = cfg.train_dataloader.dataset.pipeline[3].transforms[1]
        assert crop_branch[1] == dict(type='RandomCrop', crop_type='absolute_range',
                                      crop_size=(384, 600), allow_negative_crop=True)
        assert [s[0] for s in crop_branch[2].scales] == list(range(480, 801, 32))

    assert cfg.tta_model.type == 'InstanceSegTTAModel'
    tta_views = cfg.tta_pipeline[1].transforms
    assert len(tta_views[0]) >= 2 and [f['prob'] for f in tta_views[1]] == [1., 0.]
    assert {'flip', 'flip_direction'} <= set(tta_views[-1][0].meta_keys)


def test_weight_decay_groups_follow_the_release():
    """'norm' parameters (norm1/2, attn.norm, outnorm*, stem/downsample BN) get no weight decay;
    everything else - A_log, D, dt_bias, biases, position-encoding convs - gets 0.05."""
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    cfg = _load('mask_rcnn_vssd_m_1x.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    assert len(decay) == len(names)
    bb = {n[len('backbone.'):]: wd for n, wd in decay.items() if n.startswith('backbone.')}
    assert bb['layers.0.blocks.0.norm1.weight'] == 0 and bb['outnorm3.bias'] == 0
    assert bb['layers.0.blocks.0.attn.norm.weight'] == 0
    assert bb['patch_embed.conv1.norm.weight'] == 0
    for kept in ('layers.0.blocks.0.attn.A_log', 'layers.0.blocks.0.attn.D',
                 'layers.0.blocks.0.attn.dt_bias', 'layers.0.blocks.0.cpe1.weight',
                 'layers.0.blocks.0.mlp.fc1.bias', 'layers.3.blocks.0.attn.to_qkv.weight'):
        assert bb[kept] == 0.05, kept
    assert {wd for n, wd in bb.items() if 'norm' in n} == {0}
    assert {wd for n, wd in bb.items() if 'norm' not in n} == {0.05}


@pytest.mark.parametrize('name', CONFIGS)
def test_builds_and_runs_train_and_test(name):
    from mmdet.registry import MODELS

    from benchmarks.support.batches import synthetic_batch
    cfg = _load(name)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(synthetic_batch('mmdet', 2, 96, 128), training=True)
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    total = sum(v.sum() if torch.is_tensor(v) else sum(v) for k, v in losses.items()
                if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.patch_embed.conv1.conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(synthetic_batch('mmdet', 2, 96, 128), training=False)
        preds = model(**data, mode='predict')
    assert len(preds) == 2
    inst = preds[0].pred_instances
    assert inst.bboxes.shape[1] == 4 and inst.masks.shape[1:] == (96, 128)
