"""Reading VSSD weights from official and vssd_mm checkpoints into a backbone.

Understood layouts (``state_key`` picks one explicitly):
- official classification files: ``{'model': sd, 'model_ema': sd, ...}`` with the classifier's
  ``norm.*`` / ``head.*`` keys (dropped here);
- official / mm detection and segmentation files: ``{'state_dict': sd}`` with ``backbone.``
  prefixes (stripped), plus neck/head keys (ignored);
- a bare state dict.
Files are read with ``torch.load(weights_only=True)``: weights, not pickled code.
"""
import os.path as osp
import re
from typing import Dict, List, Optional

import torch
from mmengine.logging import print_log
from torch import nn

from .checkpoint_file import read_checkpoint
from .checkpoint_fit import CheckpointMismatchError, describe_arch, vssd_arch  # noqa: F401
from .download import cached_checkpoint, is_url

STATE_KEYS = ('state_dict', 'model', 'model_ema')
CLASSIFIER_KEYS = re.compile(r'^(norm|head)\.')


def select_state_dict(ckpt: dict, state_key: Optional[str] = None) -> Dict[str, torch.Tensor]:
    if state_key is not None:
        if state_key not in ckpt:
            raise KeyError(f'checkpoint has no {state_key!r} entry; it has {sorted(ckpt)[:10]}')
        return ckpt[state_key]
    for key in STATE_KEYS:
        if key in ckpt and isinstance(ckpt[key], dict):
            return ckpt[key]
    return ckpt


def backbone_state_dict(state: Dict[str, torch.Tensor], prefix: Optional[str] = None
                        ) -> Dict[str, torch.Tensor]:
    """Keys relative to the backbone: ``module.`` dropped, ``prefix`` (default: ``backbone.``
    when present) selected and stripped, classification ``norm.*``/``head.*`` removed."""
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        selected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not selected:
            raise CheckpointMismatchError(f'no key of the checkpoint starts with {prefix!r}')
        state = selected
    return {k: v for k, v in state.items() if not CLASSIFIER_KEYS.match(k)}


def describe_variant(state: Dict[str, torch.Tensor]) -> str:
    """'VSSD-Tiny (embed_dim 64, depths (2, 4, 8, 4), d_state 64)' read off a backbone state
    dict."""
    return describe_arch(vssd_arch(state))


def load_backbone_checkpoint(model: nn.Module, path: str, prefix: Optional[str] = None,
                             state_key: Optional[str] = None, map_location='cpu') -> None:
    """Load a checkpoint into a VSSD backbone and log exactly what did not match.

    Missing ``outnorm*`` keys are expected for classification checkpoints (fresh LayerNorms, as
    the official detection/segmentation training did). Any other missing, unexpected or
    shape-mismatched backbone key raises ``CheckpointMismatchError`` naming both variants.
    """
    ckpt = _read(path, map_location)
    state = backbone_state_dict(select_state_dict(ckpt, state_key), prefix)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in own if k in state and state[k].shape != own[k].shape]
    serious_missing = [k for k in missing if not k.startswith('outnorm')]
    if serious_missing or unexpected or mismatched:
        raise CheckpointMismatchError(
            f'{path} does not fit this VSSD backbone: checkpoint has {describe_variant(state)}, '
            f'model has {describe_variant(own)}.\n' + _report(serious_missing, unexpected,
                                                            mismatched)
            + '\nPick the config / arch that matches the checkpoint.')
    model.load_state_dict(state, strict=False)
    print_log(f'VSSD: loaded {len(state)} tensors from {path}'
              + (f'; newly initialised (not in the checkpoint): {_short(missing)}' if missing
                 else '; no missing keys'), logger='current')


def _read(path: str, map_location) -> dict:
    """Local files and http(s) URLs (downloaded once into torch's hub cache, download.py) with
    torch.load(weights_only=True); other schemes (``open-mmlab://``, ``s3://``...) through
    mmengine's CheckpointLoader."""
    if is_url(path):
        path = cached_checkpoint(path, 'point the config at it: --cfg-options '
                                       'model.backbone.init_cfg.checkpoint=PATH')
    elif '://' in path:
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    if not osp.isfile(path):
        raise FileNotFoundError(f'VSSD checkpoint not found: {path}')
    return read_checkpoint(path, map_location)


def _short(keys: List[str], limit: int = 8) -> str:
    return ', '.join(keys[:limit]) + (f' ... (+{len(keys) - limit})' if len(keys) > limit else '')


def _report(missing: List[str], unexpected: List[str], mismatched: List[str]) -> str:
    lines = []
    for title, keys in (('missing', missing), ('unexpected', unexpected),
                        ('shape mismatch', mismatched)):
        if keys:
            lines.append(f'  {title} ({len(keys)}): {_short(keys)}')
    return '\n'.join(lines)


def official_classifier_to_mmpretrain(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official classifier keys -> mmpretrain ``ImageClassifier(backbone=VSSD(out_indices=(3,)),
    neck=GlobalAveragePooling, head=LinearClsHead)`` keys.

    The official final LayerNorm ``norm`` over stage-4 tokens is exactly ``outnorm3``; average
    pooling over tokens is the neck; ``head`` becomes ``head.fc``.
    """
    converted = {}
    for key, value in state.items():
        if key.startswith('norm.'):
            converted['backbone.outnorm3.' + key[len('norm.'):]] = value
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        else:
            converted['backbone.' + key] = value
    return converted
