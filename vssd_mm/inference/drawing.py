"""Predictions drawn by the libraries' own visualisers (the config's ``visualizer``:
DetLocalVisualizer, SegLocalVisualizer, UniversalVisualizer), returned as BGR arrays instead of
being written through the visualiser's backends."""
import itertools
from typing import List, Optional

import numpy as np

_names = itertools.count()


class Drawer:
    """Draws one task's predictions. ``scale``: the drawing's size relative to the image (labels
    on small images stay readable; det and seg predictions are drawn on the image and then
    resized with it, cls draws at the scaled size)."""

    def __init__(self, cfg, task: str, classes: List[str], palette: Optional[list] = None,
                 scale: float = 1.):
        from mmengine.registry import VISUALIZERS, DefaultScope
        vis_cfg = dict(cfg.get('visualizer') or self._default(task))
        vis_cfg.pop('vis_backends', None)
        vis_cfg.pop('save_dir', None)
        vis_cfg['name'] = f'image_demo_{next(_names)}'  # a visualiser is a named singleton
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            self.visualizer = VISUALIZERS.build(vis_cfg)
        if task == 'seg' and not palette:
            rng = np.random.default_rng(0)  # the same colours on every run
            palette = rng.integers(0, 256, (len(classes), 3)).tolist()
        meta = {'classes': tuple(classes)}
        if palette:
            meta['palette'] = [tuple(c) for c in palette]
        if task == 'seg':
            self.visualizer.set_dataset_meta(list(classes), palette)
        else:
            self.visualizer.dataset_meta = meta
        self.task = task
        self.classes = classes
        self.scale = scale

    @staticmethod
    def _default(task: str) -> dict:
        return {'det': dict(type='DetLocalVisualizer'), 'seg': dict(type='SegLocalVisualizer'),
                'cls': dict(type='UniversalVisualizer')}[task]

    def __call__(self, bgr: np.ndarray, sample) -> np.ndarray:
        """``sample`` (det: already filtered, all of it is drawn) drawn on ``bgr`` (height,
        width, 3) uint8; returns the drawing, BGR uint8."""
        import mmcv
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        if self.task == 'cls':
            drawn = self.visualizer.visualize_cls(rgb, sample, classes=self.classes,
                                                  draw_gt=False, rescale_factor=self.scale)
        else:
            extra = {'pred_score_thr': -1.} if self.task == 'det' else {}
            self.visualizer.add_datasample('image', rgb, sample, draw_gt=False, show=False,
                                           **extra)
            drawn = self.visualizer.get_image()
            if self.scale != 1.:
                drawn = mmcv.imrescale(drawn, self.scale)
        return np.ascontiguousarray(drawn[..., ::-1])
