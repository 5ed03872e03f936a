"""Checks run before a Runner is built, so that a missing dataset or pretrained checkpoint is a
short message that says what to do, not a stack trace from a json loader or ``torch.load``."""
import os.path as osp
from typing import Iterator, List, Tuple

from mmengine.config import Config

from ..models.checkpoints import CheckpointDownloadError, CheckpointNotFoundError, local_file
from ..models.zoo import HF_REPO
from .data_check.num_classes import too_few_outputs
from .errors import ToolError
from .evaluation_flags import innermost_dataset

# what each dataset type expects under data_root, and where to get it
DATASET_LAYOUTS = {
    'CocoDataset': (
        '  {root}annotations/instances_train2017.json\n'
        '  {root}annotations/instances_val2017.json\n'
        '  {root}train2017/*.jpg\n'
        '  {root}val2017/*.jpg\n'
        'Get COCO 2017 from https://cocodataset.org (or symlink it to {root}), or run the demo on '
        'generated COCO-format data: make demo'),
    'ADE20KDataset': (
        '  {root}images/training/*.jpg        {root}annotations/training/*.png\n'
        '  {root}images/validation/*.jpg      {root}annotations/validation/*.png\n'
        'Get ADEChallengeData2016 from http://sceneparsing.csail.mit.edu (or symlink it to '
        '{root}), or generate ADE-format demo data: python tools/make_demo_data.py ade'),
    'ImageNet': (
        '  {root}train/<class>/*.JPEG   {root}val/<class>/*.JPEG  (or meta/train.txt, '
        'meta/val.txt lists)\n'
        'Get ImageNet-1k from https://image-net.org (or symlink it to {root}), or generate '
        'ImageFolder demo data: python tools/make_demo_data.py imagenet'),
}


def _dataset_paths(dataset: dict) -> Iterator[Tuple[str, str]]:
    """(description, path) of every file or folder a dataset config names."""
    root = dataset.get('data_root') or ''
    if dataset.get('ann_file'):
        yield 'annotation file', osp.join(root, dataset['ann_file'])
    prefix = dataset.get('data_prefix') or {}
    for key, sub in (prefix.items() if isinstance(prefix, dict) else [('img', prefix)]):
        if sub:
            yield f'{key} folder', osp.join(root, sub)
    if not dataset.get('ann_file') and not prefix and root:
        yield 'data root', root


def check_datasets(cfg: Config, loaders: List[str]) -> None:
    """Raise ``ToolError`` with the expected layout if a dataset of ``loaders`` (e.g.
    'train_dataloader') is missing on disk, and in one line if the model's heads have fewer
    outputs than the dataset has classes (``data_check.num_classes``)."""
    for loader in loaders:
        if not cfg.get(loader):
            continue
        dataset = innermost_dataset(cfg[loader]['dataset'])
        missing = [(what, path) for what, path in _dataset_paths(dataset)
                   if not osp.exists(path)]
        if not missing:
            problem = too_few_outputs(cfg.get('model') or {}, dataset, cfg.get('default_scope'),
                                      loader)
            if problem:
                raise ToolError(problem)
            continue
        kind = dataset.get('type', 'dataset')
        root = dataset.get('data_root') or ''
        lines = [f'{loader}: {kind} data not found:']
        lines += [f'  {what} {path} does not exist' for what, path in missing]
        layout = DATASET_LAYOUTS.get(kind)
        if layout:
            lines += [f'Expected layout (data_root={root!r}):', layout.format(root=root)]
        lines.append(f'A dataset elsewhere: --cfg-options {loader}.dataset.data_root=PATH/ '
                     '(and the evaluator\'s ann_file, if it has one)')
        raise ToolError('\n'.join(lines))


def build_model_checked(cfg: Config, model_cfg=None):
    """Build the config's model (or ``model_cfg``) once before the Runner, in the config's scope,
    with random weights and no download: an unknown type or a bad argument value is a
    ``ToolError`` now, not a traceback after the work dir was created. Returns the model."""
    from mmengine.registry import MODELS, DefaultScope
    try:
        # the Runner sets the default scope later; setting it here for good would leak into
        # whatever the process builds next
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            return MODELS.build(model_cfg or cfg.model)
    except (KeyError, ValueError, TypeError, NotImplementedError, AssertionError) as err:
        first = (str(err).strip().strip("'\"").splitlines() or [''])[0]
        raise ToolError(f'the config\'s model cannot be built: {type(err).__name__}: '
                        f'{first}') from None


def _pretrained_checkpoints(node, path: str = 'model') -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
            yield path, node['checkpoint']
        for key, value in node.items():
            yield from _pretrained_checkpoints(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_checkpoints(value, f'{path}[{i}]')


def check_pretrained(cfg: Config) -> None:
    """Raise ``ToolError`` saying what to do if an ``init_cfg`` checkpoint is not available: a
    missing local file, or a URL that cannot be downloaded (URLs are fetched here, once, into
    torch's hub cache, so that the Runner finds them there)."""
    for where, ckpt in _pretrained_checkpoints(cfg.get('model', {})):
        try:
            local_file(ckpt, f'point the config at it: --cfg-options {where}.checkpoint=PATH')
        except CheckpointDownloadError as err:
            raise ToolError(f'pretrained weights ({where}): {err}; or train from '
                            f'scratch with --cfg-options {where}=None') from None
        except CheckpointNotFoundError:
            raise ToolError(
                f'pretrained weights not found: {ckpt} (from {where}).\n'
                f'Download {osp.basename(ckpt)} (official VSSD ImageNet weights: '
                f'{HF_REPO}) to that path, point the config at your copy '
                f'with --cfg-options {where}.checkpoint=PATH, or train from scratch '
                f'with --cfg-options {where}=None') from None
