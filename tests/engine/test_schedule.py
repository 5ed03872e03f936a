"""tools/train.py --epochs N / --iters N: the schedule scaled with the run (the LR the runner
sets, read from its log and from the scalars mmengine's LoggerHook writes); a length changed
without them is one warning line; a resumed run with them sets the learning rates of a fresh run
with the same flags."""
import json
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
    assert (warmup.begin, warmup.end) == (0, 1000)  # iterations: as long in a run of any length
    assert (steps.begin, steps.end, steps.milestones) == (0, 2, [1, 1])
    assert line == ('schedule scaled to the run: 12 -> 2 epochs; LinearLR: iterations kept; '
                    'MultiStepLR: begin 0 -> 0, end 12 -> 2, milestones [8, 11] -> [1, 1]')


def test_segmentation_160k_in_1600_iterations():
    cfg = _config('mmseg/upernet_vssd_t_512x512_160k_ade20k.py')
    scale_schedule(cfg, iters=1600)
    warmup, poly = cfg.param_scheduler
    assert cfg.train_cfg.max_iters == 1600 and cfg.train_cfg.val_interval == 160
    assert (warmup.end, poly.begin, poly.end) == (15, 15, 1600)
    assert cfg.default_hooks.checkpoint.interval == 160


@pytest.mark.parametrize('epochs', [1, 3, 150])
def test_classification_300_epochs_scaled_without_overlaps(epochs):
    """20 warm-up epochs of 300 (converted to iterations by the Runner): the same share of the
    new run, the cosine from the warm-up's end to the run's end, never both at once."""
    cfg = _config('mmpretrain/vssd_t_8xb128_in1k.py')
    scale_schedule(cfg, epochs=epochs)
    warmup, cosine = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == epochs
    assert warmup.end == cosine.begin == pytest.approx(epochs * 20 / 300)  # before: 20 -> 1, 0
    assert warmup.get('begin', 0) == 0 and 'end' not in cosine  # cosine to the end


def test_a_scheduler_left_without_two_steps_is_dropped():
    """A step scheduler of one epoch would only apply its first value; its time is over."""
    cfg = _config('mmdet/mask_rcnn_vssd_t_1x.py')
    line = scale_schedule(cfg, epochs=1)
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR']
    assert line.endswith('LinearLR: iterations kept; MultiStepLR dropped (1 epochs: fewer than 2 '
                         'steps)')


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


