"""Predictions drawn by the libraries' own visualisers (the config's ``visualizer``:
DetLocalVisualizer, SegLocalVisualizer, UniversalVisualizer), returned as BGR arrays instead of
being written through the visualiser's backends."""
import itertools
from typing import List, Optional

import numpy as np

_names = itertools.count()


class Drawer:
    """Draws one task's predictions. ``scale``: the drawing's size relative to the image (the
    image and the prediction are resized, then drawn: labels on small images become
    readable)."""

    def __init__(self, cfg, task: str, classes: List[str], palette: Optional[list] = None,
                 scale: float = 1.):
        from mmengine.registry import VISUALIZERS, DefaultScope
        vis_cfg = dict(cfg.get('visualizer') or self._default(task))
        vis_cfg.pop('vis_backends', None)
        vis_cfg.pop('save_dir', None)
        vis_cfg['name'] = f'image_demo_{next(_names)}'  # a visualiser is a named singleton
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            self.visualizer = VISUALIZERS.build(vis_cfg)
        if task == 'seg':
            if not palette:
                rng = np.random.default_rng(0)  # the same colours on every run
                palette = rng.integers(0, 256, (len(classes), 3)).tolist()
            self.visualizer.set_dataset_meta(list(classes), palette)
        else:
            # mmdet's visualiser takes a palette of tuples (lists are read as colour lists)
            self.visualizer.dataset_meta = {
                'classes': tuple(classes),
                **({'palette': [tuple(c) for c in palette]} if palette else {})}
        self.task = task
        self.classes = classes
        self.scale = scale

    @staticmethod
    def _default(task: str) -> dict:
        return {'det': dict(type='DetLocalVisualizer'), 'seg': dict(type='SegLocalVisualizer'),
                'cls': dict(type='UniversalVisualizer')}[task]

    def __call__(self, bgr: np.ndarray, sample) -> np.ndarray:
        """``sample`` (det: already filtered, all of it is drawn) drawn on ``bgr`` (height,
        width, 3) uint8; returns the drawing, BGR uint8, ``scale`` times the size."""
        if self.task == 'cls':
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            drawn = self.visualizer.visualize_cls(rgb, sample, classes=self.classes,
                                                  draw_gt=False, rescale_factor=self.scale)
        else:
            if self.scale != 1.:
                bgr, sample = self._scaled(bgr, sample)
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            extra = {'pred_score_thr': -1.} if self.task == 'det' else {}
            self.visualizer.add_datasample('image', rgb, sample, draw_gt=False, show=False,
                                           **extra)
            drawn = self.visualizer.get_image()
        return np.ascontiguousarray(drawn[..., ::-1])

    def _scaled(self, bgr: np.ndarray, sample):
        """The image and a copy of the det / seg prediction at ``scale`` times their size (drawn
        there, lines and labels stay sharp)."""
        import cv2
        import torch.nn.functional as F
        height, width = (round(n * self.scale) for n in bgr.shape[:2])
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)
        sample = sample.clone()
        if self.task == 'det':
            instances = sample.pred_instances
            instances.bboxes = instances.bboxes * self.scale
            if 'masks' in instances and len(instances):
                instances.masks = F.interpolate(instances.masks[None].float(),
                                                (height, width))[0] > 0.5
        else:
            from mmengine.structures import PixelData
            ids = sample.pred_sem_seg.data
            sample.pred_sem_seg = PixelData(data=F.interpolate(ids[None].float(),
                                                               (height, width))[0].to(ids.dtype))
        return bgr, sample
