"""benchmarks/tta_memory.py's measurement: the peak memory of instance-segmentation TTA
(``InstanceSegTTAModel.test_step``: every view predicted, then merged) against a plain test step
of one view, on synthetic Mask R-CNN predictions (no model: the memory in question is the masks').

A synthetic view is what mmdet's ``predict(..., rescale=True)`` returns: ``dets`` boxes and their
``(dets, H, W)`` bool masks at the original image size (each an ellipse filling its box, pasted
into zeros as mmdet's mask head does); the views of one image see the same objects, jittered as
another scale would, half of them flipped. The dense row is the formulation before the crops:
mmengine's ``BaseTTAModel.test_step`` holds every view's predictions, the full-size masks of all
views are concatenated and each kept instance votes on full-size float copies of its voters.
"""
import contextlib
import time
from dataclasses import dataclass
from typing import List

import torch
from mmdet.structures import DetDataSample
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData

from vssd_mm.allocator import _glibc_mallopt
from vssd_mm.models.tta.instance_seg_tta import InstanceSegTTAModel, box_iou, unflip_boxes

from .throughput import _peak_mib, _reset_peak, process_status_mib

FLIPS = (False, True)


class SyntheticDetector(torch.nn.Module):
    """``test_step`` -> samples whose ``pred_instances`` are a synthetic view (see the module);
    the view is the one named by each input sample's ``view`` and ``flip`` metainfo."""

    def __init__(self, height: int, width: int, dets: int, device: str = 'cpu', seed: int = 0):
        super().__init__()
        self.height, self.width, self.dets, self.device = height, width, dets, device
        g = torch.Generator().manual_seed(seed)
        # box sides log-uniform in 3 %..60 % of the image side: a mean box of ~6 % of the image
        sides = torch.exp(torch.empty(dets, 2).uniform_(-3.5, -0.5, generator=g))
        sides = sides * torch.tensor([width, height])
        corner = torch.rand(dets, 2, generator=g) * (torch.tensor([width, height]) - sides)
        self.boxes = torch.cat([corner, corner + sides], 1)
        self.labels = torch.randint(0, 80, (dets, ), generator=g)

    def test_step(self, data) -> list:
        return [self._predict(s) for s in data['data_samples']]

    def _predict(self, sample) -> DetDataSample:
        view, flip = sample.metainfo['view'], sample.metainfo['flip']
        g = torch.Generator().manual_seed(1000 + view)
        height, width = self.height, self.width
        jitter = 1 + 0.05 * torch.randn(self.dets, 4, generator=g)
        boxes = (self.boxes * jitter).clamp(min=0)
        boxes = torch.cat([torch.minimum(boxes[:, :2], boxes[:, 2:]),
                           torch.maximum(boxes[:, :2], boxes[:, 2:])], 1)
        boxes = torch.minimum(boxes, torch.tensor([width, height, width, height]))
        if flip:
            boxes = unflip_boxes(boxes, (height, width), 'horizontal')
        masks = torch.zeros(self.dets, height, width, dtype=torch.bool, device=self.device)
        for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            top, left, bottom, right = int(y0), int(x0), int(y1) + 1, int(x1) + 1
            ys = torch.arange(top, min(bottom, height), device=self.device)[:, None] + 0.5
            xs = torch.arange(left, min(right, width), device=self.device)[None] + 0.5
            cy, cx, ry, rx = (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2
            masks[i, top:bottom, left:right] = (((ys - cy) / max(ry, 1e-3)) ** 2
                                                + ((xs - cx) / max(rx, 1e-3)) ** 2) <= 1
        out = sample.clone()
        out.pred_instances = InstanceData(
            bboxes=boxes.to(self.device), labels=self.labels.to(self.device),
            scores=torch.rand(self.dets, generator=g).to(self.device), masks=masks)
        return out


def tta_batch(height: int, width: int, views: int) -> dict:
    """A batch of one image in ``views`` views as ``TestTimeAug`` + ``pseudo_collate`` give it:
    per key a list over views (every other view flipped horizontally)."""
    samples = [[DetDataSample(metainfo=dict(
        view=v, img_id=0, ori_shape=(height, width), flip=FLIPS[v % 2],
        flip_direction='horizontal' if FLIPS[v % 2] else None))] for v in range(views)]
    return dict(inputs=[[None] for _ in range(views)], data_samples=samples)


def tta_model(detector, max_per_img: int = 100) -> InstanceSegTTAModel:
    return InstanceSegTTAModel(module=detector, tta_cfg=dict(
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=max_per_img, mask_thr=0.5))


def dense_merge(tta: InstanceSegTTAModel, views: list) -> InstanceData:
    """The merge on full-size masks (the formulation before the crops): all views' masks
    un-flipped and concatenated, each kept instance the mean of its voters' float masks."""
    from mmcv.ops import batched_nms
    boxes, masks = [], []
    for s in views:
        flipped = s.metainfo['flip']
        boxes.append(unflip_boxes(s.pred_instances.bboxes, s.ori_shape, 'horizontal')
                     if flipped else s.pred_instances.bboxes)
        masks.append(s.pred_instances.masks.flip(-1) if flipped else s.pred_instances.masks)
    boxes, masks = torch.cat(boxes), torch.cat(masks)
    scores = torch.cat([s.pred_instances.scores for s in views])
    labels = torch.cat([s.pred_instances.labels for s in views])
    dets, keep = batched_nms(boxes, scores, labels, tta.tta_cfg['nms'])
    keep = keep[:tta.max_per_img]
    voters = (labels[keep][:, None] == labels[None]) & (box_iou(boxes[keep], boxes) >= tta.iou_thr)
    voters[torch.arange(len(keep)), keep] = True
    merged = torch.stack([masks[row].double().mean(0) >= tta.mask_thr for row in voters])
    return InstanceData(bboxes=dets[:len(keep), :4], scores=dets[:len(keep), 4],
                        labels=labels[keep], masks=merged)


class _DenseTTA(InstanceSegTTAModel):
    """mmengine's ``BaseTTAModel.test_step`` (every view's predictions held) + ``dense_merge``."""

    test_step = BaseTTAModel.test_step

    def merge_preds(self, data_samples_list):
        merged = [dense_merge(self, views) for views in data_samples_list]
        for views, instances in zip(data_samples_list, merged):
            views[0].pred_instances = instances
        return [views[0] for views in data_samples_list]


@dataclass
class Row:
    path: str
    peak_mib: float   # above the resting process: CUDA allocated, else resident set (Linux)
    ratio: float      # peak_mib / the plain test step's
    seconds: float
    device: str


def _resident_mib(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.memory_allocated(device) / 2**20
    return process_status_mib('VmRSS') or 0.0


_M_MMAP_THRESHOLD, _M_MMAP_MAX = -3, -4  # glibc's mallopt parameters (malloc.h)


@contextlib.contextmanager
def _resident_set_follows_tensors():
    """glibc: every block of 64 KiB or more gets its own mapping, unmapped when freed, so the
    resident set follows the tensors alive (by default glibc raises its mmap threshold to the
    size of the blocks freed, up to 32 MiB, and keeps later ones of that size on the heap)."""
    mallopt = _glibc_mallopt()
    if mallopt is not None:
        mallopt(_M_MMAP_MAX, 65536)
        mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    try:
        yield
    finally:
        if mallopt is not None:
            mallopt(_M_MMAP_THRESHOLD, 128 * 1024)  # glibc's initial threshold (fixed from now)


def _peak_of(fn, device: torch.device):
    """(MiB above the memory in use before ``fn()`` at its peak, seconds); ``fn``'s result is
    dropped before the next measurement."""
    _reset_peak(device)
    base = _resident_mib(device)
    start = time.perf_counter()
    result = fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = _peak_mib(device) - base
    del result
    return peak, seconds


def measure(height: int = 800, width: int = 1333, dets: int = 100, views: int = 6,
            device: str = 'cpu', dense: bool = True) -> List[Row]:
    """Peak memory and time of: a plain test step (one view), ``InstanceSegTTAModel.test_step``
    over ``views`` views, and (``dense``) the dense formulation over the same views."""
    dev = torch.device(device)
    detector = SyntheticDetector(height, width, dets, device)
    paths = [('plain test step (1 view)',
              lambda: detector.test_step(dict(data_samples=tta_batch(height, width, 1)
                                              ['data_samples'][0]))),
             (f'TTA, InstanceSegTTAModel ({views} views)',
              lambda: tta_model(detector).test_step(tta_batch(height, width, views)))]
    if dense:
        paths.append((f'TTA, dense merge ({views} views)',
                      lambda: _DenseTTA(module=detector, tta_cfg=tta_model(detector).tta_cfg)
                      .test_step(tta_batch(height, width, views))))
    rows = []
    with _resident_set_follows_tensors():
        for path, fn in paths:
            peak, seconds = _peak_of(fn, dev)
            rows.append(Row(path, peak, peak / rows[0].peak_mib if rows else 1.0, seconds,
                            device))
    return rows


def table(rows: List[Row], height: int, width: int, dets: int) -> str:
    lines = [f'{height}x{width} image, {dets} detections per view; one view\'s masks: '
             f'{dets * height * width / 2**20:.0f} MiB (bool); device {rows[0].device}',
             f'{"path":<34} {"peak MiB":>9} {"x plain":>8} {"seconds":>8}']
    lines += [f'{r.path:<34} {r.peak_mib:>9.0f} {r.ratio:>8.2f} {r.seconds:>8.2f}' for r in rows]
    return '\n'.join(lines)
