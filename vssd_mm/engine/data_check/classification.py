"""Checks of a classification dataset as mmpretrain's ``CustomDataset`` / ``ImageNet`` read it:
class folders (or the list file's labels) against the config's classes, images."""
import os
import os.path as osp
from typing import Optional, Sequence

from .images import check_images
from .report import DataCheckReport


def class_folders(img_dir: str) -> list:
    """The class folders of an ImageFolder layout, in the order mmpretrain numbers them."""
    return sorted(e.name for e in os.scandir(img_dir) if e.is_dir())


def check_class_folders(img_dir: str, split: str, classes: Optional[Sequence[str]],
                        report: DataCheckReport) -> bool:
    """An ImageFolder layout's folders against the config's classes (mmpretrain numbers the
    folders in sorted order and names label i after ``classes[i]``). Returns whether they
    agree."""
    folders = class_folders(img_dir)
    agree = classes is None or list(classes) == folders
    report.count(f'{split}: class folders', len(folders), int(not agree))
    if not agree:
        report.add(img_dir, f'class folders {folders} differ from the config\'s classes '
                   f'{list(classes)} (label i is folder i in sorted order)',
                   'list metainfo.classes in the folders\' sorted order, or rename the folders')
    return agree


def check_classification(dataset, split: str, full: bool, report: DataCheckReport,
                         progress) -> None:
    """``dataset``: the built mmpretrain dataset (``data_list`` of img_path, gt_label)."""
    items = dataset.data_list
    num_classes = len(dataset.metainfo.get('classes') or ())
    labels_bad = [i for i in items if num_classes and not 0 <= i.get('gt_label', 0) < num_classes]
    report.count(f'{split}: labels in range', len(items), len(labels_bad))
    for item in labels_bad[:20]:
        report.add(item['img_path'], f'label {item["gt_label"]} is outside 0..{num_classes - 1}',
                   'fix the list file, or the config\'s classes')
    check_images([i['img_path'] for i in items], split, full, report, progress, 'the dataset',
                 'restore the file, or remove it from the list file')


def image_folder(dataset_cfg: dict) -> Optional[str]:
    """The folder of an ImageFolder layout (no ann_file), else None."""
    if dataset_cfg.get('ann_file'):
        return None
    prefix = dataset_cfg.get('data_prefix') or ''
    sub = prefix.get('img_path', '') if isinstance(prefix, dict) else prefix
    return osp.join(dataset_cfg.get('data_root') or '', sub)
