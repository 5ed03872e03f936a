"""Reading VSSD weights from official and vssd_mm checkpoints into a backbone (``init_cfg``'s
Pretrained checkpoint).

Understood layouts (``state_key`` picks an entry explicitly):
- official classification files: ``{'model': sd, 'model_ema': sd, ...}`` with the classifier's
  ``norm.*`` / ``head.*`` keys (dropped here);
- official / mm detection and segmentation files: ``{'state_dict': sd}`` with ``backbone.``
  prefixes (stripped), plus neck/head keys (ignored);
- a bare state dict.
Files are read with ``torch.load(weights_only=True)``: weights, not pickled code.
"""
import re
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from torch import nn

from .fit import check_backbone_state
from .keys import CheckpointMismatchError, short_list, state_dict_of
from .reading import local_file, read_checkpoint

CLASSIFIER_KEYS = re.compile(r'^(norm|head)\.')


def backbone_state_dict(state: Dict[str, torch.Tensor], prefix: Optional[str] = None
                        ) -> Dict[str, torch.Tensor]:
    """Keys relative to the backbone: ``prefix`` (default: ``backbone.`` when present) selected
    and stripped, classification ``norm.*``/``head.*`` removed."""
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        selected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not selected:
            raise CheckpointMismatchError(f'no key of the checkpoint starts with {prefix!r}')
        state = selected
    return {k: v for k, v in state.items() if not CLASSIFIER_KEYS.match(k)}


def _read(path: str, map_location) -> dict:
    local = local_file(path, 'point the config at it: --cfg-options '
                             'model.backbone.init_cfg.checkpoint=PATH')
    if local is None:  # open-mmlab://, s3://, ...
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    return read_checkpoint(local, map_location)


def load_backbone_checkpoint(model: nn.Module, path: str, prefix: Optional[str] = None,
                             state_key: Optional[str] = None, map_location='cpu') -> None:
    """Load a checkpoint (file or URL) into a VSSD backbone and log what was initialised fresh.

    Missing ``outnorm*`` keys are expected for classification checkpoints (fresh LayerNorms, as
    the official detection/segmentation training did). Any other missing, unexpected or
    shape-mismatched backbone key raises ``CheckpointMismatchError`` naming both variants.
    """
    state = backbone_state_dict(state_dict_of(_read(path, map_location), state_key), prefix)
    diff = check_backbone_state(model, state, path)
    model.load_state_dict({k: v for k, v in state.items() if k not in diff.unused}, strict=False)
    fresh = [k for k in model.state_dict() if k not in state]
    print_log(f'VSSD: loaded {len(state) - len(diff.unused)} tensors from {path}'
              + (f'; newly initialised (not in the checkpoint): {short_list(fresh)}' if fresh
                 else '; no missing keys')
              + (f'; unused (out norms of stages this model does not output): '
                 f'{short_list(diff.unused)}' if diff.unused else ''), logger='current')
