"""Official VSSD classification files -> mmpretrain checkpoints.

The release's classifier files hold ``{'model': sd, 'model_ema': sd, ...}`` with the classifier's
final ``norm`` and ``head``; mmpretrain's ``ImageClassifier(backbone=VSSD(out_indices=(3,)),
neck=GlobalAveragePooling, head=LinearClsHead)`` names the same weights differently.
"""
import os.path as osp
from typing import Dict, Mapping

import torch

from .keys import CheckpointMismatchError, state_dict_of

OFFICIAL_STATE_KEYS = ('model', 'model_ema')


def is_official_classification_checkpoint(checkpoint) -> bool:
    """The release's classification files: a ``model`` entry with the classifier head, no
    mmengine ``state_dict``."""
    return (isinstance(checkpoint, dict) and 'state_dict' not in checkpoint
            and isinstance(checkpoint.get('model'), dict) and 'head.weight' in checkpoint['model'])


def official_classifier_to_mmpretrain(state: Mapping[str, torch.Tensor]
                                      ) -> Dict[str, torch.Tensor]:
    """Official classifier keys -> mmpretrain ImageClassifier keys.

    The official final LayerNorm ``norm`` over stage-3 tokens is exactly ``outnorm3``; average
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


def convert_official_classifier(checkpoint: Mapping, source: str, state_key: str = 'model'
                                ) -> dict:
    """The mmpretrain checkpoint (``{'state_dict': ..., 'meta': ...}``) of an official
    classification file's ``state_key`` weights ('model' or 'model_ema'); ``source`` names the
    file in errors and in the result's meta.

    Raises:
        CheckpointMismatchError: ``checkpoint`` is not an official classification file, or lacks
            the ``state_key`` entry.
    """
    if state_key not in OFFICIAL_STATE_KEYS:
        raise ValueError(f'state_key must be one of {OFFICIAL_STATE_KEYS}, got {state_key!r}')
    if not is_official_classification_checkpoint(checkpoint):
        raise CheckpointMismatchError(
            f'{source} is not an official VSSD classification checkpoint (no \'model\' entry with '
            'a classifier head, head.weight); only those are converted')
    try:
        state = state_dict_of(checkpoint, state_key)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(f'{source}: {err}') from None
    return {'state_dict': official_classifier_to_mmpretrain(state),
            'meta': dict(converted_from=osp.basename(source), state_key=state_key)}
