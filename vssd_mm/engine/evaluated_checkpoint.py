"""The CHECKPOINT of ``tools/test.py CONFIG CHECKPOINT``: a local file, an http(s) URL (downloaded
once into torch's hub cache) or another mmengine scheme; an official VSSD classification file
given to an mmpretrain VSSD classifier is converted on the way (as tools/convert_checkpoint.py
does), so it evaluates without a manual step."""
import contextlib
import os
import os.path as osp
from typing import Dict, Iterator, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..compat import allow_mmengine_training_state
from ..models.checkpoints import (OFFICIAL_STATE_KEYS, check_fits, convert_official_classifier,
                                  is_official_classification_checkpoint, local_file,
                                  read_checkpoint)
from .errors import ToolError


def is_vssd_classifier(model) -> bool:
    """Whether a built model is an mmpretrain ImageClassifier around VSSD: the plain one and its
    subclasses (``MESAClassifier`` of the ``*_mesa.py`` configs, whose state dict is the plain
    one's: the MESA teacher is not part of it)."""
    from ..models import VSSD
    if not isinstance(getattr(model, 'backbone', None), VSSD):
        return False
    try:
        from mmpretrain.models import ImageClassifier
    except ImportError:  # a detection / segmentation install
        return False
    return isinstance(model, ImageClassifier)


def write_converted(converted: dict, path: str, out_dir: str, state_key: str) -> str:
    """Save the mmpretrain form of the official file ``path`` into ``out_dir/converted/`` (kept
    and reused while newer than ``path``); return its path."""
    stem = osp.splitext(osp.basename(path))[0]
    dst = osp.join(out_dir, 'converted', f'{stem}_{state_key}_mmpretrain.pth')
    if not (osp.isfile(dst) and osp.getmtime(dst) >= osp.getmtime(path)):
        os.makedirs(osp.dirname(dst), exist_ok=True)
        partial = f'{dst}.{os.getpid()}.part'  # ranks of a distributed test write in turn
        torch.save(converted, partial)
        os.replace(partial, dst)
    print_log(f'official VSSD classification checkpoint {path}: evaluating its {state_key!r} '
              f'weights, converted for mmpretrain into {dst}', logger='current')
    return dst


def read_training_checkpoint(path: str, map_location='cpu'):
    """The checkpoint at ``path``, mmengine training state allowed (``UnreadableCheckpointError``
    when it cannot be read)."""
    with allow_mmengine_training_state():
        return read_checkpoint(path, map_location)


# files read (and fitted) before the Runner was built, by identity: mmengine's load takes them
# from here instead of reading them again (``runner_reads_once``)
_handed_over: Dict[tuple, object] = {}


def _identity(path: str):
    stat = os.stat(path)
    return osp.realpath(path), stat.st_mtime_ns, stat.st_size


def was_checked(path: str) -> bool:
    """Whether ``path`` (unchanged since) passed ``check_fits_once`` in this process and waits
    for the Runner's load."""
    return osp.isfile(path) and _identity(path) in _handed_over


def check_fits_once(model, checkpoint, path: str, config_name: str) -> None:
    """``check_fits`` (``CheckpointMismatchError`` unless ``checkpoint`` covers ``model``
    exactly); then ``checkpoint`` is handed over to the Runner's load of ``path``, which
    neither checks nor reads it again."""
    check_fits(model, checkpoint, path, config_name)
    _handed_over[_identity(path)] = checkpoint


def take_checkpoint(path: str, map_location='cpu'):
    """The checkpoint at ``path``: the one ``check_fits_once`` read (handed over once, e.g. the
    file ``resolve_test_checkpoint`` checked), else read now (``read_training_checkpoint``)."""
    if osp.isfile(path):
        checkpoint = _handed_over.pop(_identity(path), None)
        if checkpoint is not None:
            return checkpoint
    return read_training_checkpoint(path, map_location)


def _load_local(filename: str, map_location):
    """mmengine's local-file loader, replaced within ``runner_reads_once``."""
    return take_checkpoint(osp.expanduser(filename), map_location)


@contextlib.contextmanager
def runner_reads_once() -> Iterator[None]:
    """Within: mmengine's loads of local checkpoint files (``load_from``, ``resume``) take a file
    that was read and checked before the Runner was built (``check_fits_once``) as it was read,
    and read any other file once, weights-only with mmengine's training state allowed
    (``read_training_checkpoint``: one-line errors for a broken file)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    previous = CheckpointLoader._schemes['']  # mmengine's load_from_local, or a user's own
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local, force=True)
    try:
        yield
    finally:
        CheckpointLoader.register_scheme(prefixes='', loader=previous, force=True)


def _read_fitting(model, checkpoint: str, state_key: Optional[str], config_name: str):
    """(local path, the checkpoint as ``model`` loads it, whether it was an official
    classification file), the fit checked; (None, None, False) for schemes mmengine reads."""
    if state_key is not None and state_key not in OFFICIAL_STATE_KEYS:
        raise ToolError(f'--state-key must be one of {OFFICIAL_STATE_KEYS}')
    path = local_file(checkpoint, 'pass your copy as CHECKPOINT')
    if path is None:  # open-mmlab://, s3://, ...: mmengine's loaders
        return None, None, False
    ckpt = read_training_checkpoint(path)
    official = is_vssd_classifier(model) and is_official_classification_checkpoint(ckpt)
    if state_key is not None and not official:
        raise ToolError(f'--state-key applies to official VSSD classification '
                        f'checkpoints evaluated with an mmpretrain VSSD config; {checkpoint} '
                        'is loaded as it is')
    if official:  # the other entry and the training state are not kept
        ckpt = convert_official_classifier(ckpt, path, state_key or 'model')
    check_fits(model, ckpt, path, config_name)
    return path, ckpt, official


def resolve_test_checkpoint(cfg: Config, checkpoint: str, model, state_key: Optional[str] = None,
                            config_name: str = 'the config') -> str:
    """What the Runner loads for ``checkpoint`` (see the module docstring). Raises, before
    anything is written, when the file is missing (``ToolError``), cannot be downloaded or read,
    or does not fit the config's model (naming what it is and which config it fits).
    ``state_key`` picks the entry of an official classification file (default 'model', as the
    release's ``--eval`` reads). ``model``: the built model to fit (the one inside a TTA
    wrapper)."""
    path, ckpt, official = _read_fitting(model, checkpoint, state_key, config_name)
    if path is None:
        return checkpoint
    if official:
        path = write_converted(ckpt, path, cfg.work_dir, state_key or 'model')
    _handed_over[_identity(path)] = ckpt  # what the Runner loads: not read again
    return path


def load_into(model, checkpoint: str, config_name: str = 'the config',
              state_key: Optional[str] = None) -> dict:
    """Load ``checkpoint`` (a local file or an http(s) URL; official or mmengine) into a model a
    tool built itself (export, ERF, image demo): the checks and conversion of
    ``resolve_test_checkpoint`` (``state_key`` as there), the file read once and nothing
    written. Returns the checkpoint's ``meta`` (``{}`` when it has none), e.g. its
    ``dataset_meta``."""
    from ..models.checkpoints import state_dict_of
    path, ckpt, _ = _read_fitting(model, checkpoint, state_key, config_name)
    if path is None:
        raise ToolError(f'{checkpoint}: give a local checkpoint file or an http(s) URL')
    model.load_state_dict(state_dict_of(ckpt), strict=False)  # the fit was checked
    meta = ckpt.get('meta')
    return meta if isinstance(meta, dict) else {}
