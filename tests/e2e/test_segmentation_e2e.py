"""UperNet + VSSD end to end through the user's tools, on generated ADE20K-format data:
make_demo_data -> train -> resume -> test (single-scale, --tta, --out, --show-dir)."""
import re

import pytest

from conftest import REPO, run_tool

CONFIG = REPO / 'configs' / 'mmseg' / 'demo' / 'upernet_vssd_t_demo.py'
MIOU = re.compile(r'mIoU: (-?[\d.]+)')
SCHEDULE = ('param_scheduler.0.end=5', 'param_scheduler.1.begin=5')  # warm-up 5 iterations


def _last_miou(output: str) -> float:
    found = MIOU.findall(output)
    assert found, output[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The ADE-format demo dataset and UperNet VSSD-T trained on it for 24 iterations (5 of
    warm-up; the demo's schedule shape, shortened to keep the suite short: mIoU 27.7 % measured)."""
    root = tmp_path_factory.mktemp('seg_e2e')
    run_tool('make_demo_data.py', 'ade', '--num-train', '16', '--num-val', '4', cwd=root)
    proc = run_tool('train.py', CONFIG, '--work-dir', 'work', '--cfg-options',
                    *SCHEDULE, 'train_cfg.max_iters=24', 'train_cfg.val_interval=24',
                    'default_hooks.checkpoint.interval=24', 'param_scheduler.1.end=24',
                    cwd=root, timeout=1200)
    return root, proc.stdout + proc.stderr


def test_training_reports_miou_and_writes_checkpoints(trained):
    root, log = trained
    assert (root / 'work' / 'iter_24.pth').is_file()
    assert 'eta:' in log
    assert _last_miou(log) > 5.0  # percent; chance level of 4 classes is far below


def test_resume_continues_at_the_next_iteration(trained):
    root, _ = trained
    proc = run_tool('train.py', CONFIG, '--work-dir', 'work', '--resume', '--cfg-options',
                    *SCHEDULE, 'train_cfg.max_iters=28', 'train_cfg.val_interval=100',
                    'default_hooks.checkpoint.interval=4', 'param_scheduler.1.end=28',
                    'default_hooks.logger.interval=2', cwd=root)
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 24' in log
    assert 'Iter(train) [26/28]' in log and 'Iter(train) [10/' not in log
    assert (root / 'work' / 'iter_28.pth').is_file()


@pytest.mark.parametrize('tta', [False, True])
def test_test_tool_reports_miou(trained, tta):
    root, _ = trained
    args = ['--out', f'pred_png_{tta}', '--show-dir', f'vis_{tta}'] + (['--tta'] if tta else [])
    proc = run_tool('test.py', CONFIG, 'work/iter_24.pth', '--work-dir', f'test_{tta}', *args,
                    cwd=root)
    assert _last_miou(proc.stdout + proc.stderr) > 5.0
    assert len(list((root / f'pred_png_{tta}').glob('*.png'))) == 4
    assert len(list((root / f'vis_{tta}').rglob('*.png'))) == 4


def test_seg_inferencer_gives_the_test_tools_label_maps(trained):
    """mmseg's MMSegInferencer on the demo config and a demo-trained checkpoint gives the label
    maps tools/test.py --out writes (ADE20K's PNGs hold label + 1: reduce_zero_label)."""
    import cv2
    from mmseg.apis import MMSegInferencer

    from vssd_mm.compat import allow_mmengine_training_state
    root, _ = trained
    run_tool('test.py', CONFIG, 'work/iter_24.pth', '--work-dir', 'test_inferencer', '--out',
             'inferencer_ref', cwd=root)
    with allow_mmengine_training_state():
        inferencer = MMSegInferencer(model=str(CONFIG), weights=str(root / 'work' / 'iter_24.pth'),
                                     device='cpu')
    images = sorted((root / 'data/ade_demo/ADEChallengeData2016/images/validation').glob('*.jpg'))
    assert len(images) == 4
    got = inferencer([str(p) for p in images], return_datasamples=True)
    for image, sample in zip(images, got):
        expected = cv2.imread(str(root / 'inferencer_ref' / f'{image.stem}.png'),
                              cv2.IMREAD_UNCHANGED)
        mine = sample.pred_sem_seg.data[0].numpy() + 1
        assert mine.shape == expected.shape and (mine == expected).mean() > 0.999


def test_confusion_matrix_of_the_test_tools_dump_gives_its_ious(trained, monkeypatch, capsys):
    """tools/confusion_matrix.py on test.py --out's .pkl (two images; both tools in this
    process): the per-class IoU and the mIoU of its pixel matrix are those mmseg's IoUMetric
    logged in the same test run."""
    import json

    import numpy as np

    from conftest import tool_main
    root, _ = trained
    monkeypatch.chdir(root)
    tool_main('test.py')([str(CONFIG), 'work/iter_24.pth', '--work-dir', 'test_confusion',
                          '--out', 'preds.pkl', '--cfg-options',
                          'test_dataloader.dataset.indices=2'])
    log = '\n'.join(p.read_text() for p in (root / 'test_confusion').glob('*/*.log'))
    printed = {name: float(iou) for name, iou in
               re.findall(r'\|\s*(ground|square|circle|triangle)\s*\|\s*([\d.]+|nan)\s*\|', log)}
    capsys.readouterr()
    tool_main('confusion_matrix.py')([str(CONFIG), 'preds.pkl', '--out-dir', 'confusion'])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    saved = json.loads((root / 'confusion' / 'confusion_matrix.json').read_text())
    counts = np.array(saved['counts'], np.float64)
    union = counts.sum(0) + counts.sum(1) - np.diag(counts)
    ious = dict(zip(saved['labels'], 100 * np.diag(counts) / union))
    assert len(printed) == 4, log[-3000:]
    for name, iou in printed.items():  # NaN: a class in neither labels nor predictions
        assert abs(ious[name] - iou) < 0.006 or np.isnan(ious[name]) and np.isnan(iou), (
            ious, printed)
    assert f'mIoU {_last_miou(log):.2f} %' in line, line
