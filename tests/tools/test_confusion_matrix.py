"""tools/confusion_matrix.py against references computed here: hand-derived counts and mmdet's
definition written as plain loops (detection), np.bincount over the label maps and mmseg's own
IoUMetric (segmentation), mmpretrain's ConfusionMatrix (classification). Predictions are built as
the libraries' data samples and dumped the way tools/test.py --out dumps them (to_dict, then
mmengine's dump); no model runs here (tests/e2e/test_segmentation_e2e.py goes through test.py)."""
import json

import numpy as np
import pytest
import torch

from conftest import REPO, tool_main

SEG_CONFIG = REPO / 'configs' / 'mmseg' / 'demo' / 'upernet_vssd_t_demo.py'
DET_CONFIG = REPO / 'configs' / 'mmdet' / 'demo' / 'mask_rcnn_vssd_t_demo.py'
CLS_CONFIG = REPO / 'configs' / 'mmpretrain' / 'demo' / 'vssd_t_demo.py'


def _dump(samples, path):
    from mmengine.fileio import dump
    dump([s.to_dict() for s in samples], str(path))


def _run(capsys, *argv):
    tool_main('confusion_matrix.py')([str(a) for a in argv])
    return capsys.readouterr().out.strip().splitlines()[-1]


def _iou(a, b):
    """IoU of two x1, y1, x2, y2 boxes, one pair at a time."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _mmdet_definition(matrix, gts, dets, score_thr, iou_thr):
    """mmdet's tools/analysis_tools/confusion_matrix.py as loops: gts [(box, label)],
    dets [(box, score, label)]."""
    bg = len(matrix) - 1
    found = [False] * len(gts)
    for box, score, label in dets:
        if score < score_thr:
            continue
        hits = 0
        for j, (gt_box, gt_label) in enumerate(gts):
            if _iou(box, gt_box) >= iou_thr:
                hits += 1
                matrix[gt_label][label] += 1
                found[j] = found[j] or gt_label == label
        if hits == 0:
            matrix[bg][label] += 1
    for hit, (_, gt_label) in zip(found, gts):
        if not hit:
            matrix[gt_label][bg] += 1


def test_detection_cells_are_the_hand_derived_counts():
    from vssd_mm.analysis.confusion import add_detections
    gt_boxes = [[10, 10, 50, 50], [100, 100, 140, 140], [200, 10, 240, 50]]
    gt_labels = [0, 1, 2]
    dets = [([10, 10, 50, 52], 0.9, 0),     # right class on gt 0
            ([100, 100, 140, 140], 0.8, 2),  # class 2 on gt 1 (a class-1 box): confused
            ([300, 300, 340, 340], 0.5, 1),  # on nothing, above the threshold: background row
            ([400, 400, 440, 440], 0.1, 0),  # on nothing, below the threshold: not counted
            ([40, 40, 80, 80], 0.9, 0),      # IoU 0.08 with gt 0: background row
            ([100, 100, 140, 141], 0.2, 1)]  # right class on gt 1 but below the threshold
    matrix = np.zeros((4, 4), np.int64)
    add_detections(matrix, gt_boxes, gt_labels, [d[0] for d in dets], [d[1] for d in dets],
                   [d[2] for d in dets], score_thr=0.3, tp_iou_thr=0.5)
    expected = np.zeros((4, 4), np.int64)
    expected[0, 0] = 1  # gt 0 found
    expected[1, 2] = 1  # gt 1 taken for class 2 ...
    expected[1, 3] = 1  # ... and so missed as class 1
    expected[2, 3] = 1  # gt 2: nothing on it
    expected[3, 1] = 1  # the class-1 detection on background
    expected[3, 0] = 1  # the class-0 detection beside gt 0
    np.testing.assert_array_equal(matrix, expected)
    # a lower threshold lets the class-1 box of gt 1 count: gt 1 is then found
    matrix[:] = 0
    add_detections(matrix, gt_boxes, gt_labels, [d[0] for d in dets], [d[1] for d in dets],
                   [d[2] for d in dets], score_thr=0.15, tp_iou_thr=0.5)
    assert matrix[1, 1] == 1 and matrix[1, 3] == 0 and matrix[3, 0] == 1


def test_detection_random_boxes_follow_mmdet_definition():
    from vssd_mm.analysis.confusion import add_detections
    rng = np.random.default_rng(0)
    for _ in range(20):
        def boxes(n):
            xy = rng.uniform(0, 60, (n, 2))
            return np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], 1)
        gts = list(zip(boxes(6).tolist(), rng.integers(0, 3, 6).tolist()))
        det_boxes = np.concatenate([np.array([b for b, _ in gts]) + rng.normal(0, 4, (6, 4)),
                                    boxes(6)])
        dets = list(zip(det_boxes.tolist(), rng.uniform(0, 1, 12).tolist(),
                        rng.integers(0, 3, 12).tolist()))
        reference = [[0] * 4 for _ in range(4)]
        _mmdet_definition(reference, gts, dets, 0.3, 0.5)
        matrix = np.zeros((4, 4), np.int64)
        add_detections(matrix, [b for b, _ in gts], [l for _, l in gts],
                       [d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets])
        np.testing.assert_array_equal(matrix, reference)


def test_detection_tool_reads_ground_truth_through_the_test_set(tmp_path, monkeypatch, capsys):
    """Predictions on the demo COCO set: the right boxes with the right class (image 1), the
    right boxes with the next class plus a background box (image 2), nothing (image 3); the
    reference reads the boxes from the annotation file itself."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    monkeypatch.chdir(tmp_path)
    tool_main('make_demo_data.py')(['coco', '--num-train', '1', '--num-val', '3'])
    coco = json.loads((tmp_path / 'data/coco_demo/annotations/instances_val2017.json').read_text())
    classes = ('square', 'circle', 'triangle')
    label = {c['id']: classes.index(c['name']) for c in coco['categories']}
    samples, reference = [], [[0] * 4 for _ in range(4)]
    for k, image in enumerate(coco['images']):
        gts = [([x, y, x + w, y + h], label[a['category_id']])
               for a in coco['annotations'] if a['image_id'] == image['id']
               for x, y, w, h in [a['bbox']]]
        dets = [] if k == 2 else [(box, 0.9, (lab + k) % 3) for box, lab in gts]
        if k == 1:
            dets += [([0, 180, 6, 190], 0.95, 0), (gts[0][0], 0.05, gts[0][1])]
        _mmdet_definition(reference, gts, dets, 0.3, 0.5)
        sample = DetDataSample(metainfo=dict(img_id=image['id'], img_path=image['file_name']))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([d[0] for d in dets], dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([d[1] for d in dets]), labels=torch.tensor(
                [d[2] for d in dets], dtype=torch.int64))
        samples.append(sample)
    _dump(samples, tmp_path / 'det.pkl')
    line = _run(capsys, DET_CONFIG, tmp_path / 'det.pkl', '--out-dir', tmp_path / 'out')
    saved = json.loads((tmp_path / 'out' / 'confusion_matrix.json').read_text())
    assert saved['labels'] == [*classes, 'background']
    assert saved['counts'] == reference
    assert np.trace(np.array(reference)[:3, :3]) > 0 and reference[3][0] == 1  # the case is real
    assert line.startswith('detection, 3 images, 12 ground-truth boxes')
    assert (tmp_path / 'out' / 'confusion_matrix.png').stat().st_size > 1000


