"""Build the model of an mmdet / mmseg / mmpretrain config for analysis, and synthetic batches
in the shape each library's ``model(..., mode='loss')`` expects."""
import contextlib
import logging
from typing import Tuple

import torch
from mmengine.config import Config
from torch import nn


def build_model(cfg: Config, pretrained: bool = False) -> Tuple[nn.Module, str]:
    """``cfg.model`` built in the config's registry scope; returns (model, scope).

    The scope is set only while building: the process's default scope is left as it was (a
    caller building models of several libraries in one process gets each from its own registry).
    With ``pretrained=False`` the backbone's ``init_cfg`` checkpoint is not read (analysis needs
    the architecture, not the weights).
    """
    from mmengine.registry import MODELS, DefaultScope
    scope = cfg.get('default_scope', 'mmengine')
    model_cfg = cfg.model.copy()
    if not pretrained and model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor'):
        model_cfg.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
        with mmengine_warnings_only():
            model.init_weights()
    return model, scope


@contextlib.contextmanager
def mmengine_warnings_only():
    """Hold back mmengine's INFO reports (``init_weights`` per parameter, optimizer
    ``paramwise_options`` per parameter), which go to the console when no Runner log file takes
    them: over 1000 lines for VSSD-T in front of a tool's table."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def synthetic_batch(scope: str, batch: int, height: int, width: int, num_classes: int = 3):
    """``dict(inputs=[uint8 (3, H, W)] * batch, data_samples=[...])`` with random images and
    simple ground truth (two boxes + masks, a random label map, or a class label)."""
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g)
              for _ in range(batch)]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                batch_input_shape=(height, width), scale_factor=(1., 1.))
    samples = []
    for i in range(batch):
        if scope == 'mmdet':
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            from mmengine.structures import InstanceData
            boxes = torch.tensor([[0.1, 0.1, 0.4, 0.5], [0.5, 0.3, 0.9, 0.8]]) * \
                torch.tensor([width, height, width, height])
            masks = torch.zeros(2, height, width, dtype=torch.uint8)
            for m, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
                m[y0:y1, x0:x1] = 1
            gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, (i + 1) % num_classes]),
                              masks=BitmapMasks(masks.numpy(), height, width))
            samples.append(DetDataSample(metainfo=meta, gt_instances=gt))
        elif scope == 'mmseg':
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            labels = torch.randint(0, num_classes, (1, height, width), generator=g)
            samples.append(SegDataSample(metainfo=meta, gt_sem_seg=PixelData(data=labels)))
        else:
            from mmpretrain.structures import DataSample
            samples.append(DataSample(metainfo=meta).set_gt_label(i % num_classes))
    return dict(inputs=inputs, data_samples=samples)
