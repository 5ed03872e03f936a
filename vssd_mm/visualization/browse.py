"""A config's samples as its pipeline delivers them to the model (the dataset's ``__getitem__``:
after resize, crop, flip and photometric changes, before the data preprocessor normalises), drawn
with their ground truth by the library's own visualiser: boxes, masks and class names (mmdet's
``DetLocalVisualizer``), label maps in the dataset's palette (mmseg's ``SegLocalVisualizer``), the
class name (mmpretrain's ``UniversalVisualizer``). Needs no model and no checkpoint."""
import os
import os.path as osp
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np
from mmengine.config import Config

from ..engine.errors import ToolError

SPLITS = {'train': 'train_dataloader', 'val': 'val_dataloader', 'test': 'test_dataloader'}
VISUALIZERS = {'mmdet': 'mmdet.visualization.DetLocalVisualizer',
               'mmseg': 'mmseg.visualization.SegLocalVisualizer',
               'mmpretrain': 'mmpretrain.visualization.UniversalVisualizer'}


def _no_progress(items: Iterable) -> Iterable:
    return items


def build_dataset(cfg: Config, split: str):
    """The ``split``'s dataset of ``cfg`` with its pipeline (wrappers included), built in the
    config's library (``default_scope``)."""
    scope = cfg.get('default_scope')
    if scope not in VISUALIZERS:
        raise ToolError(f'the config\'s default_scope is {scope!r}: browsing knows '
                        f'{", ".join(VISUALIZERS)} configs')
    loader = cfg.get(SPLITS[split])
    if not loader or not loader.get('dataset'):
        raise ToolError(f'the config has no {SPLITS[split]}.dataset: nothing to browse for '
                        f'--split {split}')
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        try:
            return DATASETS.build(loader['dataset'])
        except FileNotFoundError as err:
            raise ToolError(f'the {split} dataset cannot be read: {err}') from None


def build_visualizer(scope: str, dataset_meta: dict):
    """The library's visualiser with the dataset's classes and palette, without storage backends
    (pictures are written by ``browse``)."""
    import importlib
    module, name = VISUALIZERS[scope].rsplit('.', 1)
    cls = getattr(importlib.import_module(module), name)
    visualizer = cls.get_instance('vssd_mm_browse')
    visualizer.dataset_meta = dict(dataset_meta)
    return visualizer


def pipeline_image(sample: dict) -> np.ndarray:
    """The packed image of a dataset sample as RGB ``(H, W, 3)`` uint8: the pipeline loads BGR
    (mmcv's LoadImageFromFile) and packs ``(3, H, W)``."""
    image = sample['inputs']
    image = image.numpy() if hasattr(image, 'numpy') else np.asarray(image)
    return np.ascontiguousarray(image.transpose(1, 2, 0)[..., ::-1].clip(0, 255).astype(np.uint8))


def _with_plain_instances(data_sample):
    """A copy of a det sample whose boxes are a ``(N, 4)`` tensor and masks ``(N, H, W)`` bool,
    the forms ``DetLocalVisualizer`` draws."""
    data_sample = data_sample.clone()
    instances = data_sample.gt_instances
    if 'bboxes' in instances and hasattr(instances.bboxes, 'tensor'):
        instances.bboxes = instances.bboxes.tensor
    if 'masks' in instances and hasattr(instances.masks, 'to_ndarray'):
        instances.masks = instances.masks.to_ndarray().astype(bool)
    return data_sample


def draw_sample(visualizer, scope: str, sample: dict, rescale_factor: Optional[float] = None
                ) -> np.ndarray:
    """``sample`` (a dataset item: ``inputs`` + ``data_samples``) with its ground truth drawn:
    an RGB ``(H, W, 3)`` uint8 picture of the packed image's size (classification: times
    ``rescale_factor``)."""
    image, data_sample = pipeline_image(sample), sample['data_samples']
    if scope == 'mmpretrain':
        return visualizer.visualize_cls(image, data_sample,
                                        classes=visualizer.dataset_meta.get('classes'),
                                        draw_gt=True, draw_pred=False,
                                        rescale_factor=rescale_factor)
    if scope == 'mmdet':
        data_sample = _with_plain_instances(data_sample)
    visualizer.add_datasample('sample', image, data_sample, draw_gt=True, draw_pred=False)
    return visualizer.get_image()


