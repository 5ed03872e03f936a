"""tools/analyze_logs.py: the curves it plots are the values mmengine's LoggerHook wrote (read back
from the JSON file here), of the runs asked for, in a PNG of the size asked."""
import json
import shutil

import cv2
import pytest

from conftest import FIXTURES, tool_main

EPOCHS, ITERS_PER_EPOCH = 2, 4  # the toy config: 32 samples, batch 8


def _train(work_dir, by_epoch: bool):
    """A real mmengine run of the toy config, validated after each epoch (by_epoch) or every 4
    iterations (iteration-based logging, as mmseg's configs do)."""
    from mmengine.config import Config
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    from mmengine.visualization import Visualizer
    managers = (DefaultScope, MMLogger, Visualizer, MessageHub)
    before = {cls: list(cls._instance_dict) for cls in managers}
    cfg = Config.fromfile(str(FIXTURES / 'toy_regression_config.py'))
    cfg.val_dataloader, cfg.val_evaluator, cfg.val_cfg = cfg.test_dataloader, cfg.test_evaluator, {}
    if by_epoch:
        cfg.train_cfg.val_interval = 1
    else:
        cfg.train_cfg = dict(by_epoch=False, max_iters=EPOCHS * ITERS_PER_EPOCH, val_interval=4)
        cfg.param_scheduler = [dict(type='MultiStepLR', milestones=[4], gamma=0.5, by_epoch=False)]
        cfg.log_processor = dict(by_epoch=False)
        cfg.default_hooks.logger.log_metric_by_epoch = False
        cfg.default_hooks.checkpoint.by_epoch = False
    cfg.work_dir = str(work_dir)
    Runner.from_cfg(cfg).train()
    for cls, names in before.items():  # the runner's instances stay out of the other tests
        for name in [n for n in cls._instance_dict if n not in names]:
            cls._instance_dict.pop(name)
    return work_dir


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    # the config's custom_imports names the test fixture module toy_regression (not installed):
    # found as run_tool's PYTHONPATH finds it, restored after the module as monkeypatch does
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(FIXTURES))
        root = tmp_path_factory.mktemp('logs')
        yield {'epoch': _train(root / 'by_epoch', True),
               'iteration': _train(root / 'by_iter', False)}


def _json_log(work_dir):
    files = sorted(work_dir.glob('*/vis_data/*.json'))
    return [f for f in files if f.name != 'scalars.json'][-1]


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize('unit', ['epoch', 'iteration'])
def test_plotted_points_are_the_logged_values(runs, unit):
    from vssd_mm.visualization import training_curves as curves
    work_dir = runs[unit]
    records = _records(_json_log(work_dir))
    train = [r for r in records if 'iter' in r]
    val = [r for r in records if 'mse' in r]
    run = curves.read_log(str(work_dir))
    keys = curves.default_keys([run])
    assert keys == ['loss', 'lr', 'mse']
    fig = curves.plot_curves([run], keys)
    by_title = {ax.get_title(): ax for ax in fig.axes}
    for key, rows, x in (('loss', train, 'iter'), ('lr', train, 'iter'), ('mse', val, 'step')):
        (line,) = by_title[key].get_lines()
        assert line.get_xydata().tolist() == [[r[x], r[key]] for r in rows], key
    assert by_title['loss'].get_xlabel() == 'iteration'
    assert by_title['mse'].get_xlabel() == unit
    # validated after each epoch / every 4 of the 8 iterations, as the config asks
    expected_steps = [1, 2] if unit == 'epoch' else [4, 8]
    assert [x for x, _ in by_title['mse'].get_lines()[0].get_xydata()] == expected_steps
    # the lr the schedulers set: halved after epoch 1 / iteration 4
    assert sorted({r['lr'] for r in train}) == [0.025, 0.05]


def test_tool_writes_the_size_asked_and_one_line_per_run(runs, tmp_path, capsys):
    out = tmp_path / 'curves.png'
    json_file = _json_log(runs['iteration'])
    tool_main('analyze_logs.py')([str(runs['epoch']), str(json_file), '--out', str(out),
                                  '--size', '640', '480'])
    picture = cv2.imread(str(out))
    assert picture.shape == (480, 640, 3)
    assert picture.std() > 10  # curves drawn, not a blank canvas
    printed = capsys.readouterr().out
    for work_dir, unit in ((runs['epoch'], 'epoch'), (runs['iteration'], 'iteration')):
        val = [r for r in _records(_json_log(work_dir)) if 'mse' in r]
        best = min(val, key=lambda r: r['mse'])  # lower mse is better
        last_loss = [r for r in _records(_json_log(work_dir)) if 'iter' in r][-1]['loss']
        assert f'{best["mse"]:.4g}  {unit} {best["step"]}' in printed
        assert f'{last_loss:.4g}' in printed


def test_several_runs_share_each_subplot(runs):
    from vssd_mm.visualization import training_curves as curves
    logs = [curves.read_log(str(runs['epoch'])), curves.read_log(str(_json_log(runs['iteration'])))]
    fig = curves.plot_curves(logs, ['loss', 'mse'])
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ['by_epoch', _json_log(runs['iteration']).stem]
        assert ax.get_legend() is not None


def test_work_dir_means_its_newest_run_with_a_log(runs, tmp_path):
    from vssd_mm.visualization import training_curves as curves
    work_dir = tmp_path / 'wd'
    shutil.copytree(runs['epoch'], work_dir)
    newer = work_dir / '29991231_000000' / 'vis_data'
    newer.mkdir(parents=True)
    (newer / '29991231_000000.json').write_text(
        json.dumps({'lr': 0.1, 'loss': 7.0, 'epoch': 1, 'iter': 3, 'step': 3}) + '\n')
    (work_dir / '29991231_000001').mkdir()  # a test run's folder: no training log
    run = curves.read_log(str(work_dir))
    assert run.path == str(newer / '29991231_000000.json')
    assert run.train['loss'] == [(3, 7.0)]


def test_none_of_the_keys_is_one_error_line_naming_the_keys_there(runs, tmp_path):
    with pytest.raises(SystemExit) as stop:
        tool_main('analyze_logs.py')([str(runs['epoch']), '--keys', 'acc',
                                      '--out', str(tmp_path / 'c.png')])
    message = str(stop.value)
    assert message.startswith('error: ') and 'none of the keys acc' in message
    assert 'it has: lr, loss, mse' in message
    assert not (tmp_path / 'c.png').exists()
