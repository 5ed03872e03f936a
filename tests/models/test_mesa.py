"""MESA (vssd_mm/models/mesa.py): the self-distillation term equals the release's formula computed
by hand, is absent before the start epoch, and is switched on by the hook in a real Runner."""
import copy
import logging
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import vssd_mm  # noqa: F401  (registration)
from mmengine.hooks import EMAHook
from mmengine.registry import HOOKS
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

NUM_CLASSES = 5
ARCH = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), d_state=8)


def classifier_cfg(type_='MESAClassifier'):
    return dict(
        type=type_,
        backbone=dict(type='VSSD', arch=ARCH, out_indices=(3, ), drop_path_rate=0.),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=128,
                  loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))


def mixed_batch():
    """A fixed batch with soft (mixed) targets, as Mixup/CutMix hand them to the head."""
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(4, 3, 64, 64, generator=g)
    scores = torch.rand(4, NUM_CLASSES, generator=g).softmax(-1)
    return inputs, [DataSample().set_gt_score(s) for s in scores]


@pytest.fixture(scope='module')
def models():
    """(student MESAClassifier, plain ImageClassifier with the same weights, teacher: a copy of
    the student with other weights)."""
    torch.manual_seed(0)
    student = MODELS.build(classifier_cfg())
    student.init_weights()
    plain = MODELS.build(classifier_cfg('ImageClassifier'))
    plain.load_state_dict(student.state_dict())
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return student, plain, teacher


def test_without_a_teacher_the_loss_is_the_image_classifiers(models):
    student, plain, _ = models
    student.set_mesa_teacher(None, 1.0)
    inputs, samples = mixed_batch()
    losses = student.loss(inputs, samples)
    assert set(losses) == {'loss'}
    torch.testing.assert_close(losses['loss'], plain.loss(inputs, samples)['loss'],
                               rtol=0, atol=0)


def test_mesa_term_equals_the_formula_by_hand(models):
    student, plain, teacher = models
    inputs, samples = mixed_batch()
    teacher.train()
    student.set_mesa_teacher(teacher, 1.5)
    try:
        losses = student.loss(inputs, samples)
    finally:
        student.set_mesa_teacher(None, 1.0)
    assert teacher.training  # its mode is restored

    teacher.eval()  # the release's EMA model is in eval mode
    with torch.no_grad():
        teacher_logits = teacher.head(teacher.neck(teacher.backbone(inputs)))
    logits = student.head(student.neck(student.backbone(inputs)))
    target = teacher_logits.softmax(-1)
    by_hand = 1.5 * torch.mean(torch.sum(-target * F.log_softmax(logits, -1), dim=-1))
    torch.testing.assert_close(losses['loss_mesa'], by_hand, rtol=1e-6, atol=1e-7)
    assert losses['loss_mesa'] > 0.1  # the teacher's distribution is not the student's
    assert set(losses) == {'loss_cls', 'loss_mesa'}
    torch.testing.assert_close(losses['loss_cls'], plain.loss(inputs, samples)['loss'],
                               rtol=1e-6, atol=0)

    student.zero_grad()
    (losses['loss_cls'] + losses['loss_mesa']).backward()
    assert student.head.fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_the_teacher_is_not_part_of_the_model(models):
    student, _, teacher = models
    keys = set(student.state_dict())
    student.set_mesa_teacher(teacher, 1.0)
    try:
        assert set(student.state_dict()) == keys
        assert len(list(student.parameters())) == len(list(teacher.parameters()))
    finally:
        student.set_mesa_teacher(None, 1.0)


def fake_runner(model, hooks, max_epochs=8):
    from mmengine.runner import EpochBasedTrainLoop
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    return SimpleNamespace(model=model, hooks=hooks, epoch=0, max_epochs=max_epochs,
                           train_loop=loop, logger=logging.getLogger('test_mesa'))


def test_hook_sets_the_ema_model_from_the_start_epoch(models):
    student = models[0]
    ema = EMAHook(momentum=1e-4)
    hook = HOOKS.build(dict(type='MESAHook', weight=2.0, start_ratio=0.25))
    runner = fake_runner(student, [ema, hook], max_epochs=8)
    ema.before_run(runner)
    hook.before_train(runner)
    assert hook.start_epoch == 2
    seen = []
    for epoch in range(8):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        seen.append(student._mesa)
    assert seen[:2] == [None, None]
    assert all(s[0] is ema.ema_model.module and s[1] == 2.0 for s in seen[2:])
    hook.after_train(runner)
    assert student._mesa is None


@pytest.mark.parametrize('problem, message', [
    ('no_ema', 'add dict(type=\'EMAHook\''),
    ('plain_model', "type='MESAClassifier'"),
    ('iter_loop', 'EpochBasedTrainLoop'),
])
def test_hook_refuses_a_setup_it_cannot_serve(models, problem, message):
    student, plain, _ = models
    hook = HOOKS.build(dict(type='MESAHook'))
    ema = EMAHook()
    runner = fake_runner(plain if problem == 'plain_model' else student,
                         [hook] if problem == 'no_ema' else [ema, hook])
    if problem == 'iter_loop':
        runner.train_loop = object()
    with pytest.raises((TypeError, RuntimeError), match=message.replace('(', r'\(')):
        hook.before_train(runner)


@pytest.mark.parametrize('kwargs, message', [
    (dict(weight=0), 'weight must be > 0'),
    (dict(start_ratio=1.5), r'start_ratio is a fraction'),
])
def test_hook_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HOOKS.build(dict(type='MESAHook', **kwargs))


