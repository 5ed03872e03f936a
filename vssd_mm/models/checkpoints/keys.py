"""The weights inside a checkpoint, and how their keys compare with a model's.

One way to pick the state dict out of a file (``state_dict_of``) and one comparison with one
report format (``KeyDiff``), for every check that says why a checkpoint does not fit.
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Sequence, Union

import torch

# where the weights are, in the order they are looked for: mmengine's files (mmdet / mmseg /
# mmpretrain training; with an EMAHook their 'state_dict' holds the averaged weights), then the
# release's classification files (live model, then its EMA); a file with none of them is a bare
# state dict
STATE_KEYS = ('state_dict', 'model', 'model_ema')
# BatchNorm's counter: filled in when a file lacks it, never a reason to refuse one
ALWAYS_OPTIONAL = re.compile(r'(^|\.)num_batches_tracked$')
StateKey = Union[None, str, Sequence[str]]


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model (another variant or task, or not a VSSD checkpoint)."""


def _tensor_count(value) -> int:
    return sum(isinstance(v, torch.Tensor) for v in value.values()) if isinstance(
        value, Mapping) else 0


def _entries(checkpoint: Mapping) -> str:
    """'meta, state_dict (412 tensors), optimizer': a file's top-level entries, those holding
    tensors with their count; 'none: it is a bare state dict of N tensors' for a bare one."""
    bare = _tensor_count(checkpoint)
    if bare:
        return f'none: it is a bare state dict of {bare} tensors'
    return ', '.join(f'{k} ({_tensor_count(v)} tensors)' if _tensor_count(v) else str(k)
                     for k, v in checkpoint.items()) or 'none'


def state_dict_of(checkpoint: Mapping, state_key: StateKey = None) -> Dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint's weights, DataParallel's ``module.`` prefix removed.

    ``state_key``: the entry to take (e.g. ``'model_ema'`` of an official classification file),
    or a sequence of entries of which the first the file has is taken (e.g. ``('model_ema',
    'state_dict')``: an official file's EMA weights, or a mmengine file's weights). Without it
    the first of STATE_KEYS the file has is taken, else the checkpoint itself (a bare state
    dict).

    Raises:
        CheckpointMismatchError: the file has none of the ``state_key`` entries; the message
            lists the entries it has.
    """
    if state_key is None:
        wanted = [k for k in STATE_KEYS if isinstance(checkpoint.get(k), Mapping)]
        checkpoint = checkpoint[wanted[0]] if wanted else checkpoint
    else:
        candidates = (state_key, ) if isinstance(state_key, str) else tuple(state_key)
        found = next((k for k in candidates if isinstance(checkpoint.get(k), Mapping)), None)
        if found is None:
            named = ' or '.join(repr(k) for k in candidates)
            raise CheckpointMismatchError(f'the checkpoint has no {named} entry; its entries: '
                                          f'{_entries(checkpoint)}')
        checkpoint = checkpoint[found]
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def short_list(keys: List[str], limit: int = 6) -> str:
    """'a, b, c ... (+N)': the first ``limit`` keys and how many more."""
    return ', '.join(keys[:limit]) + (f' ... (+{len(keys) - limit})' if len(keys) > limit else '')


@dataclass
class KeyDiff:
    """What a checkpoint's weights lack (``missing``), have besides (``unexpected``) and have in
    another shape (``mismatched``: 'key: checkpoint (shape) vs model (shape)'), against a model's
    own state dict; ``unused``: keys the model lacks that it legitimately does not use (not a
    mismatch, reported when loading)."""
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)

    @classmethod
    def compare(cls, own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                optional: Callable[[str], bool] = lambda key: False,
                unused: Callable[[str], bool] = lambda key: False,
                extra_allowed: bool = False) -> 'KeyDiff':
        """Compare ``state`` (the checkpoint's) with ``own`` (the model's). Keys for which
        ``optional`` is true (and BatchNorm's ``num_batches_tracked``) may be missing; extra keys
        for which ``unused`` is true are ``unused``, not ``unexpected``; ``extra_allowed`` leaves
        every key the model lacks unreported."""
        extra = [k for k in state if k not in own]
        return cls(
            missing=[k for k in own if k not in state
                     and not optional(k) and not ALWAYS_OPTIONAL.search(k)],
            unexpected=[] if extra_allowed else [k for k in extra if not unused(k)],
            mismatched=[f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                        for k in own if k in state and state[k].shape != own[k].shape],
            unused=[k for k in extra if unused(k)])

    def __bool__(self) -> bool:
        """Whether anything is a mismatch (``unused`` keys are not)."""
        return bool(self.missing or self.unexpected or self.mismatched)

    def report(self) -> str:
        """One indented line per non-empty kind: '  missing (12): a, b, ... (+6)'."""
        return '\n'.join(f'  {title} ({len(keys)}): {short_list(keys)}' for title, keys in (
            ('missing', self.missing), ('unexpected', self.unexpected),
            ('shape mismatch', self.mismatched)) if keys)