def test_segmentation_matches_bincount_and_mmseg_iou_metric(tmp_path, monkeypatch, capsys):
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    monkeypatch.chdir(tmp_path)
    tool_main('make_demo_data.py')(['ade', '--num-train', '1', '--num-val', '1'])
    rng = np.random.default_rng(1)
    samples, gts, preds = [], [], []
    for shape in [(40, 50), (33, 21), (64, 64)]:
        gt = rng.integers(0, 4, shape)
        gt[rng.uniform(size=shape) < 0.2] = 255  # unlabelled
        pred = np.where(rng.uniform(size=shape) < 0.6, gt % 255, rng.integers(0, 4, shape))
        sample = SegDataSample(metainfo=dict(img_path=f'{len(samples)}.jpg'))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None]))
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None]))
        samples.append(sample)
        gts.append(gt.ravel())
        preds.append(pred.ravel())
    _dump(samples, tmp_path / 'seg.pkl')
    line = _run(capsys, SEG_CONFIG, tmp_path / 'seg.pkl')  # --out-dir: the pkl's folder
    counts = np.array(json.loads((tmp_path / 'confusion_matrix.json').read_text())['counts'])

    gt, pred = np.concatenate(gts), np.concatenate(preds)
    keep = gt != 255
    np.testing.assert_array_equal(
        counts, np.bincount(gt[keep] * 4 + pred[keep], minlength=16).reshape(4, 4))
    metric = IoUMetric(ignore_index=255)
    metric.dataset_meta = dict(classes=('ground', 'square', 'circle', 'triangle'))
    metric.process({}, [s.to_dict() for s in samples])
    inter, union, area_pred, area_label = (sum(r[i] for r in metric.results).numpy()
                                           for i in range(4))
    np.testing.assert_array_equal(np.diag(counts), inter)
    np.testing.assert_array_equal(counts.sum(1), area_label)
    np.testing.assert_array_equal(counts.sum(0), area_pred)
    np.testing.assert_array_equal(counts.sum(0) + counts.sum(1) - np.diag(counts), union)
    miou = metric.compute_metrics(metric.results)['mIoU']
    assert f'mIoU {miou:.2f} %' in line, line
    assert f'{keep.sum()} labelled pixels' in line


