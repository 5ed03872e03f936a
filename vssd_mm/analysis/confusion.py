"""Confusion matrices of detection, semantic segmentation and classification predictions.

Rows are ground-truth classes, columns predicted classes (as in mmpretrain's ``ConfusionMatrix``
and mmdet's ``tools/analysis_tools/confusion_matrix.py``). Detection adds a background row and
column (index ``num_classes``): a ground-truth box no detection of its class found is counted in
the background column, a detection that overlaps no ground-truth box in the background row.
Only numpy here; reading predictions and datasets is ``confusion_inputs``'s, drawing
``confusion_plot``'s.
"""
import numpy as np


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every pair; boxes are ``(x1, y1, x2, y2)`` in pixels, areas ``(x2-x1)*(y2-y1)``
    (mmdet 3's convention, no +1).

    Args:
        boxes1: (N, 4); boxes2: (M, 4).

    Returns:
        (N, M) float64.
    """
    boxes1 = np.asarray(boxes1, np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, np.float64).reshape(-1, 4)
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area1 = (boxes1[:, 2:] - boxes1[:, :2]).clip(0).prod(-1)
    area2 = (boxes2[:, 2:] - boxes2[:, :2]).clip(0).prod(-1)
    union = area1[:, None] + area2[None, :] - inter
    return inter / np.maximum(union, np.finfo(np.float64).eps)


def add_detections(matrix: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                   boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                   score_thr: float = 0.3, tp_iou_thr: float = 0.5) -> None:
    """Count one image's detections into ``matrix`` (in place), by mmdet's definition.

    Each detection with ``score >= score_thr`` adds 1 to ``matrix[gt, det]`` for every
    ground-truth box it overlaps with ``IoU >= tp_iou_thr`` (so a detection over two boxes counts
    twice, two detections over one box count twice), or 1 to ``matrix[background, det]`` if it
    overlaps none. Each ground-truth box that no such detection of its own class overlaps adds 1
    to ``matrix[gt, background]`` (also when a detection of another class covers it).

    Args:
        matrix: (C + 1, C + 1) counts; row and column ``C`` are the background.
        gt_boxes: (G, 4) ``x1, y1, x2, y2``; gt_labels: (G,) in ``[0, C)``.
        boxes: (D, 4); scores: (D,); labels: (D,) in ``[0, C)``.
    """
    background = matrix.shape[0] - 1
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    kept = np.asarray(scores).reshape(-1) >= score_thr
    boxes, labels = np.asarray(boxes).reshape(-1, 4)[kept], labels[kept]
    overlaps = box_iou(boxes, gt_boxes) >= tp_iou_thr  # (D, G)
    det_index, gt_index = np.nonzero(overlaps)
    np.add.at(matrix, (gt_labels[gt_index], labels[det_index]), 1)
    np.add.at(matrix, (background, labels[~overlaps.any(1)]), 1)
    found = (overlaps & (labels[:, None] == gt_labels[None, :])).any(0)
    np.add.at(matrix, (gt_labels[~found], background), 1)


def label_confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (ground truth, prediction) pairs: ``(num_classes, num_classes)`` int64.

    Args:
        gt, pred: label arrays of one shape (pixels of a label map, one label per image), values
            in ``[0, num_classes)``; leave ignored entries out before calling.
    """
    gt = np.asarray(gt, np.int64).reshape(-1)
    pred = np.asarray(pred, np.int64).reshape(-1)
    if gt.shape != pred.shape:
        raise ValueError(f'{gt.size} ground-truth labels but {pred.size} predictions')
    return np.bincount(gt * num_classes + pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """(C,) intersection over union of each class from a (C, C) pixel matrix, as mmseg's
    ``IoUMetric``: diagonal / (row sum + column sum - diagonal); NaN where a class is in neither
    the labels nor the predictions."""
    matrix = np.asarray(matrix, np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / union, np.nan)


def row_percent(matrix: np.ndarray) -> np.ndarray:
    """Each row as percent of its sum (a row with no ground truth stays 0)."""
    matrix = np.asarray(matrix, np.float64)
    sums = matrix.sum(1, keepdims=True)
    return np.divide(100 * matrix, sums, out=np.zeros_like(matrix), where=sums > 0)