def _picture_name(index: int, data_sample) -> str:
    stem = osp.splitext(osp.basename(data_sample.metainfo.get('img_path') or 'sample'))[0]
    return f'{index:04d}_{stem}.png'


def tile(pictures: Sequence[np.ndarray], columns: int, gap: int = 4) -> np.ndarray:
    """``pictures`` (each ``(H_i, W_i, 3)`` uint8) side by side, ``columns`` per row, in cells of
    the largest picture's size separated by ``gap`` white pixels; each at its cell's top-left."""
    columns = max(1, min(columns, len(pictures)))
    rows = -(-len(pictures) // columns)
    cell_h = max(p.shape[0] for p in pictures) + gap
    cell_w = max(p.shape[1] for p in pictures) + gap
    sheet = np.full((rows * cell_h - gap, columns * cell_w - gap, 3), 255, np.uint8)
    for i, picture in enumerate(pictures):
        top, left = (i // columns) * cell_h, (i % columns) * cell_w
        sheet[top:top + picture.shape[0], left:left + picture.shape[1]] = picture
    return sheet


def browse(cfg: Config, split: str, num: int, out_dir: str,
           rescale_factor: Optional[float] = None, progress: Callable = _no_progress,
           montage: Optional[str] = None, columns: int = 4, shuffle: bool = False) -> List[str]:
    """Write ``num`` samples of the ``split`` dataset (the first, or with ``shuffle`` a seeded
    random choice), as the pipeline delivers them, with their ground truth drawn, as PNGs into
    ``out_dir`` (named by dataset index and image); return their paths. Sample ``i`` is drawn
    after ``mmengine.runner.set_random_seed(seed + i)`` (``seed``: the config's
    ``randomness.seed``, else 0): its augmentation is the same whatever ``num`` and ``shuffle``.
    ``rescale_factor``: classification only (its pictures are small), default the config's
    ``default_hooks.visualization.rescale_factor``. ``montage``: also write all pictures tiled
    (``tile``, ``columns`` per row) into this PNG."""
    import mmcv
    from mmengine.runner import set_random_seed
    scope = cfg.get('default_scope')
    if rescale_factor is not None and scope != 'mmpretrain':
        raise ToolError('--rescale-factor is for classification configs only (mmdet and mmseg '
                        'pictures are drawn at the size the pipeline delivers)')
    dataset = build_dataset(cfg, split)
    if scope == 'mmpretrain' and rescale_factor is None:
        rescale_factor = ((cfg.get('default_hooks') or {}).get('visualization') or {}).get(
            'rescale_factor')
    if len(dataset) == 0:
        raise ToolError(f'the {split} dataset is empty')
    visualizer = build_visualizer(scope, dataset.metainfo)
    seed = (cfg.get('randomness') or {}).get('seed') or 0
    os.makedirs(out_dir, exist_ok=True)
    written, pictures = [], []
    order = np.random.RandomState(seed).permutation(len(dataset)) if shuffle else range(num)
    for index in progress([int(i) for i in order[:num] if i < len(dataset)]):
        set_random_seed(seed + index)
        try:
            sample = dataset[index]
        except FileNotFoundError as err:
            raise ToolError(f'sample {index} of the {split} dataset: {err} (tools/check_dataset.py '
                            'CONFIG --full checks every file)') from None
        picture = draw_sample(visualizer, scope, sample, rescale_factor)
        path = osp.join(out_dir, _picture_name(index, sample['data_samples']))
        mmcv.imwrite(picture[..., ::-1], path)
        written.append(path)
        if montage:
            pictures.append(picture)
    if montage:
        mmcv.imwrite(tile(pictures, columns)[..., ::-1], montage)
    return written
