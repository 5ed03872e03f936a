"""Parameters and FLOPs of a whole model built from an mmdet / mmseg / mmpretrain config."""
from dataclasses import dataclass, field
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from torch import nn

from .flops import count_flops
from .model_builder import build_model


class _TensorForward(nn.Module):
    """``model`` seen as a function of the image tensor only (what a jit trace can follow)."""

    def __init__(self, model: nn.Module, scope: str, hw: Tuple[int, int]):
        super().__init__()
        self.model, self.scope, self.hw = model, scope, hw

    def forward(self, x: torch.Tensor):
        if self.scope == 'mmdet':
            from mmdet.structures import DetDataSample
            meta = dict(img_shape=self.hw, ori_shape=self.hw, pad_shape=self.hw,
                        batch_input_shape=self.hw, scale_factor=(1., 1.))
            return self.model(x, [DetDataSample(metainfo=meta)], mode='tensor')
        return self.model(x, mode='tensor')


@dataclass
class Complexity:
    """FLOPs are multiply-adds for one image of ``shape`` (H, W)."""
    shape: Tuple[int, int]
    params: int
    inference_params: int          # without training-only heads (mmseg's auxiliary head)
    flops: int                     # NC-SSD counted exactly
    flops_published: int           # NC-SSD counted as the release's fvcore run did
    by_part: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # name: (exact, published)


def _parts(model: nn.Module) -> list:
    names = []
    backbone = getattr(model, 'backbone', None)
    if backbone is not None:
        names.append('backbone.patch_embed')
        names += [f'backbone.layers.{i}' for i in range(len(getattr(backbone, 'layers', [])))]
        names += [f'backbone.{n}' for n, _ in backbone.named_children() if n.startswith('outnorm')]
    names += [n for n, _ in model.named_children()
              if n not in ('backbone', 'data_preprocessor')]
    return names


def analyze_config(cfg: Config, shape: Tuple[int, int]) -> Complexity:
    """Build ``cfg.model`` (random weights; pretrained ``init_cfg`` skipped) and count it."""
    model, scope = build_model(cfg)
    params = sum(p.numel() for p in model.parameters())
    aux = getattr(model, 'auxiliary_head', None)
    aux_params = sum(p.numel() for p in aux.parameters()) if isinstance(aux, nn.Module) else 0
    x = torch.randn(1, 3, *shape)
    wrapped = _TensorForward(model, scope, tuple(shape))
    exact, exact_parts = count_flops(wrapped, (x, ), 'exact')
    published, published_parts = count_flops(wrapped, (x, ), 'published')
    by_part = {name: (exact_parts.get(f'model.{name}', 0), published_parts.get(f'model.{name}', 0))
               for name in _parts(model)}
    return Complexity(tuple(shape), params, params - aux_params, exact, published, by_part)
