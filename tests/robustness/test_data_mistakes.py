"""A user's own dataset with a defect: tools/check_dataset.py names it (exit 1, one problem line),
and tools/train.py / tools/test.py stop at the start with one ``error:`` line naming the file and
the problem, before anything is written (table-driven over generated datasets, through the tools'
``main``). The clean demo datasets pass with a table of counts."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, tool_main

DET = str(REPO / 'configs/mmdet/demo/mask_rcnn_vssd_t_demo.py')
SEG = str(REPO / 'configs/mmseg/demo/upernet_vssd_t_demo.py')
CLS = str(REPO / 'configs/mmpretrain/demo/vssd_t_demo.py')
COCO = 'data/coco_demo'
TRAIN_JSON = f'{COCO}/annotations/instances_train2017.json'
ADE = 'data/ade_demo/ADEChallengeData2016'


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """Small copies of the three demo datasets, made once; each test gets its own copy."""
    from vssd_mm.demo_data.ade import make_ade_demo
    from vssd_mm.demo_data.coco import make_coco_demo
    from vssd_mm.demo_data.imagefolder import make_imagefolder_demo
    root = tmp_path_factory.mktemp('own_data')
    make_coco_demo(root / COCO, num_train=8, num_val=4, image_size=(96, 128))
    make_ade_demo(root / ADE, num_train=6, num_val=3, image_size=(64, 64))
    make_imagefolder_demo(root / 'data/imagenet_demo', num_train=4, num_val=2,
                          image_size=(32, 32))
    return root


@pytest.fixture
def workspace(demo_data, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(demo_data / 'data', tmp_path / 'data')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _edit_json(path, edit):
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, 'w') as f:
        json.dump(data, f)


def _first_train_image():
    with open(TRAIN_JSON) as f:
        return f'{COCO}/train2017/' + json.load(f)['images'][0]['file_name']


def _drop_category_instances(name):
    def edit(data):
        cid = next(c['id'] for c in data['categories'] if c['name'] == name)
        data['annotations'] = [a for a in data['annotations'] if a['category_id'] != cid]
    return lambda: _edit_json(TRAIN_JSON, edit)


def _rename_category(old, new):
    def edit(data):
        next(c for c in data['categories'] if c['name'] == old)['name'] = new
    return lambda: _edit_json(TRAIN_JSON, edit)


def _edit_first_annotation(**changes):
    def edit(data):
        ann = data['annotations'][0]
        for key, value in changes.items():
            if value is None:
                ann.pop(key)
            else:
                ann[key] = value
    return lambda: _edit_json(TRAIN_JSON, edit)


def _label_map(split='training'):
    import glob
    return sorted(glob.glob(f'{ADE}/annotations/{split}/*.png'))[0]


def _write_label_map(values=None, shape=None):
    def write():
        path = _label_map()
        labels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if values is not None:
            labels[:4, :4] = values
        if shape is not None:
            labels = np.zeros(shape, np.uint8)
        cv2.imwrite(path, labels)
    return write


def _remove(path_of):
    import os
    return lambda: os.remove(path_of())


def _corrupt(path_of):
    def write():
        with open(path_of(), 'wb') as f:
            f.write(b'not an image')
    return write


CASES = [  # id, config, defect, extra train arguments, problem text (in the check and the error)
    ('missing image', DET, _remove(_first_train_image), [],
     '000000000001.jpg: image named in instances_train2017.json does not exist'),
    ('renamed class', DET, _rename_category('circle', 'circel'), [],
     "class 'circle' of the config is not a category of the file; the file has 'circel'"),
    ('class without instances', DET, _drop_category_instances('triangle'), [],
     "class 'triangle' has no instances"),
    ('image does not decode', DET, _corrupt(_first_train_image), [],
     '000000000001.jpg: does not decode as an image'),
    ('bad box', DET, _edit_first_annotation(bbox=[1, 2, 3]), [],
     'annotation id 1: bbox [1, 2, 3] is not [x, y, width, height]'),
    ('RLE of another size', DET,
     _edit_first_annotation(segmentation={'counts': 'abc', 'size': [10, 10]}), [],
     "annotation id 1: RLE size [10, 10] differs from the image's [96, 128]"),
    ('no segmentation, mmdet loader', DET, _edit_first_annotation(segmentation=None),
     ['--cfg-options', 'train_dataloader.dataset.pipeline.1.type=LoadAnnotations'],
     "annotation id 1: has no segmentation, which mmdet's LoadAnnotations cannot load"),
    ('annotation file not JSON', DET, lambda: open(TRAIN_JSON, 'w').write('{"images": ['), [],
     'instances_train2017.json: is not valid JSON (line 1'),
    ('label value outside the classes', SEG, _write_label_map(values=200), [],
     'holds values [200] outside the classes and the ignore index 255'),
    ('label map of another size', SEG, _write_label_map(shape=(32, 48)), [],
     'label map is 48x32, its image 64x64'),
    ('missing label map', SEG, _remove(_label_map), [], 'label map of an image does not exist'),
    ('class folders differ', CLS, lambda: None,
     ['--cfg-options', 'train_dataloader.dataset.metainfo.classes=[square,circle,triangle]'],
     "class folders ['circle', 'square', 'triangle'] differ from the config's classes "
     "['square', 'circle', 'triangle']"),
]


@pytest.mark.parametrize('config, defect, extra, problem', [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_defect_is_named_by_the_check_and_stops_training_in_one_line(
        workspace, capsys, config, defect, extra, problem):
    defect()
    before = sorted(p.relative_to(workspace) for p in workspace.rglob('*'))
    status = tool_main('check_dataset.py')([config, '--split', 'train', *extra])
    report = capsys.readouterr().out
    assert status == 1
    problems = [line for line in report.splitlines() if line.startswith('problem: ')]
    assert len(problems) == 1 and problem in problems[0], report

    with pytest.raises(SystemExit) as exit_:
        tool_main('train.py')([config, '--work-dir', 'work', *extra])
    message = str(exit_.value.code)
    assert message.startswith('error: ') and problem in message, message
    assert 'check_dataset.py' in message and '--skip-data-check' in message
    assert sorted(p.relative_to(workspace) for p in workspace.rglob('*')) == before


@pytest.mark.parametrize('config', [DET, SEG, CLS], ids=['coco', 'ade', 'imagefolder'])
def test_clean_demo_datasets_pass_with_a_table_of_counts(workspace, capsys, config):
    assert tool_main('check_dataset.py')([config, '--full']) == 0
    out = capsys.readouterr().out
    assert 'no problems found' in out
    rows = [line.split() for line in out.splitlines() if line.startswith(('train:', 'val:'))]
    assert rows and all(row[-1] == '0' and int(row[-2]) > 0 for row in rows), out


def test_instances_without_segmentation_get_their_box_as_mask(workspace, capsys):
    """Our configs' LoadCocoAnnotations loads a box-only instance (COCO allows it; mmdet's
    LoadAnnotations raises KeyError) with its box as mask, as pycocotools' COCO.loadRes does."""
    import vssd_mm.datasets  # noqa: F401
    from mmdet.registry import TRANSFORMS
    _edit_first_annotation(segmentation=None)()
    assert tool_main('check_dataset.py')([DET, '--split', 'train']) == 0
    assert 'train: 1 annotations without segmentation (their box as mask)' in \
        capsys.readouterr().out
    load = TRANSFORMS.build(dict(type='LoadCocoAnnotations', with_bbox=True, with_mask=True))
    results = load(dict(ori_shape=(20, 30), instances=[
        dict(bbox=[2, 3, 12, 8], bbox_label=0, ignore_flag=0),
        dict(bbox=[0, 0, 30, 20], bbox_label=1, ignore_flag=0,
             mask=[[0, 0, 10, 0, 10, 10, 0, 10]])]))
    masks = results['gt_masks'].masks
    assert masks[0].sum() == 10 * 5 and masks[0][3:8, 2:12].all()
    assert masks[1][:10, :10].all() and not results['gt_ignore_flags'].any()


