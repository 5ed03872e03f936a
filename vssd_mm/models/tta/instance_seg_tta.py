"""Merge multi-scale / flipped test views of an instance-segmentation model (Mask R-CNN).

mmdet 3.3's ``DetTTAModel`` merges boxes only and refuses predictions that carry masks. This model
maps every view's detections back to the original image (un-flips boxes and masks), merges the
boxes of all views with class-wise NMS like ``DetTTAModel``, and gives each kept instance the vote
of the binary masks that describe it: the masks, from any view, of the detections of the same
class whose boxes overlap the kept box by IoU >= the NMS threshold (the kept detection included).
A pixel belongs to the merged mask when the fraction of those masks that contain it is
>= ``mask_thr``.

This is not what mmdet 2.x's ``aug_test`` did with ``merge_aug_masks``: that ran the mask head of
every view on the *merged* boxes and averaged the soft (sigmoid) RoI mask predictions before
pasting and thresholding them once. Here each view's own detections vote with the masks the
detector already pasted and thresholded (``mask_thr_binary``).

Memory: a view's masks arrive as ``(N, H, W)`` bool at the original image size (mmdet's predict
with ``rescale=True``). ``test_step`` cuts each mask to the smallest rectangle that holds its
pixels as soon as its view is predicted, so across views only those rectangles are held, never
``views x N x H x W``; each kept instance is voted on the union rectangle of its voters' masks
(outside it no voter has a pixel), which gives exactly the full-size vote. The rectangles are
found from the pixels, not the boxes: after mmdet's paste with ``mask_thr_binary=0.5`` a mask's
pixels lie inside its box, with a lower threshold they reach beyond it. The result is
``(K, H, W)`` bool, as a plain predict's.
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
from mmengine.model import BaseTTAModel
from mmengine.registry import MODELS
from mmengine.structures import InstanceData
from torch import Tensor

_FLIP_DIMS = {'horizontal': (-1, ), 'vertical': (-2, ), 'diagonal': (-2, -1)}


def unflip_boxes(boxes: Tensor, image_hw: Tuple[int, int], direction: str) -> Tensor:
    """Undo a flip of (N, 4) x1y1x2y2 boxes in an image of ``image_hw`` (height, width) px."""
    if direction not in _FLIP_DIMS:
        raise ValueError(f'unknown flip_direction {direction!r}')
    height, width = image_hw
    x1, y1, x2, y2 = boxes.unbind(-1)
    if direction in ('horizontal', 'diagonal'):
        x1, x2 = width - x2, width - x1
    if direction in ('vertical', 'diagonal'):
        y1, y2 = height - y2, height - y1
    return torch.stack([x1, y1, x2, y2], dim=-1)


def unflip_masks(masks: Tensor, direction: str) -> Tensor:
    """Undo a flip of (N, H, W) masks."""
    return masks.flip(_FLIP_DIMS[direction])


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix (len(a), len(b)) of x1y1x2y2 boxes."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


class CroppedMasks(NamedTuple):
    """N binary masks of an (H, W) image, each kept as the rectangle that holds its pixels.

    ``crops[i]``: (h_i, w_i) bool, (0, 0) for an empty mask; ``corners``: (N, 4) long
    ``y0, x0, y1, x1`` of each rectangle in the image (pixels, end exclusive)."""
    crops: List[Tensor]
    corners: Tensor
    image_hw: Tuple[int, int]


def crop_masks(masks: Tensor, flip_direction: Optional[str] = None) -> CroppedMasks:
    """(N, H, W) bool masks -> ``CroppedMasks``, un-flipped first if ``flip_direction`` is given
    (each crop is flipped on its own; the full-size masks are not copied)."""
    if masks.dtype != torch.bool:
        raise TypeError(f'InstanceSegTTAModel merges binary masks (bool), got {masks.dtype}: '
                        'the mask head must threshold them (rcnn test_cfg mask_thr_binary >= 0)')
    height, width = masks.shape[-2:]
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (N, H), (N, W)
    filled = rows.any(dim=1)
    # first and one-past-last set row / column; 0 and 0 for an empty mask
    y0 = rows.byte().argmax(dim=1)
    y1 = torch.where(filled, height - rows.flip(1).byte().argmax(dim=1), 0)
    x0 = cols.byte().argmax(dim=1)
    x1 = torch.where(filled, width - cols.flip(1).byte().argmax(dim=1), 0)
    corners = torch.stack([y0, x0, y1, x1], dim=1).long()
    crops = []
    for i, (a, b, c, d) in enumerate(corners.tolist()):
        crop = masks[i, a:c, b:d]
        crops.append(crop.flip(_FLIP_DIMS[flip_direction]) if flip_direction else crop.clone())
    if flip_direction in ('horizontal', 'diagonal'):
        corners[:, [1, 3]] = torch.where(filled[:, None], width - corners[:, [3, 1]], 0)
    if flip_direction in ('vertical', 'diagonal'):
        corners[:, [0, 2]] = torch.where(filled[:, None], height - corners[:, [2, 0]], 0)
    return CroppedMasks(crops, corners.cpu(), (int(height), int(width)))


class _View(NamedTuple):
    """One view's detections in the original image: ``instances`` (bboxes, scores, labels) and
    their masks (None for a detector without masks)."""
    instances: InstanceData
    masks: Optional[CroppedMasks]


@MODELS.register_module()
class InstanceSegTTAModel(BaseTTAModel):
    """Test-time augmentation for detectors with or without instance masks.

    Args:
        module: the detector config (filled in by ``tools/test.py --tta``).
        tta_cfg: ``dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
            mask_thr=0.5)``. ``nms`` also decides which views' masks vote for a kept instance
            (same class, box IoU >= iou_threshold); ``mask_thr`` is the fraction of votes a
            pixel needs.

    Every view's ``pred_instances`` must be in original-image coordinates with bool masks of the
    original size (mmdet's ``predict(..., rescale=True)``, what its test loop does), with
    ``flip`` / ``flip_direction`` in the metainfo
    (``PackDetInputs(meta_keys=(..., 'flip', 'flip_direction'))``).
    """

    def __init__(self, tta_cfg: dict, **kwargs):
        super().__init__(**kwargs)
        self.tta_cfg = tta_cfg
        self.iou_thr = float(tta_cfg['nms']['iou_threshold'])
        self.max_per_img = int(tta_cfg.get('max_per_img', 100))
        self.mask_thr = float(tta_cfg.get('mask_thr', 0.5))

    def test_step(self, data) -> list:
        """Predict every view of the batch (``data``: per key, or per item, a list over views,
        as ``TestTimeAug`` + ``pseudo_collate`` give it) and merge the views of each image. Each
        view's masks are cropped (and dropped from its samples) as soon as it is predicted."""
        if isinstance(data, dict):
            batches = [dict(zip(data, view)) for view in zip(*data.values())]
        elif isinstance(data, (list, tuple)):
            batches = [list(view) for view in zip(*data)]
        else:
            raise TypeError(f'a test batch is a dict, list or tuple, got {type(data)}')
        samples, views = [], []  # [view][image]
        for batch in batches:
            predicted = self.module.test_step(batch)
            views.append([self._recover_view(s) for s in predicted])
            for s in predicted:
                del s.pred_instances  # its masks: the full-size tensors of this view
            samples.append(predicted)
        return [self._merge(list(image_views), image_samples[0])
                for image_views, image_samples in zip(zip(*views), zip(*samples))]

    def merge_preds(self, data_samples_list: List[list]) -> list:
        """Merge the views of each image: ``data_samples_list[image][view]`` -> one per image
        (the first view's sample, with the merged ``pred_instances``)."""
        return [self._merge([self._recover_view(v) for v in views], views[0])
                for views in data_samples_list]

    def _recover_view(self, sample) -> _View:
        """One view's instances in the original (un-flipped) image."""
        pred = sample.pred_instances
        meta = sample.metainfo
        if 'flip' not in meta:
            raise KeyError('InstanceSegTTAModel needs "flip" and "flip_direction" in the view '
                           "metainfo: add them to PackDetInputs' meta_keys in tta_pipeline")
        ori_hw = tuple(meta['ori_shape'][:2])
        direction = meta['flip_direction'] if meta['flip'] else None
        boxes = unflip_boxes(pred.bboxes, ori_hw, direction) if direction else pred.bboxes
        instances = InstanceData(bboxes=boxes, scores=pred.scores, labels=pred.labels)
        if 'masks' not in pred:
            return _View(instances, None)
        if tuple(pred.masks.shape[-2:]) != ori_hw:
            raise ValueError(f'a view\'s masks are {tuple(pred.masks.shape[-2:])} px, the '
                             f'original image {ori_hw}: views must be predicted with '
                             'rescale=True (as mmdet\'s test_step does)')
        return _View(instances, crop_masks(pred.masks, direction))

    def _merge(self, views: List[_View], result):
        with_masks = {v.masks is not None for v in views}
        if len(with_masks) > 1:
            raise ValueError('some views of an image carry masks and others do not')
        merged = InstanceData.cat([v.instances for v in views])
        image_hw = views[0].masks.image_hw if views[0].masks is not None else None
        if len(merged) == 0:
            keep = merged.labels.new_zeros(0)
            out = merged
        else:
            # imported here: mmcv's compiled ops are needed by detection only, and
            # `import vssd_mm` must work for classification with an mmcv built without them
            from mmcv.ops import batched_nms
            dets, keep = batched_nms(merged.bboxes, merged.scores, merged.labels,
                                     self.tta_cfg['nms'])
            keep = keep[:self.max_per_img]
            out = InstanceData(bboxes=dets[:len(keep), :4], scores=dets[:len(keep), 4],
                               labels=merged.labels[keep])
        if image_hw is not None:
            crops = [c for v in views for c in v.masks.crops]
            corners = torch.cat([v.masks.corners for v in views])
            out.masks = self._vote_masks(merged, CroppedMasks(crops, corners, image_hw), keep)
        result.pred_instances = out
        return result

    def _vote_masks(self, merged: InstanceData, masks: CroppedMasks, keep: Tensor) -> Tensor:
        """(len(keep), H, W) bool: per kept instance, the pixels that at least ``mask_thr`` of
        its voters' masks (same class, box IoU >= the NMS threshold, itself included) contain."""
        height, width = masks.image_hw
        device = merged.bboxes.device
        # a pixel outside every voter's rectangle has no vote: in only if mask_thr <= 0
        out = torch.full((len(keep), height, width), 0.0 >= self.mask_thr, dtype=torch.bool,
                         device=device)
        if len(keep) == 0:
            return out
        same_class = merged.labels[keep][:, None] == merged.labels[None, :]
        voters = same_class & (box_iou(merged.bboxes[keep], merged.bboxes) >= self.iou_thr)
        voters[torch.arange(len(keep)), keep] = True  # a kept box always votes for itself
        corners = masks.corners
        for i, row in enumerate(voters.cpu()):
            members = row.nonzero()[:, 0]
            filled = members[corners[members, 2] > corners[members, 0]]
            if len(filled) == 0:
                continue
            top, left = corners[filled, :2].min(dim=0).values.tolist()
            bottom, right = corners[filled, 2:].max(dim=0).values.tolist()
            votes = torch.zeros((bottom - top, right - left), dtype=torch.int32, device=device)
            for j in filled.tolist():
                y0, x0, y1, x1 = corners[j].tolist()
                votes[y0 - top:y1 - top, x0 - left:x1 - left] += masks.crops[j]
            # the fraction in float64: exact for any count of voters
            out[i, top:bottom, left:right] = votes.double() / len(members) >= self.mask_thr
        return out