def _lr_of_each_iteration(work_dir) -> dict:
    """{iteration: lr} from the scalars.json mmengine's LoggerHook wrote (logged every
    iteration: the toy config's logger interval is 1)."""
    rows = [json.loads(line) for line in
            next(work_dir.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    return {row['iter']: row['lr'] for row in rows if 'lr' in row}


def test_the_runner_sets_the_scaled_learning_rates(tmp_path):
    """The toy model (4 iterations per epoch) with the detection 1x schedule's shape: a 2-epoch
    warm-up in iterations, steps at epochs 8 and 11 of 12. --epochs 3 keeps the warm-up's 8
    iterations and puts both steps at epoch index 2; the plain --cfg-options run keeps them out of
    reach and says so."""
    config = tmp_path / 'toy_1x.py'
    config.write_text(
        f"_base_ = '{FIXTURES / 'toy_regression_config.py'}'\n"
        "train_cfg = dict(by_epoch=True, max_epochs=12)\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, "
        "end=8), dict(type='MultiStepLR', by_epoch=True, begin=0, end=12, milestones=[8, 11], "
        "gamma=0.1)]\n")
    proc = run_tool('train.py', config, '--work-dir', 'scaled', '--epochs', '3', cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert ('schedule scaled to the run: 12 -> 3 epochs; LinearLR: iterations kept; '
            'MultiStepLR: begin 0 -> 0, end 12 -> 3, milestones [8, 11] -> [2, 2]') in log
    lrs = _lr_at_each_epochs_end(log)
    assert sorted(lrs) == [1, 2, 3]
    assert lrs[1] < 0.04 and lrs[2] == pytest.approx(0.05)  # the warm-up ends at iteration 8
    assert lrs[3] == pytest.approx(0.0005)
    each = _lr_of_each_iteration(tmp_path / 'scaled')
    assert [each[i] < each[i + 1] for i in range(1, 9)] == [True] * 7 + [False]

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


def _toy_config(tmp_path, name: str, body: str):
    config = tmp_path / name
    config.write_text(f"_base_ = '{FIXTURES / 'toy_regression_config.py'}'\n" + body)
    return config


def test_a_300_epoch_warm_up_and_cosine_in_one_epoch_follow_each_other(tmp_path, monkeypatch):
    """--epochs 1 of the classification schedule's shape (20 warm-up epochs of 300, then cosine;
    both converted to iterations): the Runner builds the warm-up over the first 2 of 32
    iterations (int(32 / 15)) and the cosine from there to the run's end, never both at once; at
    4 iterations an epoch the warm-up's 0.27 iterations are left out and the cosine starts at
    the first iteration. Checked on the schedulers the Runner built and the rates it set."""
    from vssd_mm.engine import build_runner, load_config, prepare_train_config
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    schedule = ("param_scheduler = [dict(type='LinearLR', start_factor=0.001, by_epoch=True, "
                "end=20, convert_to_iter_based=True), dict(type='CosineAnnealingLR', "
                "eta_min=1e-5, by_epoch=True, begin=20, convert_to_iter_based=True)]\n"
                "train_cfg = dict(by_epoch=True, max_epochs=300)\n")
    spans = {}
    for batch in (1, 8):
        config = _toy_config(tmp_path, f'toy_300e_b{batch}.py', schedule +
                             f"train_dataloader = dict(batch_size={batch})\n"
                             f"experiment_name = 'toy_300e_b{batch}'\n")
        cfg = prepare_train_config(load_config(str(config)), str(config),
                                   work_dir=f'b{batch}', epochs=1, data_check=False)
        runner = build_runner(cfg, epochs=1)
        runner.train()
        spans[batch] = [(type(s).__name__, s.begin, s.end) for s in runner.param_schedulers]
        lrs = _lr_of_each_iteration(tmp_path / f'b{batch}')
        assert sorted(lrs) == list(range(1, 32 // batch + 1))
        if batch == 1:  # the warm-up's two steps, then the cosine's first (its start value)
            assert lrs[1] == pytest.approx(0.05 * 0.001) and lrs[2] == lrs[3] == 0.05
        else:
            assert lrs[1] == 0.05
        cosine = 3 if batch == 1 else 1
        assert all(lrs[i] > lrs[i + 1] for i in range(cosine, len(lrs)))
    assert spans[1] == [('LinearLR', 0, 2), ('CosineAnnealingLR', 2, 32)]
    assert spans[8] == [('CosineAnnealingLR', 0, 4)]


RESUME_SCHEDULE = (
    # an iteration warm-up, a cosine converted to iterations and an epoch step, chained
    "train_cfg = dict(by_epoch=True, max_epochs=8)\n"
    "param_scheduler = [\n"
    "    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=3),\n"
    "    dict(type='CosineAnnealingLR', eta_min=1e-4, by_epoch=True, begin=2,\n"
    "         convert_to_iter_based=True),\n"
    "    dict(type='MultiStepLR', by_epoch=True, milestones=[6], gamma=0.5)]\n")


@pytest.fixture(scope='module')
def resume_runs(tmp_path_factory):
    """Fresh runs of the toy schedule with --epochs 2, 3 and 4 (4 iterations an epoch, a
    checkpoint each epoch): {epochs: work dir}."""
    tmp_path = tmp_path_factory.mktemp('resume')
    config = _toy_config(tmp_path, 'toy_resume.py', RESUME_SCHEDULE)
    for epochs in (2, 3, 4):
        run_tool('train.py', config, '--work-dir', f'fresh{epochs}', '--epochs', str(epochs),
                 cwd=tmp_path)
    return tmp_path, config


@pytest.mark.parametrize('trained, resumed', [(2, 4), (4, 3)])
def test_a_resumed_run_sets_the_rates_of_a_fresh_run_with_its_flags(resume_runs, trained,
                                                                    resumed):
    """Extending (2 -> 4 epochs) and shortening (4 -> 3): resumed after epoch 2 with
    --epochs N, the Runner sets from iteration 9 on exactly the rates a fresh --epochs N run set
    (before: the checkpoint's schedule went on, e.g. 1.6e-4 at every iteration of 2 -> 4)."""
    tmp_path, config = resume_runs
    work = f'resumed{trained}to{resumed}'
    proc = run_tool('train.py', config, '--work-dir', work, '--epochs', str(resumed), '--resume',
                    tmp_path / f'fresh{trained}' / 'epoch_2.pth', cwd=tmp_path)
    assert f'resume: the learning-rate schedule follows --epochs {resumed} from iteration 8' \
        in proc.stdout + proc.stderr
    fresh = _lr_of_each_iteration(tmp_path / f'fresh{resumed}')
    again = _lr_of_each_iteration(tmp_path / work)
    assert sorted(again) == list(range(9, 4 * resumed + 1))
    assert again == {i: fresh[i] for i in again}
    assert len(set(again.values())) > 1


def test_a_resume_without_flags_names_the_schedule_it_keeps(resume_runs):
    """The checkpoint of a --epochs 2 run resumed with the config's 8 epochs: mmengine goes on
    with the checkpoint's schedulers; one warning line says what differs and which flag follows
    the config."""
    tmp_path, config = resume_runs
    proc = run_tool('train.py', config, '--work-dir', 'plain', '--resume',
                    tmp_path / 'fresh2' / 'epoch_2.pth', '--cfg-options', 'train_cfg.max_epochs=3',
                    cwd=tmp_path, check=False)
    log = proc.stdout + proc.stderr
    warnings = [line for line in log.splitlines() if 'resume: the checkpoint' in line]
    assert len(warnings) == 1 and 'WARNING' in warnings[0], log[-3000:]
    assert ("learning-rate schedule differs from the config's (CosineAnnealingLR (iterations): "
            "begin 2 (config: 8), end 8 (config: 12), T_max 6 (config: 4); MultiStepLR (epochs): "
            "end 2 (config: 3), milestones [1] (config: [6])); this run goes on with the "
            "checkpoint's, as mmengine resumes. To follow a schedule of N epochs from the "
            "resumed iteration instead, resume with --epochs N (the flag the run was started "
            "with, to keep its schedule; --epochs 3 for the config's)") in warnings[0]
    same = run_tool('train.py', config, '--work-dir', 'same', '--resume',
                    tmp_path / 'fresh2' / 'epoch_1.pth', '--cfg-options', 'train_cfg.max_epochs=2',
                    cwd=tmp_path, check=False)
    assert 'resume: the checkpoint' not in same.stdout + same.stderr
