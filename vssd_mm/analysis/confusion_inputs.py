"""A confusion matrix from ``tools/test.py CONFIG CKPT --out preds.pkl``'s predictions and the
config's test set: detection (mmdet: ground-truth boxes read through the test dataset, matched to
the predictions by ``img_id``), semantic segmentation (mmseg: ``pred_sem_seg`` against the
``gt_sem_seg`` the dump holds) and classification (mmpretrain: ``pred_label`` against
``gt_label``). The config's ``default_scope`` picks the task. Problems are ``ToolError``s."""
from dataclasses import dataclass, field
from typing import Callable, List, Sequence

import numpy as np
from mmengine.config import Config

from ..engine.errors import ToolError
from ..engine.evaluation_flags import innermost_dataset
from .confusion import add_detections, label_confusion

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation', 'mmpretrain': 'classification'}
DUMP_HINT = 'write it with: python tools/test.py CONFIG CHECKPOINT --out preds.pkl'


@dataclass
class Confusion:
    """Rows are ground truth, columns predictions. Detection: ``matrix`` is (C + 1, C + 1), the
    last row and column the background; otherwise (C, C). Segmentation counts pixels,
    detection boxes (see ``confusion.add_detections``), classification images."""
    task: str
    classes: Sequence[str]
    matrix: np.ndarray
    images: int
    num_gt: int  # detection: ground-truth boxes; segmentation: labelled pixels; else images
    settings: dict = field(default_factory=dict)

    @property
    def labels(self) -> List[str]:
        """Names of the rows and columns."""
        extra = ['background'] if self.task == 'detection' else []
        return list(self.classes) + extra


def read_predictions(path: str) -> list:
    """The list of per-image dicts in a ``.pkl`` dumped by ``tools/test.py --out``."""
    import os.path as osp
    from mmengine.fileio import load
    if not osp.isfile(path):
        raise ToolError(f'PREDICTIONS {path} is not a file; {DUMP_HINT}')
    try:
        results = load(path, file_format='pkl')
    except Exception as err:  # a truncated or foreign file: pickle raises many kinds
        raise ToolError(f'PREDICTIONS {path} is not a readable .pkl ({type(err).__name__}: '
                        f'{err}); {DUMP_HINT}') from None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ToolError(f'PREDICTIONS {path} does not hold a list of per-image predictions; '
                        f'{DUMP_HINT}')
    if not results:
        raise ToolError(f'PREDICTIONS {path} holds no predictions')
    return results


def config_test_set(cfg: Config):
    """The config's test set as its library builds it (annotations parsed, no pipeline)."""
    from ..engine.data_check import build_annotations
    loader = cfg.get('test_dataloader') or {}
    if not loader.get('dataset'):
        raise ToolError('the config has no test_dataloader.dataset to read the classes '
                        '(and detection ground truth) from')
    dataset_cfg = innermost_dataset(loader['dataset'])
    try:
        dataset = build_annotations(dataset_cfg, cfg.get('default_scope'))
    except FileNotFoundError as err:
        raise ToolError(f'the config\'s test set cannot be read ({err}); point it at the data '
                        'the predictions were made on, e.g. --cfg-options '
                        f'test_dataloader.dataset.data_root=DIR (now {dataset_cfg.get("data_root")})'
                        ) from None
    if not dataset.metainfo.get('classes'):
        raise ToolError('the test dataset of the config names no classes (metainfo.classes)')
    return dataset


def _require(results: list, keys: Sequence[str], path: str, what: str) -> None:
    missing = [k for k in keys if k not in results[0]]
    if missing:
        raise ToolError(f'PREDICTIONS {path} holds no {", ".join(missing)} ({what}): is it the '
                        f'dump of this config\'s task? {DUMP_HINT}')


def _array(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, 'numpy') else value)


