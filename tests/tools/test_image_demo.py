"""tools/image_demo.py against the libraries' own inferencers (mmdet DetInferencer, mmseg
MMSegInferencer, mmpretrain ImageClassificationInferencer) on the same images and weights, and
its --tta against mmseg's SegTTAModel over the config's unchanged tta_pipeline; a video in gives
a drawn video out; --score-thr filters; input mistakes are one error line.

The checkpoints are the randomly initialised (seeded) models of the demo configs, saved as
mmengine saves them; the images are the demo data's generated scenes, small."""
import ast
import contextlib
import json

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, tool_main

CONFIGS = {'det': REPO / 'configs' / 'mmdet' / 'demo' / 'mask_rcnn_vssd_t_demo.py',
           'seg': REPO / 'configs' / 'mmseg' / 'demo' / 'upernet_vssd_t_demo.py',
           'cls': REPO / 'configs' / 'mmpretrain' / 'demo' / 'vssd_t_demo.py'}
# detection kept cheap: 128x96 inputs, 10 instances per image (the comparison is what counts)
DET_OPTIONS = ['model.test_cfg.rpn.nms_pre=200', 'model.test_cfg.rpn.max_per_img=50',
               'model.test_cfg.rcnn.max_per_img=10',
               'test_dataloader.dataset.pipeline.1.scale=(128,96)']
CLASSES = {'det': ('square', 'circle', 'triangle'),
           'seg': ('ground', 'square', 'circle', 'triangle'),
           'cls': ('circle', 'square', 'triangle')}


def _images(folder, count, height, width, seed=0):
    from vssd_mm.demo_data.shapes import random_scene
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img, _ = random_scene(rng, height, width, (2, 4), (height / 8, height / 3))
        paths.append(folder / f'scene_{i}.jpg')
        cv2.imwrite(str(paths[-1]), img)
    return paths


def _config(task, options=()):
    import vssd_mm  # noqa: F401  (registers VSSD)
    from mmengine.config import Config
    cfg = Config.fromfile(str(CONFIGS[task]))
    cfg.merge_from_dict({k: ast.literal_eval(v) for k, v in (o.split('=', 1) for o in options)})
    return cfg


def _save(model, path, task):
    """The model's weights as a mmengine checkpoint with the dataset meta a Runner would record
    (mmdet's CocoDataset: its palette too, a list of tuples)."""
    from mmengine.runner import save_checkpoint
    meta = {'classes': CLASSES[task]}
    if task == 'det':
        meta['palette'] = [(220, 20, 60), (119, 11, 32), (0, 0, 142)]
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {'dataset_meta': meta}},
                    str(path))
    return path


@contextlib.contextmanager
def _managers_restored():
    """For a module fixture (outside the function-level ``process_state_as_it_was``): the
    default scopes, loggers, visualisers and message hubs its inferencer makes are dropped at
    the module's end, so that later modules look in their own registries."""
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    before = {cls: set(cls._instance_dict) for cls in (DefaultScope, MMLogger, Visualizer,
                                                        MessageHub)}
    try:
        yield
    finally:
        for cls, names in before.items():
            for name in set(cls._instance_dict) - names:
                cls._instance_dict.pop(name)


def _run(*args):
    tool_main('image_demo.py')([str(a) for a in args])


