"""Can the config's model represent its dataset's classes? A head with fewer outputs than the
dataset has classes cannot learn them: mmdet's and mmseg's losses index past the logits (a CUDA
assert or a CPU IndexError mid-run, or labels silently treated as background), mmpretrain's
one-hot targets fail. Checked from the config alone, before anything is built or written."""
import importlib
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from .classification import class_folders, image_folder

# the heads (paths in the model config) whose num_classes must cover the dataset's classes;
# mmdet's rpn_head is class-agnostic (num_classes 1) and not among them
HEADS = {
    'mmdet': ('roi_head.bbox_head', 'roi_head.mask_head', 'bbox_head'),
    'mmseg': ('decode_head', 'auxiliary_head'),
    'mmpretrain': ('head', ),
}


def heads_num_classes(model_cfg: dict, scope: Optional[str]) -> Iterator[Tuple[str, int]]:
    """('model.roi_head.bbox_head', 80), ...: each class-predicting head of the model config
    and its num_classes (a list of heads, e.g. a cascade's, gives one entry per head)."""
    for path in HEADS.get(scope, ()):
        node = model_cfg
        for part in path.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        heads = node if isinstance(node, (list, tuple)) else [node]
        for i, head in enumerate(heads):
            if isinstance(head, dict) and isinstance(head.get('num_classes'), int):
                where = f'model.{path}' + (f'.{i}' if heads is node else '')
                yield where, head['num_classes']


def _annotation_labels(ann_file: str) -> int:
    """1 + the largest label of an mmpretrain annotation list ('path label' lines); 0 if none."""
    largest = -1
    with open(ann_file, encoding='utf-8') as f:
        for line in f:
            parts = line.rsplit(maxsplit=1)
            if len(parts) == 2 and parts[1].isdigit():
                largest = max(largest, int(parts[1]))
    return largest + 1


def _classes_argument(classes) -> Optional[Tuple[int, str]]:
    """mmpretrain's ``classes=`` (a list of names, or a file of them, one a line), read as its
    ``BaseDataset`` reads it; None where the file is not there to read."""
    if isinstance(classes, (list, tuple)):
        return len(classes), 'its classes argument'
    if isinstance(classes, str) and osp.isfile(osp.expanduser(classes)):
        from mmengine import list_from_file
        return len(list_from_file(osp.expanduser(classes))), f'the class names in {classes}'
    return None


def dataset_classes(dataset_cfg: dict, scope: Optional[str]) -> Optional[Tuple[int, str]]:
    """(number of classes, where the number comes from) of a dataset config as its library
    reads it: ``metainfo.classes``, else mmpretrain's ``classes`` argument, else the dataset
    type's own classes (COCO's 80, ADE20K's
    150, ImageNet's 1000), else for mmpretrain the class folders or the annotation list's
    labels; None when it cannot be told without building the dataset."""
    classes = (dataset_cfg.get('metainfo') or {}).get('classes')
    if classes:
        return len(classes), 'its metainfo.classes'
    if scope == 'mmpretrain' and dataset_cfg.get('classes') is not None:
        return _classes_argument(dataset_cfg['classes'])
    kind = dataset_cfg.get('type')
    if isinstance(kind, str) and scope in HEADS:
        kind = importlib.import_module(f'{scope}.registry').DATASETS.get(kind)
    own = len((getattr(kind, 'METAINFO', None) or {}).get('classes') or ())
    if own:
        return own, f'the classes of {kind.__name__}'
    if scope != 'mmpretrain':
        return None
    folder = image_folder(dataset_cfg)
    if folder and osp.isdir(folder):
        return len(class_folders(folder)), f'the class folders in {folder}'
    ann_file = osp.join(dataset_cfg.get('data_root') or '', dataset_cfg.get('ann_file') or '')
    if dataset_cfg.get('ann_file') and osp.isfile(ann_file) and not ann_file.endswith('.json'):
        return _annotation_labels(ann_file), f'the labels in {ann_file}'
    return None


def too_few_outputs(model_cfg: dict, dataset_cfg: dict, scope: Optional[str],
                    loader: str) -> Optional[str]:
    """One line saying which heads have fewer outputs than ``loader``'s dataset has classes and
    how to fix the config, or None when every head covers them."""
    found = dataset_classes(dataset_cfg, scope)
    if found is None:
        return None
    count, source = found
    small: List[Tuple[str, int]] = [(where, n) for where, n in heads_num_classes(model_cfg, scope)
                                    if n < count]
    if not small:
        return None
    heads = ', '.join(f'{where}.num_classes is {n}' for where, n in small)
    fix = ' '.join(f'{where}.num_classes={count}' for where, _ in small)
    return (f'the model cannot learn the classes of {loader}: {heads}, but its '
            f'{dataset_cfg.get("type", "dataset")} has {count} classes ({source}); set the '
            f'heads\' num_classes to the dataset\'s class count: --cfg-options {fix}')
