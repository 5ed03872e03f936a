"""What a checkpoint's weights are: the task's model (by its head's keys), the VSSD variant (read
off the backbone's shapes), and the shipped configs they fit."""
import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

import torch

from ...configs import task_configs
from ...variants import ARCH_SETTINGS

TASKS = {  # a key prefix that only this task's models have -> (task, description)
    'roi_head.': ('detection', 'a Mask R-CNN (mmdet)'),
    'decode_head.': ('segmentation', 'a UperNet (mmseg)'),
    'head.fc.': ('classification', 'an ImageClassifier (mmpretrain)'),
}
TASK_MODELS = {task: description for task, description in TASKS.values()}


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
    """'VSSD-Tiny (embed_dim 64, depths (2, 4, 8, 4), d_state 64)', 'a custom VSSD (...)' or
    'no VSSD backbone'."""
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
    """The shipped configs whose model the weights of ``task`` / ``arch`` fit."""
    name = variant_name(arch)
    return [] if task is None or name is None else task_configs(task, name)