def test_an_image_that_fails_to_decode_mid_run_is_one_line(workspace):
    """With the check skipped, the dataloader worker meets the file: one line naming it."""
    path = sorted((workspace / 'data/imagenet_demo/train/circle').iterdir())[0]
    path.write_bytes(b'not an image')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/train.py'), CLS, '--work-dir', 'work',
         '--skip-data-check', '--epochs', '1', '--cfg-options',
         'train_dataloader.batch_size=12', 'val_cfg=None', 'val_dataloader=None',
         'val_evaluator=None'], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (f'error: image {path.relative_to(workspace)} does not decode (a corrupt '
                         'file, or not an image): replace or remove it; tools/check_dataset.py '
                         'CONFIG --full finds every such file'), proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr


CONFIG_MISTAKES = [  # config text, error text
    ('x = dict(a=1\ny = 2\n', 'config file {cfg}, line 1 does not parse: \'(\' was never closed'),
    ("_base_ = '../mask_rcnn_vssd_t_1x.py'\n",
     "config file {cfg}: its _base_ '../mask_rcnn_vssd_t_1x.py' was not found (tried "
     "{ws}/../mask_rcnn_vssd_t_1x.py); a base that exists: _base_ = '" + str(
         REPO / 'vssd_mm/.mim/configs/mmdet/mask_rcnn_vssd_t_1x.py') + "'"),
]


@pytest.mark.parametrize('text, message', CONFIG_MISTAKES, ids=['syntax', 'missing base'])
def test_config_mistakes_are_one_line(workspace, text, message):
    (workspace / 'my_config.py').write_text(text)
    with pytest.raises(SystemExit) as exit_:
        tool_main('train.py')(['my_config.py'])
    assert str(exit_.value.code) == 'error: ' + message.format(cfg='my_config.py', ws=workspace)


def _annotation_list():
    """An mmpretrain annotation list of the demo's training images ('path label', labels in the
    folders' sorted order), without classes in the config: labels 0..2."""
    import os
    root = 'data/imagenet_demo/train'
    with open('data/imagenet_demo/train.txt', 'w') as f:
        for label, folder in enumerate(sorted(os.listdir(root))):
            for name in sorted(os.listdir(f'{root}/{folder}')):
                f.write(f'{folder}/{name} {label}\n')


