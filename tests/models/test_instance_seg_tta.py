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


def test_masks_not_at_the_original_size_or_not_binary_are_refused():
    s = _view([[0, 0, 30, 20]], [0.9], [0], [_rect_mask(0, 0, 30, 20)])
    s.pred_instances.masks = torch.zeros(1, 2 * H, 2 * W, dtype=torch.bool)
    with pytest.raises(ValueError, match='rescale=True'):
        _tta().merge_preds([[s]])
    s.pred_instances.masks = _rect_mask(0, 0, 30, 20)[None].to(torch.uint8) * 255
    with pytest.raises(TypeError, match='mask_thr_binary'):
        _tta().merge_preds([[s]])


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


# -- the cropped merge against a dense one ---------------------------------------------------------

_FLIPS = [None, 'horizontal', 'vertical', 'diagonal', 'horizontal', None]


def _random_views(seed, height=37, width=53, objects=6, per_view=9):
    """Views of one image as a detector gives them (each in its own, possibly flipped, frame):
    jittered copies of a few objects plus strays, random masks around (and a few pixels outside)
    their boxes, some masks empty."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(objects, 2, generator=g) * torch.tensor([width, height])
    sizes = 4 + torch.rand(objects, 2, generator=g) * 16
    classes = torch.randint(0, 3, (objects, ), generator=g)
    samples = []
    for direction in _FLIPS:
        pick = torch.randint(0, objects, (per_view, ), generator=g)
        c = centres[pick] + torch.randn(per_view, 2, generator=g)
        half = sizes[pick] * (1 + 0.1 * torch.randn(per_view, 2, generator=g)) / 2
        boxes = torch.cat([c - half, c + half], 1).clamp(min=0)
        boxes = torch.minimum(boxes, torch.tensor([width, height, width, height]))
        labels = torch.where(torch.rand(per_view, generator=g) < 0.8, classes[pick],
                             torch.randint(0, 3, (per_view, ), generator=g))
        ys, xs = torch.arange(height)[:, None] + 0.5, torch.arange(width)[None] + 0.5
        inside = ((xs > boxes[:, 0, None, None] - 2) & (xs < boxes[:, 2, None, None] + 2)
                  & (ys > boxes[:, 1, None, None] - 2) & (ys < boxes[:, 3, None, None] + 2))
        masks = inside & (torch.rand(per_view, height, width, generator=g) < 0.7)
        masks |= torch.rand(per_view, height, width, generator=g) < 0.002  # strays anywhere
        masks[torch.rand(per_view, generator=g) < 0.15] = False
        frame_boxes, frame_masks = boxes, masks
        if direction in ('horizontal', 'diagonal'):
            frame_boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                                       boxes[:, 3]], 1)
            frame_masks = frame_masks.flip(-1)
        if direction in ('vertical', 'diagonal'):
            frame_boxes = torch.stack([frame_boxes[:, 0], height - frame_boxes[:, 3],
                                       frame_boxes[:, 2], height - frame_boxes[:, 1]], 1)
            frame_masks = frame_masks.flip(-2)
        s = DetDataSample(metainfo=dict(ori_shape=(height, width), flip=direction is not None,
                                        flip_direction=direction, img_id=0))
        s.pred_instances = InstanceData(bboxes=frame_boxes, labels=labels,
                                        scores=torch.rand(per_view, generator=g),
                                        masks=frame_masks)
        samples.append(s)
    return samples


def _dense_merge(samples, iou_thr, max_per_img, mask_thr):
    """The merge written out on full-size masks: all views flipped back and stacked, a kept
    instance's mask the mean of its voters' masks (same class, torchvision box IoU >= iou_thr)."""
    from mmcv.ops import batched_nms
    from torchvision.ops import box_iou as tv_box_iou
    boxes, masks = [], []
    for s in samples:
        (height, width), direction = s.ori_shape, s.flip_direction
        x1, y1, x2, y2 = s.pred_instances.bboxes.T
        m = s.pred_instances.masks
        if direction in ('horizontal', 'diagonal'):
            x1, x2, m = width - x2, width - x1, m.flip(2)
        if direction in ('vertical', 'diagonal'):
            y1, y2, m = height - y2, height - y1, m.flip(1)
        boxes.append(torch.stack([x1, y1, x2, y2], 1))
        masks.append(m)
    boxes, masks = torch.cat(boxes), torch.cat(masks)  # (views * N, 4), (views * N, H, W)
    scores = torch.cat([s.pred_instances.scores for s in samples])
    labels = torch.cat([s.pred_instances.labels for s in samples])
    dets, keep = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=iou_thr))
    keep = keep[:max_per_img]
    merged = []
    for k in keep.tolist():
        voters = (labels == labels[k]) & (tv_box_iou(boxes[k:k + 1], boxes)[0] >= iou_thr)
        voters[k] = True
        merged.append(masks[voters].double().mean(0) >= mask_thr)
    return dets[:len(keep), :4], dets[:len(keep), 4], labels[keep], torch.stack(merged)


class _ReplayDetector(torch.nn.Module):
    """'Predicts' a view by returning the samples it is given (their pred_instances preset)."""

    def test_step(self, data):
        return data['data_samples']


def _clone(sample):
    out = sample.clone()
    out.pred_instances = sample.pred_instances.clone()
    return out


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('iou_thr,max_per_img,mask_thr', [(0.5, 100, 0.5), (0.3, 12, 0.4),
                                                          (0.6, 100, 0.0)])
def test_cropped_merge_equals_the_dense_merge(seed, iou_thr, max_per_img, mask_thr):
    samples = _random_views(seed)
    expected = _dense_merge(samples, iou_thr, max_per_img, mask_thr)
    assert expected[3].any() and not expected[3].all(1).all(1).any() or mask_thr <= 0
    tta = InstanceSegTTAModel(module=_ReplayDetector(), tta_cfg=dict(
        nms=dict(type='nms', iou_threshold=iou_thr), max_per_img=max_per_img, mask_thr=mask_thr))
    by_merge = tta.merge_preds([[_clone(s) for s in samples]])[0].pred_instances
    by_step = tta.test_step(dict(inputs=[[None] for _ in samples],
                                 data_samples=[[_clone(s)] for s in samples]))[0].pred_instances
    for merged in (by_merge, by_step):
        assert merged.masks.dtype == torch.bool and merged.masks.shape[1:] == (37, 53)
        for got, want in zip((merged.bboxes, merged.scores, merged.labels, merged.masks),
                             expected):
            assert torch.equal(got, want)


def test_the_merge_creates_no_tensor_larger_than_its_result():
    """Views x detections x H x W is never materialised (nor any float copy of the masks): the
    largest tensor an operator creates while test_step merges is the (K, H, W) result."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestOutput(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    self.largest = max(self.largest, t.numel() * t.element_size())
            return out

    samples = _random_views(0, height=64, width=96, per_view=30)
    tta = InstanceSegTTAModel(module=_ReplayDetector(), tta_cfg=dict(
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=10, mask_thr=0.5))
    with LargestOutput() as mode:
        merged = tta.test_step(dict(inputs=[[None] for _ in samples],
                                    data_samples=[[s] for s in samples]))[0].pred_instances
    assert merged.masks.shape == (10, 64, 96)
    assert mode.largest == 10 * 64 * 96  # bytes: the bool result


