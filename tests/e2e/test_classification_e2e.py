"""VSSD ImageClassifier end to end through the user's tools on generated ImageFolder data."""
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
                    '--show-dir', 'pictures', cwd=tmp_path)
    test_top1 = float(re.findall(r'accuracy/top1: ([\d.]+)', proc.stdout + proc.stderr)[-1])
    # the checkpoint gives the accuracy training reported
    assert abs(test_top1 - val_top1[-1]) < 1e-6
    # --show-dir: one labelled picture per validation image (3 classes x 8), where mmpretrain's
    # own tools/test.py puts them
    assert len(list((tmp_path / 'pictures').glob('*.png'))) == 24
