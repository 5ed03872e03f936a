"""InstanceSegTTAModel: views mapped back to the original image, boxes NMS-merged, masks voted."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from vssd_mm.models.tta.instance_seg_tta import InstanceSegTTAModel, unflip_boxes, unflip_masks

H, W = 40, 60


class _Detector(torch.nn.Module):
    def test_step(self, data):  # only merge_preds is exercised here
        raise NotImplementedError


def _tta(iou=0.5, max_per_img=100):
    return InstanceSegTTAModel(module=_Detector(),
                               tta_cfg=dict(nms=dict(type='nms', iou_threshold=iou),
                                            max_per_img=max_per_img, mask_thr=0.5))


def _rect_mask(x0, y0, x1, y1):
    m = torch.zeros(H, W, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def _view(boxes, scores, labels, masks, flip=None):
    """A view's prediction in original-image coordinates (flipped if ``flip`` is a direction)."""
    boxes = torch.tensor(boxes, dtype=torch.float32)
    masks = torch.stack(masks)
    if flip:
        boxes, masks = unflip_boxes(boxes, (H, W), flip), unflip_masks(masks, flip)  # involution
    s = DetDataSample(metainfo=dict(ori_shape=(H, W), flip=flip is not None,
                                    flip_direction=flip, img_id=0))
    s.pred_instances = InstanceData(bboxes=boxes, scores=torch.tensor(scores),
                                    labels=torch.tensor(labels), masks=masks)
    return s


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_unflip_is_exact_inverse(direction):
    boxes = torch.tensor([[3., 5., 20., 30.], [0., 0., 60., 40.]])
    masks = torch.rand(2, H, W) > 0.5
    assert torch.equal(unflip_boxes(unflip_boxes(boxes, (H, W), direction), (H, W), direction),
                       boxes)
    assert torch.equal(unflip_masks(unflip_masks(masks, direction), direction), masks)
    flipped = unflip_boxes(boxes[:1], (H, W), 'horizontal')
    assert flipped.tolist() == [[40., 5., 57., 30.]]


def test_flipped_view_merges_to_the_plain_view():
    boxes = [[2, 3, 20, 18], [30, 10, 55, 35]]
    masks = [_rect_mask(2, 3, 20, 18), _rect_mask(30, 10, 55, 35)]
    plain = _view(boxes, [0.9, 0.8], [0, 2], masks)
    flipped = _view(boxes, [0.85, 0.7], [0, 2], masks, flip='horizontal')
    merged = _tta().merge_preds([[plain, flipped]])[0].pred_instances
    assert merged.labels.tolist() == [0, 2]
    assert torch.allclose(merged.bboxes, torch.tensor(boxes, dtype=torch.float32))
    assert merged.scores.tolist() == pytest.approx([0.9, 0.8])
    assert torch.equal(merged.masks, torch.stack(masks))


def test_masks_are_a_majority_vote_of_overlapping_same_class_views():
    box = [10, 10, 30, 30]
    views = [_view([box], [0.9], [1], [_rect_mask(10, 10, 30, 30)]),
             _view([box], [0.8], [1], [_rect_mask(10, 10, 30, 26)], flip='horizontal'),
             _view([box], [0.7], [1], [_rect_mask(10, 10, 30, 22)])]
    merged = _tta().merge_preds([views])[0].pred_instances
    assert len(merged) == 1
    # rows 10-21 have 3 votes, 22-25 two of three, 26-29 only one
    assert torch.equal(merged.masks[0], _rect_mask(10, 10, 30, 26))


def test_other_classes_and_distant_boxes_do_not_vote():
    views = [_view([[10, 10, 30, 30]], [0.9], [1], [_rect_mask(10, 10, 30, 30)]),
             _view([[10, 10, 30, 30]], [0.8], [0], [_rect_mask(0, 0, 60, 40)]),
             _view([[40, 10, 58, 30]], [0.8], [1], [_rect_mask(0, 0, 60, 40)])]
    merged = _tta().merge_preds([views])[0].pred_instances
    assert len(merged) == 3
    first = merged.scores.argmax()
    assert torch.equal(merged.masks[first], _rect_mask(10, 10, 30, 30))


def test_masks_at_view_resolution_are_resized_to_the_original_image():
    s = _view([[0, 0, 30, 20]], [0.9], [0], [_rect_mask(0, 0, 30, 20)])
    s.pred_instances.masks = torch.zeros(1, 2 * H, 2 * W, dtype=torch.bool)
    s.pred_instances.masks[0, :40, :60] = True
    merged = _tta().merge_preds([[s]])[0].pred_instances
    assert merged.masks.shape == (1, H, W)
    assert torch.equal(merged.masks[0], _rect_mask(0, 0, 30, 20))


def test_max_per_img_and_empty_views():
    boxes = [[i * 5, 0, i * 5 + 4, 4] for i in range(6)]
    view = _view(boxes, [0.9 - 0.1 * i for i in range(6)], [0] * 6,
                 [_rect_mask(*b) for b in boxes])
    assert len(_tta(max_per_img=4).merge_preds([[view]])[0].pred_instances) == 4
    e = DetDataSample(metainfo=dict(ori_shape=(H, W), flip=False, flip_direction=None))
    e.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                                    labels=torch.zeros(0, dtype=torch.long),
                                    masks=torch.zeros(0, H, W, dtype=torch.bool))
    assert len(_tta().merge_preds([[e, e]])[0].pred_instances) == 0


def test_missing_flip_metainfo_is_a_clear_error():
    s = _view([[0, 0, 5, 5]], [0.9], [0], [_rect_mask(0, 0, 5, 5)])
    s.set_metainfo(dict(ori_shape=(H, W)))
    del s.flip
    with pytest.raises(KeyError, match='flip_direction'):
        _tta().merge_preds([[s]])
