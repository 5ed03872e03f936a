"""VSSD's init_cfg checkpoints: official classification / detection files, the EMA entry,
another variant, a missing file, the deprecated ``pretrained``, initializers before weights."""
import logging

import pytest
import torch
from conftest import REPO

from vssd_mm.models import VSSD
from vssd_mm.models.checkpoints import CheckpointMismatchError


def _official_classification_state(model: VSSD, num_classes=1000):
    """A state dict in the official classifier layout: no outnorms, final norm + head."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith('outnorm')}
    width = model.num_features[-1]
    sd.update({'norm.weight': torch.ones(width), 'norm.bias': torch.zeros(width),
               'head.weight': torch.zeros(num_classes, width),
               'head.bias': torch.zeros(num_classes)})
    return sd


def test_official_classification_checkpoint_loads(tmp_path):
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': _official_classification_state(source), 'epoch': 299}, path)
    target = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    target.init_weights()
    got, want = target.state_dict(), source.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want if not k.startswith('outnorm'))


def test_model_ema_entry_and_detection_layout(tmp_path):
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'official.pth'
    ema = {k: v + 1 if v.is_floating_point() else v
           for k, v in _official_classification_state(source).items()}
    torch.save({'model': _official_classification_state(source), 'model_ema': ema}, path)
    target = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                         state_key='model_ema'))
    target.init_weights()
    key = 'layers.0.blocks.0.attn.A_log'
    torch.testing.assert_close(target.state_dict()[key], source.state_dict()[key] + 1)

    # mmdet / mmseg layout: {'state_dict': {'backbone.*', 'neck.*', ...}}, outnorms included
    det = tmp_path / 'mask_rcnn.pth'
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in source.state_dict().items()},
                               'neck.lateral_convs.0.conv.weight': torch.zeros(1)}}, det)
    target = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(det)))
    target.init_weights()
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_checkpoint_of_another_variant_is_an_error(tmp_path):
    path = tmp_path / 'micro.pth'
    torch.save({'model': _official_classification_state(VSSD('micro'))}, path)
    model = VSSD('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match=r'checkpoint has VSSD-Micro \(embed_dim 48, '
                       r'depths \(2, 2, 8, 4\).*model has VSSD-Tiny \(embed_dim 64, depths '
                       r'\(2, 4, 8, 4\)'):
        model.init_weights()


def test_missing_file_and_the_deprecated_pretrained_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoint not found: .*nope.pth'):
        VSSD('micro', init_cfg=dict(type='Pretrained',
                                    checkpoint=str(tmp_path / 'nope.pth'))).init_weights()
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': _official_classification_state(source)}, path)
    with pytest.warns(DeprecationWarning, match='pretrained` is deprecated'):
        target = VSSD('micro', pretrained=str(path))  # what mmseg's EncoderDecoder passes down
    target.init_weights()
    key = 'layers.2.blocks.1.attn.in_proj.weight'
    assert torch.equal(target.state_dict()[key], source.state_dict()[key])
    with pytest.raises(ValueError, match='either as init_cfg or as pretrained'):
        VSSD('micro', pretrained=str(path), init_cfg=dict(type='Pretrained', checkpoint='x'))


def test_initializers_in_a_list_with_pretrained_load_the_checkpoint_last(tmp_path):
    source = VSSD('micro')
    path = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': _official_classification_state(source)}, path)
    model = VSSD('micro', init_cfg=[dict(type='Constant', layer='Linear', val=0.5),
                                    dict(type='Pretrained', checkpoint=str(path))])
    model.init_weights()
    for key, value in source.state_dict().items():
        if not key.startswith('outnorm'):
            assert torch.equal(model.state_dict()[key], value), key


def test_a_detectors_backbone_loads_into_fewer_outputs_and_names_the_unused_norms(tmp_path):
    """A Mask R-CNN backbone (four out norms) into a VSSD that outputs only the last stage: the
    three other out norms are unused, named in the log line; the rest loads."""
    from mmengine.logging import MMLogger
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'mask_rcnn.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, path)
    target = VSSD('micro', out_indices=(3, ), init_cfg=dict(type='Pretrained',
                                                             checkpoint=str(path)))
    logger = MMLogger.get_current_instance()
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.addHandler(handler)
    try:
        target.init_weights()
    finally:
        logger.removeHandler(handler)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())
    (line, ) = [m for m in lines if m.startswith('VSSD: loaded')]
    assert 'unused (out norms of stages this model does not output): outnorm0.weight' in line
    assert 'outnorm2.bias' in line and 'outnorm3' not in line.split('unused')[1]


def test_a_refusal_of_the_same_architecture_says_what_differs(tmp_path):
    """Same variant, one block's weight missing: the message does not name VSSD-Micro twice as
    if they differed; it says they are the same and lists the missing key."""
    state = dict(VSSD('micro').state_dict())
    del state['layers.1.blocks.0.mlp.fc1.weight']
    path = tmp_path / 'damaged.pth'
    torch.save({'state_dict': state}, path)
    model = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError) as info:
        model.init_weights()
    first, *report = str(info.value).splitlines()
    assert 'checkpoint and model have the same VSSD-Micro' in first and 'model has' not in first
    assert report[0] == '  missing (1): layers.1.blocks.0.mlp.fc1.weight'


@pytest.fixture(scope='module')
def mmpretrain_training_file(tmp_path_factory):
    """A VSSD-T ImageClassifier checkpoint as tools/train.py of configs/mmpretrain writes it:
    mmengine's ``Runner.save_checkpoint`` (meta, state_dict, message_hub, optimizer) on the demo
    config and generated ImageFolder data; weights moved off their init so that nothing matches
    by chance. Returns the file's path."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from vssd_mm.demo_data.imagefolder import make_imagefolder_demo
    root = tmp_path_factory.mktemp('mmpretrain_file')
    make_imagefolder_demo(root / 'data', num_train=3, num_val=3, image_size=(32, 32))
    cfg = Config.fromfile(str(REPO / 'configs/mmpretrain/demo/vssd_t_demo.py'))
    cfg.work_dir = str(root / 'work')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(root / 'data')
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    torch.manual_seed(1)
    with torch.no_grad():
        for value in runner.model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand_like(value))
    runner.message_hub.update_scalar('train/loss', 1.25)  # as training logs it: a HistoryBuffer
    runner.save_checkpoint(str(root), 'epoch_1.pth', save_param_scheduler=False)
    return root / 'epoch_1.pth'


