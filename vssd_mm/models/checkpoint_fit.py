"""Does a checkpoint fit a model? What is it, and which config would it fit?

mmengine loads ``load_from`` / ``--resume`` / ``tools/test.py`` checkpoints non-strictly: a file
of another variant or task only warns, and evaluation then reports the metrics of random weights.
``check_fits`` compares key sets and shapes first and stops with one message that names the file,
what it appears to be (task, VSSD variant) and the configs it fits.
"""
import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..variants import ARCH_SETTINGS

TASKS = {  # a key prefix that only this task's models have -> (task, description)
    'roi_head.': ('detection', 'a Mask R-CNN (mmdet)'),
    'decode_head.': ('segmentation', 'a UperNet (mmseg)'),
    'head.fc.': ('classification', 'an ImageClassifier (mmpretrain)'),
}
CONFIGS = {
    'detection': ['configs/mmdet/mask_rcnn_vssd_{}_1x.py',
                  'configs/mmdet/mask_rcnn_vssd_{}_3x_ms.py'],
    'segmentation': ['configs/mmseg/upernet_vssd_{}_512x512_160k_ade20k.py'],
    'classification': ['configs/mmpretrain/vssd_{}_8xb128_in1k.py'],
}
ALWAYS_OPTIONAL = re.compile(r'(^|\.)num_batches_tracked$')  # BatchNorm fills it in when absent


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model (another variant or task, or not a VSSD checkpoint)."""


def model_state(checkpoint) -> Dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint (mmengine's ``state_dict`` entry, the release's
    ``model``, or a bare state dict), DataParallel's ``module.`` prefix removed."""
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def vssd_arch(state: Dict[str, torch.Tensor], prefix: str = '') -> Optional[dict]:
    """embed_dim, depths and d_state of the VSSD whose keys start with ``prefix``, or None."""
    stem = state.get(f'{prefix}patch_embed.conv3.1.conv.weight')
    if stem is None:
        return None
    embed_dim = stem.shape[0]
    blocks = Counter(m.group(1) for k in state if (m := re.match(
        re.escape(prefix) + r'layers\.(\d+)\.blocks\.\d+\.norm1\.weight$', k)))
    bias = state.get(f'{prefix}layers.0.blocks.0.attn.conv2d.bias')
    d_state = None if bias is None else (bias.shape[0] - 2 * embed_dim) // 2
    return dict(embed_dim=embed_dim, depths=tuple(blocks[str(i)] for i in range(len(blocks))),
                d_state=d_state)


def variant_name(arch: Optional[dict]) -> Optional[str]:
    """'tiny' etc. when ``arch`` equals a released variant."""
    for name, settings in ARCH_SETTINGS.items():
        if arch and all(arch[k] == (tuple(settings[k]) if k == 'depths' else settings[k])
                        for k in ('embed_dim', 'depths', 'd_state')):
            return name
    return None


def describe_arch(arch: Optional[dict]) -> str:
    if arch is None:
        return 'no VSSD backbone'
    name = variant_name(arch)
    numbers = f'embed_dim {arch["embed_dim"]}, depths {arch["depths"]}, d_state {arch["d_state"]}'
    return f'VSSD-{name.capitalize()} ({numbers})' if name else f'a custom VSSD ({numbers})'


def identify(state: Dict[str, torch.Tensor]) -> Tuple[Optional[str], str, Optional[dict]]:
    """(task, description, backbone arch) of a model state dict."""
    for prefix, (task, description) in TASKS.items():
        if any(k.startswith(prefix) for k in state):
            return task, f'{description} checkpoint', vssd_arch(state, 'backbone.')
    if 'head.weight' in state and vssd_arch(state) is not None:
        return 'classification', 'an official VSSD classification checkpoint', vssd_arch(state)
    if vssd_arch(state) is not None:
        return None, 'a VSSD backbone checkpoint', vssd_arch(state)
    return None, 'a checkpoint of another model', vssd_arch(state, 'backbone.')


def fitting_configs(task: Optional[str], arch: Optional[dict]) -> List[str]:
    name = variant_name(arch)
    if task not in CONFIGS or name is None:
        return []
    return [path.format(name[0]) for path in CONFIGS[task]]


def _short(keys: List[str], limit: int = 5) -> str:
    return ', '.join(keys[:limit]) + (f' ... (+{len(keys) - limit})' if len(keys) > limit else '')


def check_fits(model: nn.Module, checkpoint, path: str, config: str = 'this config') -> None:
    """Raise CheckpointMismatchError unless ``checkpoint``'s weights cover ``model`` exactly
    (same keys, same shapes; BatchNorm's ``num_batches_tracked`` may be absent)."""
    state = model_state(checkpoint)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not ALWAYS_OPTIONAL.search(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape]
    if not (missing or unexpected or mismatched):
        return
    task, description, arch = identify(state)
    own_task, _, own_arch = identify(own)
    fits = fitting_configs(task, arch)
    lines = [f'{path} does not fit the model of {config}: it is {description} with '
             f'{describe_arch(arch)}; {config} builds '
             + (f'{TASKS_BY_NAME[own_task]} with ' if own_task else '')
             + f'{describe_arch(own_arch)}. '
             + (f'It fits {" or ".join(fits)}.' if fits else 'No shipped config fits it.')]
    for title, keys in (('missing', missing), ('unexpected', unexpected),
                        ('shape mismatch', mismatched)):
        if keys:
            lines.append(f'  {title} ({len(keys)}): {_short(keys)}')
    raise CheckpointMismatchError('\n'.join(lines))


TASKS_BY_NAME = {task: description for task, description in TASKS.values()}


def check_backbone_fits(backbone: nn.Module, state_dict: Dict[str, torch.Tensor],
                        prefix: str) -> None:
    """Raise CheckpointMismatchError when the weights under ``prefix`` would leave part of a VSSD
    backbone at its random init (missing or differently shaped), fresh ``outnorm*`` excepted.

    Called from ``VSSD._load_from_state_dict``: it holds for any loader, stock mmdet/mmseg
    tools' non-strict ``load_from`` included.
    """
    own = backbone.state_dict()
    missing = [k for k in own if prefix + k not in state_dict
               and not k.startswith('outnorm') and not ALWAYS_OPTIONAL.search(k)]
    mismatched = [f'{k}: checkpoint {tuple(state_dict[prefix + k].shape)} vs model '
                  f'{tuple(own[k].shape)}' for k in own
                  if prefix + k in state_dict and state_dict[prefix + k].shape != own[k].shape]
    if not (missing or mismatched):
        return
    where = f'under {prefix!r}' if prefix else 'at the top level'
    lines = [f'the checkpoint\'s weights {where} do not fit this VSSD backbone: checkpoint has '
             f'{describe_arch(vssd_arch(state_dict, prefix))}, model has '
             f'{describe_arch(vssd_arch(own))}; its layers would stay randomly initialised. '
             'Use the config (arch) the checkpoint was trained with.']
    for title, keys in (('missing', missing), ('shape mismatch', mismatched)):
        if keys:
            lines.append(f'  {title} ({len(keys)}): {_short(keys)}')
    raise CheckpointMismatchError('\n'.join(lines))
