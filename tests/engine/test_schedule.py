"""tools/train.py --epochs N / --iters N: the schedule scaled with the run (the LR the runner
sets, read from its log); a length changed without them is one warning line."""
import re

import pytest
from mmengine.config import Config

from conftest import FIXTURES, REPO, run_tool
from vssd_mm.engine import ToolError
from vssd_mm.engine.schedule import (check_schedule_builds, scale_schedule,
                                     schedule_outside_the_run)


def _config(relative):
    import vssd_mm  # noqa: F401
    return Config.fromfile(str(REPO / 'configs' / relative))


def test_detection_1x_in_two_epochs():
    cfg = _config('mmdet/mask_rcnn_vssd_t_1x.py')
    line = scale_schedule(cfg, epochs=2)
    warmup, steps = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == 2 and cfg.train_cfg.val_interval == 1
    assert (warmup.begin, warmup.end) == (0, 167)  # 1000 iterations of 12 epochs -> of 2
    assert (steps.begin, steps.end, steps.milestones) == (0, 2, [1, 1])
    assert line == ('schedule scaled to the run: 12 -> 2 epochs; LinearLR: begin 0 -> 0, end '
                    '1000 -> 167; MultiStepLR: begin 0 -> 0, end 12 -> 2, milestones [8, 11] -> '
                    '[1, 1]')


def test_segmentation_160k_in_1600_iterations():
    cfg = _config('mmseg/upernet_vssd_t_512x512_160k_ade20k.py')
    scale_schedule(cfg, iters=1600)
    warmup, poly = cfg.param_scheduler
    assert cfg.train_cfg.max_iters == 1600 and cfg.train_cfg.val_interval == 160
    assert (warmup.end, poly.begin, poly.end) == (15, 15, 1600)
    assert cfg.default_hooks.checkpoint.interval == 160


def test_classification_300_epochs_in_three():
    cfg = _config('mmpretrain/vssd_t_8xb128_in1k.py')
    scale_schedule(cfg, epochs=3)
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 1 and cosine.begin == 1 and 'end' not in cosine  # cosine to the end
    assert cfg.train_cfg.max_epochs == 3


def test_the_flag_must_match_the_loop():
    with pytest.raises(ToolError, match=r'--iters does not apply: this config trains for 12 '
                                        r'epochs \(max_epochs\); use --epochs'):
        scale_schedule(_config('mmdet/mask_rcnn_vssd_t_1x.py'), iters=100)


def test_a_shortened_run_without_the_flag_is_one_warning_line():
    cfg = _config('mmdet/mask_rcnn_vssd_t_1x.py')
    assert schedule_outside_the_run(cfg) is None
    cfg.train_cfg.max_epochs = 2
    assert schedule_outside_the_run(cfg) == (
        'the run is 2 epochs but param_scheduler[1] (MultiStepLR): end 12, milestone 8, milestone '
        '11 lie beyond it and never take effect; tools/train.py --epochs 2 scales the schedule '
        'with the run')
    cls = _config('mmpretrain/vssd_t_8xb128_in1k.py')
    cls.train_cfg.max_epochs = 2
    assert 'param_scheduler[0] (LinearLR): end 20; param_scheduler[1] (CosineAnnealingLR): ' \
           'begin 20' in schedule_outside_the_run(cls)


def test_a_scheduler_that_would_end_before_it_begins_is_one_error_line():
    """mmengine cannot build a scheduler whose begin lies at or after the run's end when it runs to
    that end (a traceback from deep in the Runner): one error line instead."""
    cfg = _config('mmpretrain/demo/vssd_t_demo.py')
    check_schedule_builds(cfg)
    cfg.train_cfg.max_epochs = 2
    with pytest.raises(ToolError, match=r"the run is 2 epochs but param_scheduler\[1\] "
                       r"\(CosineAnnealingLR\) begins at 2 and runs to the run's end, so it would "
                       r"end before it begins; tools/train.py --epochs 2 scales"):
        check_schedule_builds(cfg)
    cfg.train_cfg.max_epochs = 3
    check_schedule_builds(cfg)


def _lr_at_each_epochs_end(log: str):
    rows = re.findall(r'Epoch\(train\)\s+\[(\d+)\]\[(\d+)/(\d+)\].*?lr: ([0-9.e+-]+)', log)
    return {int(e): float(lr) for e, i, n, lr in rows if i == n}


def test_the_runner_sets_the_scaled_learning_rates(tmp_path):
    """The toy model (4 iterations per epoch) with the detection 1x schedule's shape: a 2-epoch
    warm-up in iterations, steps at epochs 8 and 11 of 12. --epochs 3 puts both steps at epoch
    index 2; the plain --cfg-options run keeps them out of reach and says so."""
    config = tmp_path / 'toy_1x.py'
    config.write_text(
        f"_base_ = '{FIXTURES / 'toy_regression_config.py'}'\n"
        "train_cfg = dict(by_epoch=True, max_epochs=12)\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, "
        "end=8), dict(type='MultiStepLR', by_epoch=True, begin=0, end=12, milestones=[8, 11], "
        "gamma=0.1)]\n")
    proc = run_tool('train.py', config, '--work-dir', 'scaled', '--epochs', '3', cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert ('schedule scaled to the run: 12 -> 3 epochs; LinearLR: begin 0 -> 0, end 8 -> 2; '
            'MultiStepLR: begin 0 -> 0, end 12 -> 3, milestones [8, 11] -> [2, 2]') in log
    lrs = _lr_at_each_epochs_end(log)
    assert sorted(lrs) == [1, 2, 3]
    assert lrs[1] == pytest.approx(0.05) and lrs[2] == pytest.approx(0.05)
    assert lrs[3] == pytest.approx(0.0005)

    plain = run_tool('train.py', config, '--work-dir', 'plain', '--cfg-options',
                     'train_cfg.max_epochs=3', cwd=tmp_path)
    log = plain.stdout + plain.stderr
    assert 'never take effect; tools/train.py --epochs 3 scales the schedule' in log
    assert _lr_at_each_epochs_end(log)[3] == pytest.approx(0.05)  # no step reached


def test_bad_lengths_are_refused_by_the_parser(tmp_path):
    for value, message in (('0', 'must be >= 1, got 0'),
                           ('two', "must be a whole number, got 'two'")):
        proc = run_tool('train.py', FIXTURES / 'toy_regression_config.py', '--epochs', value,
                        cwd=tmp_path, check=False)
        assert proc.returncode == 2 and f'argument --epochs: {message}' in proc.stderr