def test_a_mmpretrain_training_file_initialises_the_detection_configs_backbone(
        mmpretrain_training_file):
    """configs/mmdet/mask_rcnn_vssd_t_1x.py with the user's own mmpretrain checkpoint as
    init_cfg.checkpoint: the detector's backbone holds the file's tensors; the classifier's
    final norm (outnorm3) and head are not loaded, the out norms start fresh (the release's
    rule)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    file = torch.load(mmpretrain_training_file, weights_only=False)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(file)
    cfg = Config.fromfile(str(REPO / 'configs/mmdet/mask_rcnn_vssd_t_1x.py'))
    cfg.model.backbone.init_cfg.checkpoint = str(mmpretrain_training_file)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
    detector.init_weights()
    got = detector.backbone.state_dict()
    weights = {k[len('backbone.'):]: v for k, v in file['state_dict'].items()
               if k.startswith('backbone.')}
    assert len(weights) > 300
    for key, value in weights.items():
        if key.startswith('outnorm'):
            assert not torch.equal(got[key], value), key
        else:
            assert torch.equal(got[key], value), key
    for i in range(4):
        assert torch.equal(got[f'outnorm{i}.weight'], torch.ones(64 * 2 ** i))
        assert torch.equal(got[f'outnorm{i}.bias'], torch.zeros(64 * 2 ** i))


def test_a_pinned_entry_the_file_lacks_names_the_entries_it_has(mmpretrain_training_file):
    model = VSSD('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(mmpretrain_training_file),
                                       state_key='model'))
    with pytest.raises(CheckpointMismatchError) as info:
        model.init_weights()
    message = str(info.value)
    assert message.startswith(f'{mmpretrain_training_file}: the checkpoint has no \'model\' '
                              'entry; its entries: meta, state_dict (')
    assert 'tensors), message_hub, optimizer' in message and '\n' not in message
    assert "Leave init_cfg's state_key out" in message
