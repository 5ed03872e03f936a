"""Reading VSSD weights from official and vssd_mm checkpoints into a backbone (``init_cfg``'s
Pretrained checkpoint).

Understood layouts, found without a ``state_key`` (``keys.STATE_KEYS``; ``state_key`` names an
entry, or a sequence of entries to take the first of, explicitly):
- official classification files: ``{'model': sd, 'model_ema': sd, ...}`` (the release's
  ``save_checkpoint_ema`` in ``classification/utils/utils.py``), the classifier's ``norm.*`` /
  ``head.*`` keys at the top level;
- mmengine files (``tools/train.py`` of an mmpretrain / mmdet / mmseg config: ``meta``,
  ``state_dict`` with ``backbone.`` keys, ``message_hub``, ``optimizer``, ...) and the official
  detection / segmentation files (``{'state_dict': ...}``): ``backbone.`` prefixes stripped,
  neck / head keys ignored;
- a bare state dict.

The classifier's final norm, one rule for both classification formats (the release's: its
``Backbone_VMAMBA2`` in ``classification/models/mamba2.py`` deletes the classifier's ``norm``,
``head`` and ``avgpool``, adds one fresh LayerNorm ``outnorm{i}`` per output stage and loads
the file non-strictly, so ``norm.*`` / ``head.*`` are ignored): a classification checkpoint's
head and final LayerNorm are not loaded into a backbone, its out norms start fresh (1, 0).
The final norm is ``norm.*`` in the official layout and ``backbone.outnorm3.*`` (the last
stage's out norm, on which mmpretrain's classifier pools) in an mmpretrain ImageClassifier's
file, whose head is ``head.fc.*``. A detector's or segmentor's out norms are the backbone's own
and load. Files are read with ``torch.load(weights_only=True)`` (mmengine's training state
allow-listed, ``vssd_mm.compat``): weights, not pickled code.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from ...compat import allow_mmengine_training_state
from .fit import check_backbone_state
from .keys import STATE_KEYS, CheckpointMismatchError, StateKey, short_list, state_dict_of
from .reading import local_file, read_checkpoint

OFFICIAL_CLASSIFIER = re.compile(r'^(norm|head)\.')  # the release's classifier: final norm, head
MMPRETRAIN_HEAD = 'head.fc.'  # mmpretrain's LinearClsHead


def _classifier_final_norm(state: Dict[str, torch.Tensor], prefix: str) -> re.Pattern:
    """The keys (relative to the backbone) of an mmpretrain classifier's final norm: the out
    norm of the last stage the file has."""
    stages = [int(m.group(1)) for k in state if (m := re.match(
        re.escape(prefix) + r'outnorm(\d+)\.', k))]
    return re.compile(rf'^outnorm{max(stages)}\.' if stages else r'(?!)')


def backbone_state_dict(state: Dict[str, torch.Tensor], prefix: Optional[str] = None
                        ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """(keys relative to the backbone, the keys left out as a classifier's head and final norm
    (see the module docstring)): ``prefix`` (default: ``backbone.`` when present) selected and
    stripped."""
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    classifier = OFFICIAL_CLASSIFIER
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        if any(k.startswith(MMPRETRAIN_HEAD) for k in state):
            classifier = _classifier_final_norm(state, prefix)
        selected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not selected:
            raise CheckpointMismatchError(f'no key of the checkpoint starts with {prefix!r}')
        left_out = [k for k in state if k.startswith(MMPRETRAIN_HEAD)]
        state = selected
    else:
        left_out = []
    left_out += [k for k in state if classifier.match(k)]
    return {k: v for k, v in state.items() if not classifier.match(k)}, left_out


def _read(path: str, map_location) -> dict:
    local = local_file(path, 'point the config at it: --cfg-options '
                             'model.backbone.init_cfg.checkpoint=PATH')
    if local is None:  # open-mmlab://, s3://, ...
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    # a user's own mmpretrain / mmdet / mmseg training file carries mmengine's training state
    with allow_mmengine_training_state():
        return read_checkpoint(local, map_location)


def load_backbone_checkpoint(model: nn.Module, path: str, prefix: Optional[str] = None,
                             state_key: StateKey = None, map_location='cpu') -> None:
    """Load a checkpoint (file or URL) into a VSSD backbone and log, in one line, what was
    loaded, what starts fresh and what was left out.

    Args:
        state_key: the file's entry holding the weights, or a sequence of entries to take the
            first of; None finds them (``keys.STATE_KEYS``, else a bare state dict).
        prefix: the weights' key prefix (default ``backbone.`` when the file has it).

    Missing ``outnorm*`` keys are expected for classification checkpoints (fresh LayerNorms, as
    the official detection/segmentation training did). Any other missing, unexpected or
    shape-mismatched backbone key raises ``CheckpointMismatchError`` naming both variants; a
    ``state_key`` the file lacks raises it naming the file's entries.
    """
    checkpoint = _read(path, map_location)
    try:
        weights = state_dict_of(checkpoint, state_key)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(
            f'{path}: {err}. Leave init_cfg\'s state_key out to take the weights the file has '
            f'(entry {" / ".join(STATE_KEYS)}, else a bare state dict)') from None
    del checkpoint  # an mmengine file's optimizer state is not needed any longer
    state, left_out = backbone_state_dict(weights, prefix)
    diff = check_backbone_state(model, state, path)
    model.load_state_dict({k: v for k, v in state.items() if k not in diff.unused}, strict=False)
    fresh = [k for k in model.state_dict() if k not in state]
    print_log(f'VSSD: loaded {len(state) - len(diff.unused)} tensors from {path}'
              + (f'; newly initialised (not in the checkpoint): {short_list(fresh)}' if fresh
                 else '; no missing keys')
              + (f'; left out (a classifier\'s head and final norm; out norms start fresh, as '
                 f'the release does): {short_list(left_out)}' if left_out else '')
              + (f'; unused (out norms of stages this model does not output): '
                 f'{short_list(diff.unused)}' if diff.unused else ''), logger='current')