SMALL_HEADS = [  # id, config, defect, arguments, message
    ('mmdet box head', DET, lambda: None,
     ['--cfg-options', 'model.roi_head.bbox_head.num_classes=2'],
     'the model cannot learn the classes of train_dataloader: model.roi_head.bbox_head.'
     'num_classes is 2, but its CocoDataset has 3 classes (its metainfo.classes); set the heads\' '
     'num_classes to the dataset\'s class count: --cfg-options '
     'model.roi_head.bbox_head.num_classes=3'),
    ('mmdet both heads', DET, lambda: None,
     ['--cfg-options', 'model.roi_head.bbox_head.num_classes=1',
      'model.roi_head.mask_head.num_classes=2'],
     'model.roi_head.bbox_head.num_classes is 1, model.roi_head.mask_head.num_classes is 2, but '
     'its CocoDataset has 3 classes'),
    ('mmseg decode and auxiliary head', SEG, lambda: None,
     ['--cfg-options', 'model.decode_head.num_classes=3', 'model.auxiliary_head.num_classes=3'],
     'model.decode_head.num_classes is 3, model.auxiliary_head.num_classes is 3, but its '
     'BaseSegDataset has 4 classes (its metainfo.classes)'),
    ('mmpretrain class folders', CLS, lambda: None,
     ['--cfg-options', 'model.head.num_classes=2'],
     'model.head.num_classes is 2, but its CustomDataset has 3 classes (the class folders in '
     'data/imagenet_demo/train)'),
    ('mmpretrain annotation list', CLS, _annotation_list,
     ['--cfg-options', 'model.head.num_classes=2', 'train_dataloader.dataset.ann_file=train.txt'],
     'model.head.num_classes is 2, but its CustomDataset has 3 classes (the labels in '
     'data/imagenet_demo/train.txt)'),
]


@pytest.mark.parametrize('config, defect, args, message', [c[1:] for c in SMALL_HEADS],
                         ids=[c[0] for c in SMALL_HEADS])
def test_a_model_that_cannot_learn_its_dataset_stops_training_in_one_line(
        workspace, config, defect, args, message):
    """A head with fewer outputs than the dataset has classes: refused at the start, data check
    skipped or not, in one line that names the heads and the fix; nothing written."""
    defect()
    before = sorted(p.relative_to(workspace) for p in workspace.rglob('*'))
    for skip in ([], ['--skip-data-check']):
        with pytest.raises(SystemExit) as exit_:
            tool_main('train.py')([config, '--work-dir', 'work', *skip, *args])
        error = str(exit_.value.code)
        assert error.startswith('error: ') and message in error and '\n' not in error, error
    assert sorted(p.relative_to(workspace) for p in workspace.rglob('*')) == before


def test_a_head_too_small_for_the_test_set_stops_the_tool_process(workspace):
    """The same check in tools/test.py's own process: exit status 1, one error line."""
    (workspace / 'some.pth').write_bytes(b'')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/test.py'), DET, 'some.pth', '--work-dir', 'work',
         '--cfg-options', 'model.roi_head.mask_head.num_classes=2'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert errors == [
        'error: the model cannot learn the classes of test_dataloader: '
        'model.roi_head.mask_head.num_classes is 2, but its CocoDataset has 3 classes (its '
        'metainfo.classes); set the heads\' num_classes to the dataset\'s class count: '
        '--cfg-options model.roi_head.mask_head.num_classes=3'], proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr and not (workspace / 'work').exists()


@pytest.mark.parametrize('given', ['list', 'file'])
def test_the_class_count_is_the_one_mmpretrain_builds_from_a_classes_argument(tmp_path, given):
    """mmpretrain's ``classes=`` (names, or a file of them) overrides the dataset type's own
    classes: a 10-class ImageNet config is a 10-class dataset, as mmpretrain builds it, and a
    10-output head fits it (before: refused as an ImageNet of 1000 classes)."""
    import vssd_mm  # noqa: F401
    from mmpretrain.registry import DATASETS

    from vssd_mm.engine.data_check.num_classes import dataset_classes, too_few_outputs
    names = [f'class_{i}' for i in range(10)]
    classes = names
    if given == 'file':
        classes = str(tmp_path / 'classes.txt')
        (tmp_path / 'classes.txt').write_text('\n'.join(names) + '\n')
    cfg = dict(type='ImageNet', data_root=str(tmp_path), classes=classes, lazy_init=True)
    built = DATASETS.build(dict(cfg))
    assert dataset_classes(cfg, 'mmpretrain')[0] == len(built.metainfo['classes']) == 10
    assert too_few_outputs(dict(head=dict(num_classes=10)), cfg, 'mmpretrain', 'train') is None
    assert 'has 10 classes' in too_few_outputs(dict(head=dict(num_classes=9)), cfg, 'mmpretrain',
                                               'train')
