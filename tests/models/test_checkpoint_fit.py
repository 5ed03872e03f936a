"""Checkpoints that do not fit stop loudly: VSSD checks its own weights in any non-strict load
(mmengine's load_checkpoint, as stock mmdet/mmseg/mmpretrain tools use it), and check_fits names
what a whole-model file is and which config it fits."""
import pytest
import torch

from vssd_mm.models.checkpoints import (CheckpointMismatchError, UnreadableCheckpointError,
                                        check_fits, fitting_configs, identify, read_checkpoint,
                                        vssd_arch)

SMALL = dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), d_state=16)


def _classifier(arch, num_classes=3):
    import vssd_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    channels = (arch['embed_dim'] if isinstance(arch, dict) else {'micro': 48}[arch]) * 8
    return MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='VSSD', arch=arch, out_indices=(3,)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=channels)))


def test_stock_non_strict_load_of_another_backbone_is_named_in_one_line(tmp_path):
    """mmengine's non-strict load (load_from, EMAHook's copy, stock tools) keeps its semantics:
    what fits loads, the rest keeps its weights; VSSD names what does not fit in one line."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.runner import load_checkpoint
    path = tmp_path / 'other.pth'
    other = _classifier(dict(SMALL, d_state=8)).state_dict()
    torch.save({'state_dict': other}, path)
    model = _classifier(SMALL)
    before = model.backbone.patch_embed.conv3[1].conv.weight.clone()
    lines = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        load_checkpoint(model, str(path), strict=False, logger='silent')
    finally:
        logger.removeHandler(handler)
    (line, ) = [m for m in lines if m.startswith('VSSD:')]
    assert '\n' not in line
    assert line.startswith("VSSD: the checkpoint's weights under 'backbone.' do not fit this "
                           'backbone (checkpoint has a custom VSSD (embed_dim 32, depths (1, 1, '
                           '1, 1), d_state 8), model has a custom VSSD')
    assert 'shape mismatch (9): layers.0.blocks.0.attn.in_proj.weight: checkpoint' in line
    # what fits loaded (the stem), the rest kept its weights (torch's non-strict semantics)
    assert torch.equal(model.backbone.patch_embed.conv3[1].conv.weight,
                       other['backbone.patch_embed.conv3.1.conv.weight'])
    assert not torch.equal(before, other['backbone.patch_embed.conv3.1.conv.weight'])


def test_stock_non_strict_load_of_a_fitting_file_and_of_a_new_head(tmp_path):
    from mmengine.runner import load_checkpoint
    source = _classifier(SMALL)
    path = tmp_path / 'same.pth'
    torch.save({'state_dict': source.state_dict()}, path)
    target = _classifier(SMALL, num_classes=7)  # fine-tuning: another head is the user's choice
    load_checkpoint(target, str(path), strict=False, logger='silent')
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[key], value), key


def test_check_fits_names_task_variant_and_config():
    micro = _classifier('micro').state_dict()
    task, description, arch = identify(micro)
    assert (task, description) == ('classification', 'an ImageClassifier (mmpretrain) checkpoint')
    assert fitting_configs(task, arch) == ['configs/mmpretrain/vssd_m_8xb128_in1k.py']
    with pytest.raises(CheckpointMismatchError) as info:
        check_fits(_classifier(SMALL), {'state_dict': micro}, 'micro.pth', 'my_config.py')
    first, *report = str(info.value).splitlines()
    assert first.startswith('micro.pth does not fit the model of my_config.py: it is an '
                            'ImageClassifier (mmpretrain) checkpoint with VSSD-Micro')
    assert 'It fits configs/mmpretrain/vssd_m_8xb128_in1k.py.' in first
    assert report and report[0].lstrip().startswith(('missing', 'unexpected', 'shape mismatch'))
    seg = {'backbone.' + k: v for k, v in micro.items() if k.startswith('backbone.')}
    seg['decode_head.conv_seg.weight'] = torch.zeros(1)
    assert identify(seg)[:2] == ('segmentation', 'a UperNet (mmseg) checkpoint')
    assert vssd_arch({}) is None and identify({'fc.weight': torch.zeros(1)})[2] is None


def test_a_fitting_whole_model_passes_without_num_batches_tracked():
    model = _classifier(SMALL)
    state = {k: v for k, v in model.state_dict().items() if 'num_batches_tracked' not in k}
    check_fits(model, {'state_dict': state}, 'ok.pth')
    check_fits(model, {'state_dict': {'module.' + k: v for k, v in state.items()}}, 'ddp.pth')


def test_unreadable_files_are_one_line(tmp_path):
    torch.save({'state_dict': {'w': torch.zeros(64, 64)}}, tmp_path / 'good.pth')
    data = (tmp_path / 'good.pth').read_bytes()
    torch.save({'w': torch.zeros(64, 64)}, tmp_path / 'legacy.pth',
               _use_new_zipfile_serialization=False)
    legacy = (tmp_path / 'legacy.pth').read_bytes()
    files = {'cut.pth': data[:-40], 'legacy_cut.pth': legacy[:len(legacy) // 2],
             'zero.pth': b'', 'bin.pth': b'\x00\x01\x02' * 30}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    assert torch.equal(read_checkpoint(str(tmp_path / 'good.pth'))['state_dict']['w'],
                       torch.zeros(64, 64))
    expected = {'cut.pth': 'is truncated', 'legacy_cut.pth': 'is truncated or corrupt',
                'zero.pth': 'is empty', 'bin.pth': 'is not a PyTorch checkpoint',
                'nothing.pth': 'checkpoint not found: ', '.': '(it is a directory)'}
    for name, text in expected.items():
        with pytest.raises(UnreadableCheckpointError) as info:
            read_checkpoint(str(tmp_path / name))
        assert text in str(info.value) and '\n' not in str(info.value), (name, info.value)


def test_check_fits_of_the_same_kind_of_model_says_what_differs():
    """Same task and backbone, another head size: no 'it is X; it builds X' with X twice."""
    with pytest.raises(CheckpointMismatchError) as info:
        check_fits(_classifier(SMALL, num_classes=7),
                   {'state_dict': _classifier(SMALL).state_dict()}, 'mine.pth', 'my_config.py')
    first, *report = str(info.value).splitlines()
    assert first.endswith('my_config.py builds the same kind of model, which differs in the keys '
                          'below.')
    assert report == ['  shape mismatch (2): head.fc.weight: checkpoint (3, 256) vs model '
                      '(7, 256), head.fc.bias: checkpoint (3,) vs model (7,)']
