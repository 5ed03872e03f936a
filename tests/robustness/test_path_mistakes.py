"""Every path a tool is given that cannot be used is one ``error:`` line naming the path and the
reason, before any work, and nothing is written (table-driven, through the tools' ``main``)."""
import os

import pytest

from conftest import FIXTURES, REPO, tool_main

TOY = str(FIXTURES / 'toy_regression_config.py')
CLS = str(REPO / 'configs/mmpretrain/demo/vssd_t_demo.py')


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A folder holding a file ``a_file``, a toy checkpoint ``weights.pth`` and a folder
    ``a_folder``; the current directory."""
    import torch
    (tmp_path / 'a_file').write_text('not a folder')
    (tmp_path / 'a_folder').mkdir()
    torch.save({'state_dict': {}}, tmp_path / 'weights.pth')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(FIXTURES))
    return tmp_path


CASES = [  # tool, arguments, the error line's text
    ('train.py', [TOY, '--work-dir', 'a_file'],
     '--work-dir a_file is a file, not a folder; choose a folder path'),
    ('train.py', [TOY, '--work-dir', 'a_file/run'],
     '--work-dir a_file/run cannot be created: {ws}/a_file is a file, not a folder'),
    ('train.py', ['a_folder'], 'config file a_folder is a folder, not a file'),
    ('train.py', ['missing.py'], 'config file not found: missing.py'),
    ('test.py', [TOY, 'weights.pth', '--work-dir', 'w', '--out', 'a_folder'],
     '--out a_folder must end in .pkl or .pickle'),
    ('test.py', [TOY, 'weights.pth', '--work-dir', 'w', '--out', 'a_file/preds.pkl'],
     '--out a_file/preds.pkl cannot be created: {ws}/a_file is a file, not a folder'),
    ('test.py', [CLS, 'weights.pth', '--work-dir', 'w', '--show-dir', 'a_file'],
     '--show-dir a_file is a file, not a folder; choose a folder path'),
    ('make_demo_data.py', ['imagenet', '--out', 'a_file'],
     '--out a_file is a file, not a folder; choose a folder path'),
    ('convert_checkpoint.py', ['weights.pth', 'a_file/converted.pth'],
     'DST a_file/converted.pth cannot be created: {ws}/a_file is a file, not a folder'),
    ('visualize_erf.py', [CLS, '--out', 'erf.gif'], '--out erf.gif must end in .png or .jpg'),
]


@pytest.mark.parametrize('tool_name, args, message', CASES,
                         ids=[f'{c[0]}:{" ".join(c[1][-2:])}' for c in CASES])
def test_an_unusable_path_is_one_error_line(workspace, tool_name, args, message):
    before = sorted(p.relative_to(workspace) for p in workspace.rglob('*'))
    with pytest.raises(SystemExit) as exit_:
        tool_main(tool_name)(args)
    text = str(exit_.value.code)
    assert text == 'error: ' + message.format(ws=workspace), text
    assert sorted(p.relative_to(workspace) for p in workspace.rglob('*')) == before


def test_export_onnx_output_must_be_an_onnx_file_in_a_usable_folder(workspace, capsys):
    pytest.importorskip('onnxscript')
    for out, message in (('model.txt', '--out model.txt must end in .onnx'),
                         ('a_file/model.onnx', 'cannot be created: {ws}/a_file is a file')):
        with pytest.raises(SystemExit) as exit_:
            tool_main('export_onnx.py')([CLS, '--out', out])
        assert message.format(ws=workspace) in str(exit_.value.code)
    assert not (workspace / 'model.txt').exists()


def test_a_folder_without_write_permission(workspace, monkeypatch):
    """Checked with os.access, which the test answers for one folder (CI runs as root, who may
    write anywhere, so a chmod would prove nothing)."""
    from vssd_mm.engine import paths
    locked = workspace / 'locked'
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(paths.os, 'access', lambda path, mode: False if os.path.abspath(path)
                        == str(locked) else real_access(path, mode))
    with pytest.raises(SystemExit) as exit_:
        tool_main('train.py')([TOY, '--work-dir', 'locked/run'])
    assert str(exit_.value.code) == (f'error: --work-dir locked/run cannot be created: no '
                                     f'permission to write in {locked}')
    assert not (locked / 'run').exists()


@pytest.mark.parametrize('args, message', [
    (['imagenet', '--num-train', '0'], 'argument --num-train: must be >= 1, got 0'),
    (['coco', '--size', '64', '-3'], 'argument --size: must be >= 1, got -3'),
])
def test_numbers_out_of_range_are_named_by_the_parser(workspace, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        tool_main('make_demo_data.py')(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
