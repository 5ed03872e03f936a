"""Does a checkpoint fit a model?

mmengine loads ``load_from`` / ``--resume`` / ``tools/test.py`` checkpoints non-strictly: a file
of another variant or task only warns, and evaluation then reports the metrics of random weights.
These checks compare keys and shapes first and stop with one ``CheckpointMismatchError`` that
names the file, what it appears to be (task, VSSD variant) and the configs it fits, followed by
the ``KeyDiff`` report.
"""
import re
from typing import Dict, Mapping

import torch
from torch import nn

from .identify import TASK_MODELS, describe_arch, fitting_configs, identify, vssd_arch
from .keys import CheckpointMismatchError, KeyDiff, state_dict_of


# a backbone output's LayerNorm, at the top level or under 'backbone.'
OUT_NORM = re.compile(r'^(backbone\.)?outnorm\d+\.')


def _out_norm(key: str) -> bool:
    # missing from a file: the release's detection and segmentation training start the out norms
    # fresh (classification files have none); extra in a file: the norm of a stage this model
    # does not output (a classifier from a detector's backbone). Neither is a mismatch.
    return OUT_NORM.match(key) is not None


def _architectures(checkpoint_arch, model_arch, where: str = 'below') -> str:
    """'checkpoint has X, model has Y', or where X and Y are the same, that they are and differ
    in the keys ``where``."""
    if checkpoint_arch == model_arch:
        return (f'checkpoint and model have the same {describe_arch(model_arch)}; they differ '
                f'in the keys {where}')
    return (f'checkpoint has {describe_arch(checkpoint_arch)}, model has '
            f'{describe_arch(model_arch)}')


def check_fits(model: nn.Module, checkpoint: Mapping, path: str,
               config: str = 'this config') -> None:
    """Raise CheckpointMismatchError unless ``checkpoint``'s weights cover ``model`` exactly
    (same keys, same shapes; BatchNorm's ``num_batches_tracked`` may be absent)."""
    state = state_dict_of(checkpoint)
    own = model.state_dict()
    diff = KeyDiff.compare(own, state, unused=_out_norm)
    if not diff:
        return
    task, description, arch = identify(state)
    own_task, _, own_arch = identify(own)
    fits = fitting_configs(task, arch)
    same = task == own_task and arch == own_arch
    raise CheckpointMismatchError(
        f'{path} does not fit the model of {config}: it is {description} with '
        f'{describe_arch(arch)}; {config} builds '
        + ('the same kind of model, which differs in the keys below.' if same else
           (f'{TASK_MODELS[own_task]} with ' if own_task else '') + f'{describe_arch(own_arch)}. '
           + (f'It fits {" or ".join(fits)}.' if fits else 'No shipped config fits it.'))
        + '\n' + diff.report())


def backbone_fit_report(backbone: nn.Module, state_dict: Dict[str, torch.Tensor],
                        prefix: str) -> str:
    """'' when the weights under ``prefix`` cover a VSSD backbone (fresh ``outnorm*`` excepted),
    else one line naming both architectures and the missing / shape-mismatched keys: the layers
    a non-strict load leaves as they were.

    Called from ``VSSD._load_from_state_dict``, which every loader goes through (mmengine's
    non-strict ``load_from``, its EMAHook's copy, stock mmdet/mmseg tools). There the report is
    logged, not raised: those loaders' semantics (fine-tuning from another model) are the
    user's choice. Where a user names a VSSD checkpoint (``init_cfg``, ``tools/test.py``,
    ``--resume``) ``check_backbone_state`` / ``check_fits`` refuse it instead.
    """
    own = backbone.state_dict()
    state = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    diff = KeyDiff.compare(own, state, optional=_out_norm, extra_allowed=True)
    if not diff:
        return ''
    where = f'under {prefix!r}' if prefix else 'at the top level'
    details = '; '.join(line.strip() for line in diff.report().splitlines())
    architectures = _architectures(vssd_arch(state), vssd_arch(own), 'named')
    return (f'VSSD: the checkpoint\'s weights {where} do not fit this backbone '
            f'({architectures}): {details}; those layers keep the weights they had (their '
            'random initialisation unless loaded before): results of this model are not the '
            'checkpoint\'s')


def check_backbone_state(backbone: nn.Module, state: Dict[str, torch.Tensor],
                         source: str) -> KeyDiff:
    """Raise CheckpointMismatchError unless ``state`` (keys relative to the backbone) holds
    exactly the backbone's weights, fresh ``outnorm*`` excepted and out norms of stages the
    backbone does not output unused; ``source`` names the file. Returns the comparison."""
    own = backbone.state_dict()
    diff = KeyDiff.compare(own, state, optional=_out_norm, unused=_out_norm)
    if diff:
        raise CheckpointMismatchError(
            f'{source} does not fit this VSSD backbone: '
            f'{_architectures(vssd_arch(state), vssd_arch(own))}.\n'
            + diff.report() + '\nPick the config / arch that matches the checkpoint.')
    return diff
