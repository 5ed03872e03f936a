"""User mistakes with checkpoints, through the real tools: each ends with one actionable 'error:'
line on stderr, no traceback, no metrics and nothing written to the work dir. Every case runs
through the tool's main() in this process; three of them also through the tool's process (exit
status, stderr, no traceback)."""
import pickle
import warnings

import pytest
import torch

from conftest import REPO, run_tool, tool_main

CONFIG = REPO / 'configs' / 'mmpretrain' / 'demo' / 'vssd_t_demo.py'  # VSSD-T, 3 classes


class NotWeights:
    """An arbitrary pickled object, as in a checkpoint saved with the whole model."""


def _classifier_state(arch='tiny', num_classes=3, embed=512):
    import vssd_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='VSSD', arch=arch, out_indices=(3,)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=embed)))
    return model.state_dict()


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """Demo data and one file per mistake."""
    root = tmp_path_factory.mktemp('mistakes')
    run_tool('make_demo_data.py', 'imagenet', '--num-train', '2', '--num-val', '2', cwd=root)
    good = root / 'good.pth'
    torch.save({'state_dict': _classifier_state()}, good)
    data = good.read_bytes()
    (root / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (root / 'empty.pth').write_bytes(b'')
    (root / 'notes.pth').write_text('epoch 12: loss 0.31, acc 0.93\n')
    (root / 'random.pth').write_bytes(bytes(range(256)) * 8)
    torch.save({'state_dict': _classifier_state(), 'extra': NotWeights()}, root / 'pickled.pth',
               pickle_module=pickle)
    torch.save({'state_dict': _classifier_state('micro', embed=384)}, root / 'micro.pth')
    torch.save({'state_dict': _classifier_state(num_classes=1000)}, root / 'in1k_head.pth')
    backbone = {k: v for k, v in _classifier_state().items() if k.startswith('backbone.')}
    torch.save({'state_dict': {**backbone, 'roi_head.bbox_head.fc_cls.weight': torch.zeros(81, 4)}},
               root / 'mask_rcnn.pth')
    return root


CASES = [
    (('test.py', CONFIG, 'missing.pth'), ['checkpoint not found: missing.pth']),
    (('test.py', CONFIG, 'empty.pth'), ['checkpoint empty.pth is empty (0 bytes)']),
    (('test.py', CONFIG, 'truncated.pth'), ['checkpoint truncated.pth is truncated',
                                           'save or download it again']),
    (('test.py', CONFIG, 'notes.pth'), ["notes.pth is a text file (it starts with 'epoch 12"]),
    (('test.py', CONFIG, 'random.pth'), ['random.pth is not a PyTorch checkpoint']),
    (('test.py', CONFIG, 'pickled.pth'), ['pickled.pth holds pickled Python objects besides '
                                          'tensors', 'NotWeights']),
    (('test.py', CONFIG, 'micro.pth'), [
        'micro.pth does not fit the model of', 'an ImageClassifier (mmpretrain) checkpoint with '
        'VSSD-Micro', 'builds an ImageClassifier (mmpretrain) with VSSD-Tiny',
        'It fits configs/mmpretrain/vssd_m_8xb128_in1k.py']),
    (('test.py', CONFIG, 'in1k_head.pth'), ['in1k_head.pth does not fit the model of']),
    (('test.py', CONFIG, 'mask_rcnn.pth'), [
        'a Mask R-CNN (mmdet) checkpoint with VSSD-Tiny',
        'It fits configs/mmdet/mask_rcnn_vssd_t_1x.py or configs/mmdet/mask_rcnn_vssd_t_3x_ms.py']),
    (('train.py', CONFIG, '--resume', 'micro.pth'), ['micro.pth does not fit the model of']),
    (('train.py', CONFIG, '--resume', 'truncated.pth'), ['checkpoint truncated.pth is truncated']),
]


PROCESS_CASES = [CASES[0], CASES[5], CASES[9]]   # missing, pickled objects, train.py --resume


def _assert_one_actionable_line(errors, expected):
    assert len(errors) == 1, errors
    for text in expected:
        assert text in errors[0], (text, errors[0])


@pytest.mark.parametrize('args, expected', PROCESS_CASES,
                         ids=[f'{a[0]}-{a[-1]}' for a, _ in PROCESS_CASES])
def test_mistake_is_one_actionable_line(workspace, args, expected):
    work_dir = workspace / f'work_{args[0]}_{args[-1]}'
    proc = run_tool(*args, '--work-dir', work_dir, cwd=workspace, check=False)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    _assert_one_actionable_line(
        [line for line in proc.stderr.splitlines() if line.startswith('error:')], expected)
    assert 'weights_only=False' not in proc.stderr
    assert 'accuracy' not in proc.stdout + proc.stderr
    assert not work_dir.exists()


@pytest.fixture(scope='module')
def mains():
    return {name: tool_main(name) for name in ('test.py', 'train.py')}


@pytest.mark.parametrize('args, expected', CASES, ids=[f'{a[0]}-{a[-1]}' for a, _ in CASES])
def test_main_stops_at_the_mistake(mains, workspace, monkeypatch, capsys, args, expected):
    monkeypatch.chdir(workspace)
    work_dir = workspace / f'work_main_{args[0]}_{args[-1]}'
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as stop:
        warnings.simplefilter('always')   # every warning, also one an earlier case raised
        mains[args[0]]([*map(str, args[1:]), '--work-dir', str(work_dir)])
    printed = capsys.readouterr()
    _assert_one_actionable_line([line for line in [str(stop.value.code), *printed.err.splitlines()]
                                 if line.startswith('error:')], expected)
    assert not any('weights_only=False' in str(w.message) for w in caught)
    assert 'weights_only=False' not in printed.err
    assert 'accuracy' not in printed.out + printed.err
    assert not work_dir.exists()


def test_each_checkpoint_file_is_read_once(mains, workspace, monkeypatch, capsys):
    """tools/test.py CONFIG FILE (checked before the Runner is built) and the load_from of
    tools/train.py's Runner (read by mmengine's load): torch.load opens the file once, not once
    to check and again to load."""
    import collections
    import os.path as osp
    reads = collections.Counter()
    load = torch.load

    def counting_load(f, *args, **kwargs):
        reads[osp.basename(str(f))] += 1
        return load(f, *args, **kwargs)
    monkeypatch.setattr(torch, 'load', counting_load)
    monkeypatch.chdir(workspace)
    mains['test.py']([str(CONFIG), 'good.pth', '--work-dir', 'read_once_test'])
    assert 'accuracy/top1' in capsys.readouterr().out
    assert reads == {'good.pth': 1}
    reads.clear()
    from vssd_mm.engine import build_runner, load_config
    cfg = load_config(str(CONFIG), {'load_from': 'good.pth', 'work_dir': 'read_once_train'})
    runner = build_runner(cfg)  # what tools/train.py builds; its load step:
    runner.load_or_resume()
    assert reads == {'good.pth': 1}
    weights = load('good.pth')['state_dict']
    assert all(torch.equal(v, weights[k]) for k, v in runner.model.state_dict().items())