def _read(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def det(tmp_path_factory):
    """(folder, images, checkpoint, DetInferencer's predictions per image, tool's JSON at
    --score-thr 0 per image)."""
    from mmdet.apis import DetInferencer
    tmp = tmp_path_factory.mktemp('det_demo')
    images = _images(tmp / 'images', 1, 96, 128)
    with _managers_restored():
        torch.manual_seed(0)
        inferencer = DetInferencer(model=_config('det', DET_OPTIONS), weights=None,
                                   device='cpu', show_progress=False)
        ckpt = _save(inferencer.model, tmp / 'det.pth', 'det')
        expected = [inferencer(str(p), return_datasamples=True)['predictions'][0]
                    for p in images]
        _run(CONFIGS['det'], ckpt, tmp / 'images', '--out-dir', tmp / 'out', '--score-thr', 0,
             '--cfg-options', *DET_OPTIONS)
    written = [_read(tmp / 'out' / 'preds' / f'{p.stem}.json') for p in images]
    return tmp, images, ckpt, expected, written


def test_det_predictions_equal_det_inferencer(det):
    from pycocotools import mask as rle
    tmp, images, _, expected, written = det
    for sample, record, path in zip(expected, written, images):
        inst = sample.pred_instances
        order = inst.scores.argsort(descending=True)
        assert len(order) == 10 and record['img_path'] == str(path)
        torch.testing.assert_close(torch.tensor(record['scores']), inst.scores[order])
        torch.testing.assert_close(torch.tensor(record['bboxes']), inst.bboxes[order])
        assert record['labels'] == inst.labels[order].tolist()
        assert record['class_names'] == [CLASSES['det'][i] for i in record['labels']]
        masks = rle.decode([{'size': m['size'], 'counts': m['counts'].encode()}
                            for m in record['masks']])
        assert masks.shape == (96, 128, 10)
        np.testing.assert_array_equal(masks.transpose(2, 0, 1), inst.masks[order].numpy())
        assert (tmp / 'out' / 'vis' / f'{path.stem}.png').is_file()
    drawn = cv2.imread(str(tmp / 'out' / 'vis' / f'{images[0].stem}.png'))
    assert drawn.shape == (96, 128, 3)
    assert not np.array_equal(drawn, cv2.imread(str(images[0])))  # something was drawn


def test_score_thr_keeps_the_instances_above_it(det):
    tmp, images, ckpt, _, written = det
    scores = sorted(written[0]['scores'])
    thr = (scores[4] + scores[5]) / 2  # half of them survive
    _run(CONFIGS['det'], ckpt, images[0], '--out-dir', tmp / 'thr', '--score-thr', thr,
         '--no-masks', '--draw-scale', 2, '--cfg-options', *DET_OPTIONS)
    record = _read(tmp / 'thr' / 'preds' / f'{images[0].stem}.json')
    assert 'masks' not in record and record['score_thr'] == pytest.approx(thr)
    assert len(record['scores']) == 5 and min(record['scores']) > thr
    assert cv2.imread(str(tmp / 'thr' / 'vis' / f'{images[0].stem}.png')).shape == (192, 256, 3)
    above = [i for i, s in enumerate(written[0]['scores']) if s > thr]
    for key in ('scores', 'bboxes', 'labels', 'class_names'):
        assert record[key] == [written[0][key][i] for i in above]


# the seg demo at 64x48: whole images (no resize), TTA at 0.75 / 1 / 1.25 of that, with flips
SMALL_SEG = """_base_ = {base!r}
test_scale = (1024, 48)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(1024 * r), int(48 * r)), keep_ratio=True)
         for r in (0.75, 1.0, 1.25)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')]])
]
"""


@pytest.fixture(scope='module')
def seg(tmp_path_factory):
    """(folder, image, small config, checkpoint, MMSegInferencer)."""
    from mmengine.config import Config
    from mmseg.apis import MMSegInferencer
    tmp = tmp_path_factory.mktemp('seg_demo')
    image = _images(tmp / 'images', 1, 48, 64)[0]
    config = tmp / 'upernet_small.py'
    config.write_text(SMALL_SEG.format(base=str(CONFIGS['seg'])))
    with _managers_restored():
        torch.manual_seed(0)
        inferencer = MMSegInferencer(model=Config.fromfile(str(config)), device='cpu')
        yield tmp, image, config, _save(inferencer.model, tmp / 'seg.pth', 'seg'), inferencer


def _label_map(folder, stem):
    record = _read(folder / 'preds' / f'{stem}.json')
    return record, cv2.imread(str(folder / 'preds' / record['label_map']), cv2.IMREAD_UNCHANGED)


def test_seg_predictions_equal_mmseg_inferencer(seg):
    tmp, image, config, ckpt, inferencer = seg
    expected = inferencer(str(image), return_datasamples=True)
    _run(config, ckpt, image, '--out-dir', tmp / 'out', '--draw-scale', 2)
    record, ids = _label_map(tmp / 'out', image.stem)
    np.testing.assert_array_equal(ids, expected.pred_sem_seg.data[0].numpy())
    present, counts = np.unique(ids, return_counts=True)
    assert {c['id']: (c['name'], c['pixels']) for c in record['classes']} == {
        int(i): (CLASSES['seg'][i], int(n)) for i, n in zip(present, counts)}
    assert cv2.imread(str(tmp / 'out' / 'vis' / f'{image.stem}.png')).shape == (96, 128, 3)


def test_seg_tta_equals_seg_tta_model_over_the_config_pipeline(seg):
    """--tta against mmseg's SegTTAModel fed by the config's tta_pipeline as it is (the real
    LoadImageFromFile and LoadAnnotations, reading the image and a label file)."""
    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmseg.models import SegTTAModel
    tmp, image, config, ckpt, inferencer = seg
    label_file = tmp / 'label.png'
    cv2.imwrite(str(label_file), np.zeros((48, 64), np.uint8))
    with DefaultScope.overwrite_default_scope('mmseg'):
        views = Compose(Config.fromfile(str(config)).tta_pipeline)(dict(
            img_path=str(image), seg_map_path=str(label_file), reduce_zero_label=True,
            seg_fields=[]))
        assert len(views['inputs']) == 6
        with torch.no_grad():
            expected = SegTTAModel(module=inferencer.model).test_step(
                pseudo_collate([views]))[0]
    _run(config, ckpt, image, '--out-dir', tmp / 'tta', '--tta')
    _, ids = _label_map(tmp / 'tta', image.stem)
    np.testing.assert_array_equal(ids, expected.pred_sem_seg.data[0].numpy())


@pytest.fixture(scope='module')
def cls(tmp_path_factory):
    """(folder, images, checkpoint, ImageClassificationInferencer)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.apis import ImageClassificationInferencer
    tmp = tmp_path_factory.mktemp('cls_demo')
    images = _images(tmp / 'images' / 'sub', 2, 64, 64)
    with _managers_restored(), DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)  # (mmpretrain's inferencer builds in the current scope)
        inferencer = ImageClassificationInferencer(model=_config('cls'), pretrained=False,
                                                   device='cpu')
        yield tmp, images, _save(inferencer.model, tmp / 'cls.pth', 'cls'), inferencer


def test_cls_topk_equals_mmpretrain_inferencer(cls):
    tmp, images, ckpt, inferencer = cls
    _run(CONFIGS['cls'], ckpt, tmp / 'images', '--out-dir', tmp / 'out', '--topk', 2)
    for path in images:
        expected = inferencer(str(path), return_datasamples=True)[0].pred_score
        record = _read(tmp / 'out' / 'preds' / 'sub' / f'{path.stem}.json')
        values, ids = expected.topk(2)
        assert [t['label'] for t in record['topk']] == ids.tolist()
        torch.testing.assert_close(torch.tensor([t['score'] for t in record['topk']]), values)
        assert [t['class_name'] for t in record['topk']] == [CLASSES['cls'][i] for i in ids]
        assert (tmp / 'out' / 'vis' / 'sub' / f'{path.stem}.png').is_file()


def test_video_in_gives_a_drawn_video_of_the_same_frames(cls):
    tmp, images, ckpt, inferencer = cls
    video = str(tmp / 'clip.avi')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 5., (64, 64))
    for path in images + images[:1]:
        writer.write(cv2.imread(str(path)))
    writer.release()
    _run(CONFIGS['cls'], ckpt, video, '--out-dir', tmp / 'video', '--draw-scale', 2)
    drawn = cv2.VideoCapture(str(tmp / 'video' / 'vis' / 'clip.avi'))
    frames = []
    while True:
        ok, frame = drawn.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 3 and frames[0].shape == (128, 128, 3)
    assert drawn.get(cv2.CAP_PROP_FPS) == pytest.approx(5.)
    record = _read(tmp / 'video' / 'preds' / 'clip.json')
    assert [f['frame'] for f in record['frames']] == [0, 1, 2]
    ok, first = cv2.VideoCapture(video).read()  # the frame as decoded, not the source image
    expected = inferencer(first, return_datasamples=True)[0].pred_score
    assert record['frames'][0]['topk'][0]['label'] == int(expected.argmax())
    assert record['frames'][0]['topk'][0]['score'] == pytest.approx(float(expected.max()))


@pytest.mark.parametrize('make_input, message', [
    (lambda d: d / 'notes.txt', 'unknown input type .txt'),
    (lambda d: d / 'empty', 'no images'),
    (lambda d: d / 'broken.mp4', 'cannot be read'),
    (lambda d: d / 'missing.jpg', 'input not found'),
])
def test_input_mistakes_are_one_error_line(tmp_path, capsys, make_input, message):
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'broken.mp4').write_bytes(b'not a video')
    with pytest.raises(SystemExit) as exit_:
        _run(CONFIGS['cls'], tmp_path / 'no.pth', make_input(tmp_path),
             '--out-dir', tmp_path / 'out')
    err = str(exit_.value.code).splitlines()  # what the interpreter prints on exit, status 1
    assert len(err) == 1 and err[0].startswith('error: ')
    assert message in err[0]
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args, message', [
    ([], 'checkpoint not found'),
    (['--tta'], '--tta needs tta_model and tta_pipeline in the config'),
    (['--device', 'gpu0'], '--device gpu0: not a torch device'),
    pytest.param(['--device', 'cuda'], 'this machine has no CUDA GPU', marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason='the message is for machines without CUDA')),
])
def test_checkpoint_and_config_mistakes_are_one_error_line(tmp_path, capsys, args, message):
    image = _images(tmp_path, 1, 64, 64)[0]
    with pytest.raises(SystemExit) as exit_:
        _run(CONFIGS['cls'], tmp_path / 'missing.pth', image, '--out-dir', tmp_path / 'out',
             *args)
    err = str(exit_.value.code).splitlines()  # what the interpreter prints on exit, status 1
    assert len(err) == 1, err
    assert err[0].startswith('error: ') and message in err[0]
    assert not (tmp_path / 'out').exists()


def test_official_checkpoint_state_key_and_imagenet_names(tmp_path):
    """An official VSSD classification file (``model`` and ``model_ema`` entries) with a
    1000-class config: --state-key picks the entry (each head's bias singles out one class),
    the names are ImageNet's."""
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    from vssd_mm.models import VSSD
    torch.manual_seed(0)
    backbone = VSSD('micro', out_indices=(3,))
    weights = {k: v for k, v in backbone.state_dict().items() if not k.startswith('outnorm')}
    weights.update({'norm.weight': torch.ones(384), 'norm.bias': torch.zeros(384),
                    'head.weight': torch.zeros(1000, 384)})
    live, ema = torch.zeros(1000), torch.zeros(1000)
    live[7], ema[3] = 10., 10.
    official = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': {**weights, 'head.bias': live},
                'model_ema': {**weights, 'head.bias': ema}}, official)
    image = _images(tmp_path / 'images', 1, 64, 64)[0]
    config = REPO / 'configs' / 'mmpretrain' / 'vssd_m_8xb128_in1k.py'
    _run(config, official, image, '--out-dir', tmp_path / 'out', '--state-key', 'model_ema',
         '--topk', 1, '--cfg-options', 'test_dataloader.dataset.pipeline.1.scale=73',
         'test_dataloader.dataset.pipeline.2.crop_size=64')
    top = _read(tmp_path / 'out' / 'preds' / 'scene_0.json')['topk'][0]
    assert top['label'] == 3 and top['class_name'] == IMAGENET_CATEGORIES[3]
    assert top['score'] == pytest.approx(torch.softmax(ema, 0)[3].item(), rel=1e-5)


def test_inputs_whose_outputs_would_collide_are_one_error_line(tmp_path):
    from vssd_mm.engine.errors import ToolError
    from vssd_mm.inference.inputs import collect_inputs
    folder = tmp_path / 'images'
    folder.mkdir()
    for name in ('a.jpg', 'a.png', 'b.jpg'):
        (folder / name).write_bytes(b'')
    with pytest.raises(ToolError, match='a.jpg and .*a.png would write the same output files'):
        collect_inputs(str(folder))