def test_runner_trains_with_mesa_from_the_start_epoch(tmp_path):
    """A real mmengine Runner: 4 epochs of 2 iterations, start_ratio 0.5 -> loss_mesa is logged
    in the last 4 iterations only, and the logged total loss is loss_cls + loss_mesa there."""
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    class Shapes(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return dict(inputs=torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8,
                                             generator=g),
                        data_samples=DataSample().set_gt_label(i % NUM_CLASSES))

    cfg = classifier_cfg()
    cfg['data_preprocessor'] = dict(type='ClsDataPreprocessor', num_classes=NUM_CLASSES,
                                    mean=[127.5] * 3, std=[64.] * 3)
    cfg['train_cfg'] = dict(augments=[dict(type='Mixup', alpha=0.8)])
    runner = Runner(
        model=cfg, work_dir=str(tmp_path), default_scope='mmpretrain',
        train_dataloader=dict(dataset=Shapes(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=4),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        custom_hooks=[dict(type='EMAHook', momentum=0.5, priority='ABOVE_NORMAL'),
                      dict(type='MESAHook', weight=1.0, start_ratio=0.5)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=10)),
        log_level='WARNING')
    runner.train()
    hub = runner.message_hub
    mesa = hub.get_scalar('train/loss_mesa').data[0]
    total = hub.get_scalar('train/loss').data[0]
    cls = hub.get_scalar('train/loss_cls').data[0]
    assert len(total) == 8 and len(mesa) == len(cls) == 4
    assert all(m > 0 for m in mesa)
    for t, c, m in zip(total[4:], cls, mesa):
        assert t == pytest.approx(c + m, rel=1e-6)
    assert runner.model._mesa is None  # switched off after training


def _official_file(path, num_classes=1000):
    """A file in the layout of the release's ``vssd_tiny_e300_with_mesa.pth`` (its
    save_checkpoint_ema: 'model', 'model_ema', optimizer and schedule state, epoch): the
    classifier's keys (stem, layers, final 'norm', 'head') from a freshly initialised VSSD-T,
    the final norm and head off their init; the EMA entry holds other weights."""
    from vssd_mm.models import VSSD
    torch.manual_seed(0)
    live = {k: v for k, v in VSSD('tiny').state_dict().items() if not k.startswith('outnorm')}
    live.update({'norm.weight': torch.rand(512) + .5, 'norm.bias': torch.randn(512) * .1,
                 'head.weight': torch.randn(num_classes, 512) * .2,
                 'head.bias': torch.randn(num_classes) * .1})
    ema = {k: v + .05 * torch.randn_like(v) if v.is_floating_point() else v
           for k, v in live.items()}
    torch.save({'model': live, 'model_ema': ema, 'optimizer': {'state': {}, 'param_groups': []},
                'lr_scheduler': {}, 'max_accuracy': 84.1, 'scaler': {}, 'epoch': 299,
                'steps': 0, 'max_accuray_ema': 84.0}, path)


def test_the_mesa_config_evaluates_an_official_mesa_file_as_the_plain_config(
        tmp_path, monkeypatch):
    """tools/test.py configs/mmpretrain/vssd_t_8xb128_in1k_mesa.py OFFICIAL_FILE: converted like
    the plain config's (a MESAClassifier's weights are an ImageClassifier's), the same scores
    as vssd_t_8xb128_in1k.py on the same file; --state-key model_ema evaluates the EMA."""
    import pickle

    from conftest import REPO, tool_main
    from vssd_mm.demo_data.imagefolder import make_imagefolder_demo
    monkeypatch.chdir(tmp_path)
    make_imagefolder_demo(tmp_path / 'data', num_train=1, num_val=1, image_size=(32, 32))
    _official_file(tmp_path / 'vssd_tiny_e300_with_mesa.pth')
    for name in ('vssd_t_8xb128_in1k', 'vssd_t_8xb128_in1k_mesa'):
        # the shipped config, its test set replaced by the generated 3-class folders at 64 px
        (tmp_path / f'{name}.py').write_text(
            f"_base_ = ['{REPO}/configs/mmpretrain/{name}.py']\n"
            'test_dataloader = dict(batch_size=3, num_workers=0, persistent_workers=False, '
            "dataset=dict(_delete_=True, type='CustomDataset', data_root='data', "
            "data_prefix='val', pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', "
            "scale=64), dict(type='PackInputs')]))\n"
            "test_evaluator = dict(type='Accuracy', topk=(1, ))\n")
    scores = {}
    for name, args in (('vssd_t_8xb128_in1k', []), ('vssd_t_8xb128_in1k_mesa', []),
                       ('vssd_t_8xb128_in1k_mesa', ['--state-key', 'model_ema'])):
        key = args[-1] if args else 'model'
        tool_main('test.py')([f'{name}.py', 'vssd_tiny_e300_with_mesa.pth', '--work-dir',
                              f'{name}_{key}', '--out', f'{name}_{key}.pkl', *args])
        # the entry evaluated: the converted file (read back) holds that entry's weights
        converted = torch.load(f'{name}_{key}/converted/vssd_tiny_e300_with_mesa_{key}_'
                               'mmpretrain.pth', weights_only=True)
        official = torch.load('vssd_tiny_e300_with_mesa.pth', weights_only=False)[key]
        weight = 'patch_embed.conv1.conv.weight'
        assert torch.equal(converted['state_dict'][f'backbone.{weight}'], official[weight])
        with open(f'{name}_{key}.pkl', 'rb') as f:
            scores[name, key] = torch.stack([torch.as_tensor(p['pred_score'])
                                             for p in pickle.load(f)])
    mesa = scores['vssd_t_8xb128_in1k_mesa', 'model']
    assert mesa.shape == (3, 1000)
    torch.testing.assert_close(mesa, scores['vssd_t_8xb128_in1k', 'model'], rtol=0, atol=0)
    assert not torch.allclose(mesa, scores['vssd_t_8xb128_in1k_mesa', 'model_ema'])
