"""Merge multi-scale / flipped test views of an instance-segmentation model (Mask R-CNN).

mmdet 3.3's ``DetTTAModel`` merges boxes only and refuses predictions that carry masks. This model
maps every view back to the original image, merges the boxes with class-wise NMS like
``DetTTAModel``, and gives each kept instance the vote of all masks that describe it: the masks
of the same class whose boxes overlap the kept box by at least the NMS IoU threshold are averaged
(mmdet 2.x's ``merge_aug_masks`` averaged per RoI the same way) and thresholded at ``mask_thr``.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmengine.registry import MODELS
from mmengine.structures import InstanceData
from torch import Tensor


def unflip_boxes(boxes: Tensor, image_hw: Tuple[int, int], direction: str) -> Tensor:
    """Undo a flip of (N, 4) x1y1x2y2 boxes in an image of ``image_hw`` (height, width) px."""
    if direction not in ('horizontal', 'vertical', 'diagonal'):
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
    dims = {'horizontal': [-1], 'vertical': [-2], 'diagonal': [-2, -1]}[direction]
    return masks.flip(dims)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix (len(a), len(b)) of x1y1x2y2 boxes."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


@MODELS.register_module()
class InstanceSegTTAModel(BaseTTAModel):
    """Test-time augmentation for detectors with or without instance masks.

    Args:
        module: the detector config (filled in by ``tools/test.py --tta``).
        tta_cfg: ``dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
            mask_thr=0.5)``. ``nms`` also decides which views' masks vote for a kept instance
            (same class, box IoU >= iou_threshold); ``mask_thr`` is the fraction of votes a
            pixel needs.

    Every view's ``pred_instances`` must be in original-image coordinates (mmdet's
    ``predict(..., rescale=True)``, what its test loop does), with ``flip`` / ``flip_direction``
    in the metainfo (``PackDetInputs(meta_keys=(..., 'flip', 'flip_direction'))``).
    """

    def __init__(self, tta_cfg: dict, **kwargs):
        super().__init__(**kwargs)
        self.tta_cfg = tta_cfg
        self.iou_thr = float(tta_cfg['nms']['iou_threshold'])
        self.max_per_img = int(tta_cfg.get('max_per_img', 100))
        self.mask_thr = float(tta_cfg.get('mask_thr', 0.5))

    def merge_preds(self, data_samples_list: List[list]) -> list:
        """Merge the views of each image: ``data_samples_list[image][view]`` -> one per image."""
        return [self._merge_views(views) for views in data_samples_list]

    def _recover_view(self, sample) -> InstanceData:
        """One view's instances in the original (un-flipped, un-resized) image."""
        pred = sample.pred_instances
        meta = sample.metainfo
        if 'flip' not in meta:
            raise KeyError('InstanceSegTTAModel needs "flip" and "flip_direction" in the view '
                           "metainfo: add them to PackDetInputs' meta_keys in tta_pipeline")
        ori_hw = tuple(meta['ori_shape'][:2])
        out = InstanceData(bboxes=pred.bboxes, scores=pred.scores, labels=pred.labels)
        if meta['flip']:
            out.bboxes = unflip_boxes(pred.bboxes, ori_hw, meta['flip_direction'])
        if 'masks' in pred:
            masks = pred.masks
            if meta['flip']:
                masks = unflip_masks(masks, meta['flip_direction'])
            if tuple(masks.shape[-2:]) != ori_hw:  # a view predicted without rescale
                masks = F.interpolate(masks[:, None].float(), size=ori_hw,
                                      mode='bilinear', align_corners=False)[:, 0] >= 0.5
            out.masks = masks
        return out

    def _merge_views(self, views: list):
        recovered = [self._recover_view(v) for v in views]
        merged = InstanceData.cat(recovered)
        result = views[0]
        if len(merged) == 0:
            result.pred_instances = recovered[0]
            return result
        # imported here: mmcv's compiled ops are needed by detection only, and `import vssd_mm`
        # must work for classification with an mmcv built without them
        from mmcv.ops import batched_nms
        dets, keep = batched_nms(merged.bboxes, merged.scores, merged.labels, self.tta_cfg['nms'])
        keep = keep[:self.max_per_img]
        out = InstanceData(bboxes=dets[:len(keep), :4], scores=dets[:len(keep), 4],
                           labels=merged.labels[keep])
        if 'masks' in merged:
            out.masks = self._vote_masks(merged, keep)
        result.pred_instances = out
        return result

    def _vote_masks(self, merged: InstanceData, keep: Tensor) -> Tensor:
        """(len(keep), H, W) bool: per kept instance, the mean of the overlapping same-class
        masks of all views, thresholded at ``mask_thr``."""
        same_class = merged.labels[keep][:, None] == merged.labels[None, :]
        voters = same_class & (box_iou(merged.bboxes[keep], merged.bboxes) >= self.iou_thr)
        voters[torch.arange(len(keep)), keep] = True  # a kept box always votes for itself
        masks = merged.masks
        out = torch.empty((len(keep), *masks.shape[-2:]), dtype=torch.bool, device=masks.device)
        for i, row in enumerate(voters):
            out[i] = masks[row].float().mean(0) >= self.mask_thr
        return out