def test_classification_matches_mmpretrain_confusion_matrix(tmp_path, monkeypatch, capsys):
    from mmpretrain.evaluation import ConfusionMatrix
    from mmpretrain.structures import DataSample
    monkeypatch.chdir(tmp_path)
    tool_main('make_demo_data.py')(['imagenet', '--num-train', '1', '--num-val', '1'])
    rng = np.random.default_rng(2)
    target, pred = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    samples = [DataSample().set_gt_label(int(t)).set_pred_label(int(p))
               for t, p in zip(target, pred)]
    _dump(samples, tmp_path / 'cls.pkl')
    line = _run(capsys, CLS_CONFIG, tmp_path / 'cls.pkl', '--out-dir', 'out', '--counts')
    counts = json.loads((tmp_path / 'out' / 'confusion_matrix.json').read_text())['counts']
    expected = ConfusionMatrix.calculate(torch.from_numpy(pred), torch.from_numpy(target),
                                         num_classes=3)
    assert counts == expected.tolist()
    assert f'top-1 accuracy {100 * (target == pred).mean():.2f} %' in line


@pytest.mark.parametrize('case', ['seg dump for a det config', 'no such file', 'iou above 1',
                                  'no test set here'])
def test_mistakes_are_one_error_line(tmp_path, monkeypatch, capsys, case):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData, PixelData
    from mmseg.structures import SegDataSample
    monkeypatch.chdir(tmp_path)  # no data/ here
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.zeros(1, 4, 4, dtype=torch.int64))
    _dump([sample], tmp_path / 'seg.pkl')
    sample = DetDataSample(metainfo=dict(img_id=1))
    sample.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                                         labels=torch.zeros(0, dtype=torch.int64))
    _dump([sample], tmp_path / 'det.pkl')
    argv, expected = {
        'seg dump for a det config': ([DET_CONFIG, 'seg.pkl'], 'holds no img_id, pred_instances'),
        'no such file': ([SEG_CONFIG, 'missing.pkl'], 'missing.pkl is not a file'),
        'iou above 1': ([DET_CONFIG, 'seg.pkl', '--tp-iou-thr', '1.5'], 'must be <= 1'),
        'no test set here': ([DET_CONFIG, 'det.pkl'], 'test_dataloader.dataset.data_root=DIR'),
    }[case]
    with pytest.raises(SystemExit) as stop:
        tool_main('confusion_matrix.py')([str(a) for a in argv])
    message = str(stop.value.code) if stop.value.code != 2 else capsys.readouterr().err
    assert expected in message and message.count('error:') == 1, message