@pytest.mark.parametrize('as_list', [False, True])
def test_views_reach_the_detector_as_mmengines_test_step_splits_them(as_list):
    """test_step predicts view by view itself (to crop each view's masks at once): the detector
    gets the same batches, in the same order, and the merge is the same as through mmengine's
    BaseTTAModel.test_step."""
    from mmengine.model import BaseTTAModel

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def test_step(self, data):
            self.seen.append(data)
            return [_clone(s) for s in (data[0] if as_list else data['data_samples'])]

    views = [_random_views(seed) for seed in (1, 2)]  # two images, six views each
    samples = [[views[i][v] for i in range(2)] for v in range(len(_FLIPS))]  # [view][image]
    data = ([samples] if as_list else
            dict(inputs=[[f'image{i} view{v}' for i in range(2)] for v in range(len(_FLIPS))],
                 data_samples=samples))
    ours, theirs = Recorder(), Recorder()
    by_ours = InstanceSegTTAModel(module=ours, tta_cfg=_tta().tta_cfg).test_step(data)
    by_theirs = BaseTTAModel.test_step(InstanceSegTTAModel(module=theirs, tta_cfg=_tta().tta_cfg),
                                       data)
    assert ours.seen == theirs.seen and len(ours.seen) == len(_FLIPS)
    for a, b in zip(by_ours, by_theirs):
        for key in ('bboxes', 'scores', 'labels', 'masks'):
            assert torch.equal(a.pred_instances[key], b.pred_instances[key])
