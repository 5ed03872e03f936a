"""Predictions as JSON-ready dicts, one per image or video frame.

- det: ``labels``, ``class_names``, ``scores``, ``bboxes`` (x1, y1, x2, y2 in pixels of the
  input image) and ``masks`` (COCO run-length encoding: ``{'size': [height, width], 'counts':
  str}``, decodable with ``pycocotools.mask.decode``; omitted with ``masks=False``), the
  instances whose score is above ``score_thr`` (as mmdet's visualiser draws them), best first;
- seg: ``label_map`` (the PNG of per-pixel class ids written beside the JSON) and ``classes``:
  per class present, its id, name, pixel count and share of the image;
- cls: ``topk``: the ``k`` best classes (id, name, score = softmax probability), best first.
"""
from typing import List, Optional

import numpy as np


def keep_above(sample, score_thr: float):
    """A copy of the det ``sample`` keeping the predicted instances with score > ``score_thr``
    (mmdet's visualiser's rule), ordered best first."""
    sample = sample.clone()
    instances = sample.pred_instances
    instances = instances[instances.scores > score_thr]
    sample.pred_instances = instances[instances.scores.argsort(descending=True)]
    return sample


def det_record(sample, classes: List[str], masks: bool = True) -> dict:
    """The JSON dict of a det sample (already filtered by ``keep_above``)."""
    instances = sample.pred_instances.cpu()
    labels = instances.labels.tolist()
    record = {'labels': labels, 'class_names': [_name(classes, i) for i in labels],
              'scores': instances.scores.tolist(), 'bboxes': instances.bboxes.tolist()}
    if masks and 'masks' in instances:
        from mmdet.structures.mask import encode_mask_results
        encoded = encode_mask_results(instances.masks.numpy())
        record['masks'] = [{'size': list(m['size']), 'counts': m['counts'].decode()
                            if isinstance(m['counts'], bytes) else m['counts']} for m in encoded]
    return record


def label_map(sample) -> np.ndarray:
    """The seg sample's class ids at the input image's size: (height, width), uint8 when ids
    fit, else uint16 (a 16-bit PNG)."""
    ids = sample.pred_sem_seg.data[0].cpu().numpy()
    return ids.astype(np.uint8 if ids.max(initial=0) < 256 else np.uint16)


def seg_record(ids: np.ndarray, classes: List[str], label_map_file: str) -> dict:
    """The JSON dict of a seg label map ``ids`` (see ``label_map``)."""
    present, counts = np.unique(ids, return_counts=True)
    return {'label_map': label_map_file, 'height': int(ids.shape[0]), 'width': int(ids.shape[1]),
            'classes': [{'id': int(i), 'name': _name(classes, int(i)), 'pixels': int(n),
                         'share': round(float(n) / ids.size, 6)}
                        for i, n in sorted(zip(present, counts), key=lambda p: -p[1])]}


def cls_record(sample, classes: List[str], topk: int) -> dict:
    """The JSON dict of a cls sample: its ``topk`` best classes."""
    scores = sample.pred_score.cpu()
    k = min(topk, scores.numel())
    values, ids = scores.topk(k)
    return {'topk': [{'label': int(i), 'class_name': _name(classes, int(i)), 'score': float(v)}
                     for v, i in zip(values, ids)]}


def _name(classes: List[str], label: int) -> Optional[str]:
    return classes[label] if 0 <= label < len(classes) else str(label)