def detection_confusion(cfg: Config, results: list, path: str, score_thr: float,
                        tp_iou_thr: float, progress: Callable = iter) -> Confusion:
    """mmdet's confusion matrix (``confusion.add_detections``) over the images of ``results``;
    ground truth is every instance the test dataset parses (crowd ones too, as mmdet's tool)."""
    _require(results, ('img_id', 'pred_instances'), path, 'mmdet predictions')
    dataset = config_test_set(cfg)
    classes = dataset.metainfo['classes']
    truth = {info['img_id']: info['instances']
             for info in map(dataset.get_data_info, range(len(dataset)))}
    unknown = [r['img_id'] for r in results if r['img_id'] not in truth]
    if unknown:
        raise ToolError(f'PREDICTIONS {path}: {len(unknown)} images (img_id {unknown[0]}, ...) '
                        'are not in the config\'s test set; were they predicted with this config?')
    matrix = np.zeros((len(classes) + 1,) * 2, np.int64)
    num_gt = 0
    for result in progress(results):
        instances = truth[result['img_id']]
        pred = result['pred_instances']
        labels = _array(pred['labels'])
        if labels.size and labels.max() >= len(classes):
            raise ToolError(f'PREDICTIONS {path} has label {labels.max()} but the config\'s test '
                            f'set names {len(classes)} classes')
        add_detections(matrix, [i['bbox'] for i in instances],
                       [i['bbox_label'] for i in instances], _array(pred['bboxes']),
                       _array(pred['scores']), labels, score_thr, tp_iou_thr)
        num_gt += len(instances)
    return Confusion('detection', classes, matrix, len(results), num_gt,
                     dict(score_thr=score_thr, tp_iou_thr=tp_iou_thr))


def _ignore_index(cfg: Config) -> int:
    """The ignore index the config's IoUMetric leaves out (mmseg's default 255)."""
    evaluator = cfg.get('test_evaluator') or {}
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    for metric in metrics:
        if isinstance(metric, dict) and metric.get('type') == 'IoUMetric':
            return int(metric.get('ignore_index', 255))
    return 255


def segmentation_confusion(cfg: Config, results: list, path: str,
                           progress: Callable = iter) -> Confusion:
    """Pixel counts of (label, prediction) over every labelled pixel (the config's IoUMetric
    ``ignore_index`` left out) of the images of ``results``."""
    _require(results, ('pred_sem_seg', 'gt_sem_seg'), path,
             'mmseg predictions with their label maps: the test pipeline needs LoadAnnotations')
    classes = config_test_set(cfg).metainfo['classes']
    ignore_index = _ignore_index(cfg)
    matrix = np.zeros((len(classes),) * 2, np.int64)
    for result in progress(results):
        gt = _array(result['gt_sem_seg']['data']).squeeze()
        pred = _array(result['pred_sem_seg']['data']).squeeze()
        if gt.shape != pred.shape:
            raise ToolError(f'PREDICTIONS {path}: {result.get("img_path")} has a {pred.shape} '
                            f'prediction for a {gt.shape} label map')
        labelled = gt != ignore_index
        gt, pred = gt[labelled], pred[labelled]
        if gt.size and (gt.min() < 0 or gt.max() >= len(classes)):
            raise ToolError(f'{result.get("seg_map_path", result.get("img_path"))}: label '
                            f'{gt.max() if gt.max() >= len(classes) else gt.min()} is neither a '
                            f'class of the {len(classes)} nor the ignore index {ignore_index}')
        matrix += label_confusion(gt, pred, len(classes))
    return Confusion('segmentation', classes, matrix, len(results), int(matrix.sum()),
                     dict(ignore_index=ignore_index))


def classification_confusion(cfg: Config, results: list, path: str,
                             progress: Callable = iter) -> Confusion:
    """Image counts of (label, top-1 prediction)."""
    _require(results, ('pred_label', 'gt_label'), path, 'mmpretrain predictions')
    classes = config_test_set(cfg).metainfo['classes']
    gt = np.concatenate([_array(r['gt_label']).reshape(-1)[:1] for r in progress(results)])
    pred = np.concatenate([_array(r['pred_label']).reshape(-1)[:1] for r in results])
    if max(gt.max(), pred.max()) >= len(classes):
        raise ToolError(f'PREDICTIONS {path} has label {max(gt.max(), pred.max())} but the '
                        f'config\'s test set names {len(classes)} classes')
    return Confusion('classification', classes, label_confusion(gt, pred, len(classes)),
                     len(results), len(results))


def confusion_from_dump(cfg: Config, path: str, score_thr: float = 0.3,
                        tp_iou_thr: float = 0.5, progress: Callable = iter) -> Confusion:
    """The confusion matrix of the predictions in ``path`` (a ``tools/test.py --out`` pickle)
    for the task of ``cfg``'s ``default_scope``. ``progress(list)`` may wrap the loop over
    images in a progress bar. ``score_thr`` / ``tp_iou_thr``: detection only."""
    task = TASKS.get(cfg.get('default_scope'))
    if task is None:
        raise ToolError(f'default_scope {cfg.get("default_scope")!r}: confusion matrices are '
                        'made for mmdet, mmseg and mmpretrain configs')
    results = read_predictions(path)
    if task == 'detection':
        return detection_confusion(cfg, results, path, score_thr, tp_iou_thr, progress)
    if task == 'segmentation':
        return segmentation_confusion(cfg, results, path, progress)
    return classification_confusion(cfg, results, path, progress)

