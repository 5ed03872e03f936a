"""Mistakes in --cfg-options, through the real tools: one 'error:' line that names the option and
the nearest valid key, before anything is written; valid options pass untouched."""
import pytest

from conftest import REPO, run_tool, tool_main

CLS = REPO / 'configs' / 'mmpretrain' / 'demo' / 'vssd_t_demo.py'
DET = REPO / 'configs' / 'mmdet' / 'mask_rcnn_vssd_t_1x.py'

CASES = [
    (CLS, 'train_cfg.max_epochs', 'train_cfg.max_epochs: no value; write KEY=VALUE'),
    (CLS, 'model.backbone.archh=micro',
     "VSSD takes no argument 'archh'; nearest valid key: model.backbone.arch"),
    (CLS, 'model.backbone.drop_path=0.1', 'nearest valid key: model.backbone.drop_path_rate'),
    (CLS, 'model.backbon.arch=micro', "takes no argument 'backbon'; nearest valid key: "
                                      'model.backbone'),
    (CLS, 'modle.backbone.arch=micro', "no top-level key 'modle'; nearest valid key: model"),
    (CLS, 'train_cfg.max_epoch=3', 'nearest valid key: train_cfg.max_epochs'),
    (CLS, 'optim_wrapper.optimizer.lrr=0.1', "AdamW takes no argument 'lrr'"),
    (CLS, 'default_hooks.checkpoint.max_keep=2',
     'nearest valid key: default_hooks.checkpoint.max_keep_ckpts'),
    (CLS, 'train_dataloader.dataset.pipeline.7.scale=32', 'is a list of 4: use an index from 0'),
    (CLS, 'model.head.num_classes.value=3', 'model.head.num_classes is int 3, not a dict'),
    (DET, 'train_cfg.max_iters=10', "EpochBasedTrainLoop takes no argument 'max_iters'; nearest "
                                    'valid key: train_cfg.max_epochs'),
    (DET, 'model.roi_head.bbox_head.num_class=3',
     'nearest valid key: model.roi_head.bbox_head.num_classes'),
]

# valid keys, values the model refuses: the model is built once, before the Runner
VALUE_CASES = [
    ('model.backbone.arch=huge', "the config's model cannot be built: ValueError: VSSD: unknown "
                                 "arch 'huge'; choose one of"),
    ('model.backbone.nc_ssd_backend=cuda', 'nc_ssd_backend must be one of'),
    ('model.neck.type=GlobalAvgPool', "cannot be built: KeyError: GlobalAvgPool is not in the "
                                      'mmpretrain::model registry'),
    ('model.backbone.init_cfg=vssd_tiny_best_ema.pth', 'TypeError: VSSD: init_cfg must be None, '
                                                       'a dict or a list of dicts'),
]


# the same check serves both tools: three cases through each tool's process (the whole path:
# exit status, stderr, no traceback), every case through train.py's main() in this process (the
# same code after the interpreter's start, ~4 s a case less)
RUNS = [('train.py', *case) for case in CASES[:3]] + [('test.py', *case) for case in CASES[:3]]


def _assert_one_error_line(errors, option, expected):
    assert len(errors) == 1 and f'--cfg-options {option.split("=")[0]}' in errors[0], errors
    assert expected in errors[0], errors[0]


@pytest.mark.parametrize('tool_name, config, option, expected', RUNS,
                         ids=[f'{r[0]}-{r[2]}' for r in RUNS])
def test_bad_option_is_one_line_before_anything_is_written(tmp_path, tool_name, config, option,
                                                           expected):
    args = [config] + (['missing.pth'] if tool_name == 'test.py' else [])
    proc = run_tool(tool_name, *args, '--work-dir', 'work', '--cfg-options', option,
                    cwd=tmp_path, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    _assert_one_error_line(errors, option, expected)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope='module')
def train_main():
    return tool_main('train.py')


@pytest.mark.parametrize('config, option, expected', CASES, ids=[c[1] for c in CASES])
def test_train_main_stops_at_a_bad_option(train_main, tmp_path, monkeypatch, capsys, config,
                                          option, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        train_main([str(config), '--work-dir', 'work', '--cfg-options', option])
    printed = capsys.readouterr().err.splitlines()
    errors = [line for line in [str(stop.value.code), *printed] if line.startswith('error:')]
    _assert_one_error_line(errors, option, expected)
    assert list(tmp_path.iterdir()) == []


def test_options_the_configs_take_are_accepted():
    import vssd_mm  # noqa: F401
    from mmengine.config import Config

    from vssd_mm.engine.cfg_options import check_cfg_options
    cls, det = Config.fromfile(str(CLS)), Config.fromfile(str(DET))
    check_cfg_options(cls, {
        'model.backbone.with_cp': True,              # a VSSD argument the config does not set
        'model.backbone.init_cfg.checkpoint': 'x',   # a new dict for an argument
        'train_cfg.val_begin': 2,                    # an untyped dict may grow
        'randomness.seed': 1, 'work_dir': 'w',       # top-level keys
        'model.head.topk': 1,                        # the head takes **kwargs
        'train_dataloader.dataset.pipeline.1.scale': 32})
    check_cfg_options(det, {
        'optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult': .1,
        'train_dataloader.dataset.metainfo.classes': ['a'], 'model.backbone.init_cfg': None,
        'model.backbone.nc_ssd_backend': 'torch', 'train_cfg.max_epochs': 1})


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    run_tool('make_demo_data.py', 'imagenet', '--num-train', '2', '--num-val', '2', cwd=root)
    return root


def test_bad_value_is_one_line_before_the_runner(demo_data):
    option, expected = VALUE_CASES[0]
    work = demo_data / 'work_process'
    proc = run_tool('train.py', CLS, '--work-dir', work, '--cfg-options', option, cwd=demo_data,
                    check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and expected in errors[0], errors
    assert not work.exists()


@pytest.mark.parametrize('option, expected', VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_train_main_stops_at_a_bad_value(train_main, demo_data, monkeypatch, capsys, option,
                                         expected):
    monkeypatch.chdir(demo_data)
    work = demo_data / f'work_{option.split("=")[0]}'
    with pytest.raises(SystemExit) as stop:
        train_main([str(CLS), '--work-dir', str(work), '--cfg-options', option])
    printed = capsys.readouterr().err.splitlines()
    errors = [line for line in [str(stop.value.code), *printed] if line.startswith('error:')]
    assert len(errors) == 1 and expected in errors[0], errors
    assert not work.exists()
