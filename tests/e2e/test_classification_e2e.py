"""VSSD ImageClassifier end to end through the user's tools on generated ImageFolder data."""
import pickle
import re

from conftest import REPO, run_tool

CONFIG = REPO / 'configs' / 'mmpretrain' / 'demo' / 'vssd_t_demo.py'


def test_train_then_test_reports_top1(tmp_path):
    run_tool('make_demo_data.py', 'imagenet', '--num-train', '16', '--num-val', '8', cwd=tmp_path)
    proc = run_tool('train.py', CONFIG, '--work-dir', 'work', '--cfg-options',
                    'train_cfg.max_epochs=4', 'train_cfg.val_interval=2',
                    'default_hooks.checkpoint.interval=2', cwd=tmp_path)
    log = proc.stdout + proc.stderr
    val_top1 = [float(v) for v in re.findall(r'accuracy/top1: ([\d.]+)', log)]
    assert len(val_top1) == 2 and 'eta:' in log
    assert (tmp_path / 'work' / 'epoch_4.pth').is_file()
    proc = run_tool('test.py', CONFIG, 'work/epoch_4.pth', '--work-dir', 'test',
                    '--show-dir', 'pictures', '--out', 'preds.pkl', cwd=tmp_path)
    test_top1 = float(re.findall(r'accuracy/top1: ([\d.]+)', proc.stdout + proc.stderr)[-1])
    # the checkpoint gives the accuracy training reported
    assert abs(test_top1 - val_top1[-1]) < 1e-6
    # --show-dir: one labelled picture per validation image (3 classes x 8), where mmpretrain's
    # own tools/test.py puts them
    assert len(list((tmp_path / 'pictures').glob('*.png'))) == 24

    # mmpretrain's ImageClassificationInferencer on the same checkpoint predicts what test.py
    # dumped (the checkpoint's training state read as tools/test.py reads it: vssd_mm.compat)
    from mmpretrain.apis import ImageClassificationInferencer

    from vssd_mm.compat import allow_mmengine_training_state
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        expected = pickle.load(f)
    with allow_mmengine_training_state():
        inferencer = ImageClassificationInferencer(str(CONFIG), device='cpu',
                                                   pretrained=str(tmp_path / 'work/epoch_4.pth'))
    got = inferencer([str(tmp_path / p['img_path']) for p in expected])
    assert len(got) == len(expected) == 24
    for mine, theirs in zip(got, expected):
        assert mine['pred_label'] == int(theirs['pred_label'])
        assert abs(mine['pred_score'] - float(theirs['pred_score'].max())) < 1e-4
