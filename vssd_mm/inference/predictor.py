"""A config's model with a checkpoint, predicting one image array at a time the way
``tools/test.py`` predicts a dataset image: the config's test pipeline (``--tta``: its
``tta_model`` over its ``tta_pipeline``), ``pseudo_collate`` and the model's ``test_step``. Only
the loading differs: the image comes decoded (a file read as ``LoadImageFromFile`` reads it, or
a video frame) and annotation loaders are left out (there are none to load)."""
import copy
import os.path as osp
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from ..engine.errors import ToolError
from ..models.checkpoints import local_file
from ..engine.evaluated_checkpoint import load_into
from ..engine.evaluation_flags import enable_tta, innermost_dataset

TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}
_LOADER = 'LoadImageFromFile'


def _name(transform: dict) -> str:
    return str(transform.get('type', '')).split('.')[-1]


def _without_annotations(pipeline: list) -> list:
    """``pipeline`` without annotation loaders, also inside ``TestTimeAug``'s view lists (a list
    left empty is dropped: TestTimeAug would make no views of it)."""
    kept = []
    for transform in pipeline:
        if 'Annotation' in _name(transform):
            continue
        if _name(transform) == 'TestTimeAug':
            transform = copy.deepcopy(transform)
            views = [[t for t in group if 'Annotation' not in _name(t)]
                     for group in transform['transforms']]
            transform['transforms'] = [group for group in views if group]
        kept.append(transform)
    return kept


def _check_device(device: str) -> None:
    """``ToolError`` for a device name torch does not know, or CUDA where there is none."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ToolError(f'--device {device}: not a torch device (e.g. cpu, cuda, cuda:1)') from None
    if kind == 'cuda' and not torch.cuda.is_available():
        raise ToolError(f'--device {device}: this machine has no CUDA GPU (use --device cpu)')


class _DecodedImage:
    """Stands in for ``LoadImageFromFile``: the results dict of an image already decoded."""

    def __init__(self, to_float32: bool):
        self.to_float32 = to_float32

    def __call__(self, results: dict) -> dict:
        img = results['img']
        if self.to_float32:
            img = img.astype(np.float32)
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return results


class Predictor:
    """``cfg``'s model (``tta``: wrapped in ``cfg.tta_model``) with ``checkpoint`` loaded through
    ``load_into`` (the checks and official-file conversion of ``tools/test.py``), on ``device``.

    Attributes:
        task: 'det', 'seg' or 'cls' (from the config's ``default_scope``).
        meta: the checkpoint's ``meta`` (``{}`` when it has none).
        color_type, imdecode_backend: how the config's ``LoadImageFromFile`` decodes files.
    """

    def __init__(self, cfg: Config, checkpoint: str, *, device: str = 'cpu', tta: bool = False,
                 state_key: Optional[str] = None, config_name: str = 'the config'):
        from mmcv.transforms import Compose
        from mmengine.registry import MODELS, DefaultScope

        from ..analysis.model_builder import build_model
        scope = cfg.get('default_scope')
        if scope not in TASKS:
            raise ToolError(f'{config_name} has default_scope={scope!r}; image_demo.py runs '
                            'mmdet, mmseg and mmpretrain configs')
        self.task = TASKS[scope]
        _check_device(device)
        plain = copy.deepcopy(cfg)  # build_model and enable_tta rewrite what they are given
        self.cfg = cfg = copy.deepcopy(cfg)
        if tta:
            enable_tta(cfg)  # ToolError without tta_model / tta_pipeline
        pipeline = _without_annotations(innermost_dataset(cfg.test_dataloader.dataset).pipeline)
        loaders = [i for i, t in enumerate(pipeline) if _name(t) == _LOADER]
        if not loaders:
            raise ToolError(f'{config_name}: its test pipeline has no {_LOADER} to stand in for')
        local_file(checkpoint, 'pass your copy as CHECKPOINT')  # missing / undownloadable: now
        model, _ = build_model(plain)
        self.meta = load_into(model, checkpoint, config_name, state_key=state_key)
        if tta:
            with DefaultScope.overwrite_default_scope(scope):
                model = MODELS.build({**cfg.tta_model, 'module': model})
        self.model = model.to(device).eval()
        loader = pipeline[loaders[0]]
        self.color_type = loader.get('color_type', 'color')
        self.imdecode_backend = loader.get('imdecode_backend', 'cv2')
        with DefaultScope.overwrite_default_scope(scope):
            self._pipeline = Compose([_DecodedImage(loader.get('to_float32', False))
                                      if i == loaders[0] else t for i, t in enumerate(pipeline)])

    @torch.no_grad()
    def __call__(self, img: np.ndarray, img_path: str = '', index: int = 0):
        """The prediction (an mmdet / mmseg / mmpretrain data sample) for ``img``: (height,
        width, 3) uint8 in the loader's channel order (BGR for 'color'), as ``test_step`` gives
        it for a dataset image. ``img_path``/``index`` become the sample's ``img_path`` and
        ``img_id`` / ``sample_idx``."""
        results = self._pipeline(dict(img=img, img_path=img_path, img_id=index,
                                      sample_idx=index))
        return self.model.test_step(pseudo_collate([results]))[0]

    def classes(self) -> List[str]:
        """The class names: the checkpoint's ``dataset_meta``, else the config's test dataset
        ``metainfo``, else ImageNet-1k's for a 1000-class classifier, else the class ids."""
        names = (self.meta.get('dataset_meta') or {}).get('classes')
        if not names:
            names = (innermost_dataset(self.cfg.test_dataloader.dataset).get('metainfo') or {}).get(
                'classes')
        count = self.num_classes()
        if not names and self.task == 'cls' and count == 1000:
            from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
            names = IMAGENET_CATEGORIES
        if not names:
            names = [str(i) for i in range(count or 0)]
        return list(names)

    def palette(self) -> Optional[list]:
        """Segmentation colours: the checkpoint's or the config's, else None."""
        palette = (self.meta.get('dataset_meta') or {}).get('palette')
        if not palette:
            palette = (innermost_dataset(self.cfg.test_dataloader.dataset).get('metainfo')
                       or {}).get('palette')
        return [list(map(int, c)) for c in palette] if palette else None

    def num_classes(self) -> Optional[int]:
        """The head's class count, where the config states it."""
        model = self.cfg.model.get('module', self.cfg.model)
        for path in (('roi_head', 'bbox_head'), ('bbox_head', ), ('decode_head', ), ('head', )):
            node = model
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and 'num_classes' in node:
                return int(node['num_classes'])
        return None


def describe(path: str, root: str) -> str:
    """``path`` relative to ``root`` without its suffix: the stem of its output files."""
    return osp.splitext(osp.relpath(path, root or '.'))[0]
