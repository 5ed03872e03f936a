"""The data check of ``tools/check_dataset.py`` and of the start of ``tools/train.py`` /
``tools/test.py``: a config's datasets built the way training reads them and checked for what would
otherwise fail mid-run or, worse, train silently on wrong labels (see each task's module)."""
from typing import Callable, Iterable, Optional, Sequence

from mmengine.config import Config

from ..errors import ToolError
from ..evaluation_flags import innermost_dataset
from .classification import check_class_folders, check_classification, image_folder
from .coco import check_coco
from .report import DataCheckReport, Problem

SPLITS = {'train': 'train_dataloader', 'val': 'val_dataloader', 'test': 'test_dataloader'}


class DataCheckError(ToolError):
    """A dataset has problems: the message names the first and how many more."""


def _no_progress(iterable: Iterable, what: str) -> Iterable:
    return iterable


def _mask_loader(pipeline: Sequence) -> Optional[str]:
    """The type of the pipeline's transform that loads instance masks, if any."""
    for step in pipeline or ():
        if isinstance(step, dict):
            if step.get('with_mask'):
                return step.get('type')
            inner = step.get('transforms')  # TestTimeAug: lists of transforms
            for branch in inner or ():
                found = _mask_loader(branch if isinstance(branch, list) else [branch])
                if found:
                    return found
    return None


def build_annotations(dataset_cfg: dict, scope: str):
    """The dataset as its library builds it in ``scope``: annotations parsed, no pipeline."""
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return DATASETS.build(dict(dataset_cfg, pipeline=[], serialize_data=False))


def check_data(cfg: Config, splits: Sequence[str] = ('train', 'val', 'test'), full: bool = False,
               progress: Callable = _no_progress) -> DataCheckReport:
    """Check the datasets of ``splits`` (those the config has; a dataset shared by two splits
    once). ``full``: decode every image and label map, not a sample. ``progress(iterable,
    what)`` may wrap the long loops in a progress bar."""
    report, seen = DataCheckReport(), []
    scope = cfg.get('default_scope')
    for split in splits:
        loader = cfg.get(SPLITS[split])
        if not loader or not loader.get('dataset'):
            continue
        dataset_cfg = innermost_dataset(loader['dataset'])
        if dataset_cfg in seen:
            continue
        seen.append(dataset_cfg)
        if scope == 'mmdet' and str(dataset_cfg.get('ann_file', '')).endswith('.json'):
            _check_detection(dataset_cfg, split, full, report, progress)
        elif scope == 'mmseg':
            from .segmentation import check_segmentation
            check_segmentation(build_annotations(dataset_cfg, scope), split, full, report, progress)
        elif scope == 'mmpretrain':
            classes = (dataset_cfg.get('metainfo') or {}).get('classes')
            folder = image_folder(dataset_cfg)
            if folder and not check_class_folders(folder, split, classes, report):
                continue
            check_classification(build_annotations(dataset_cfg, scope), split, full, report, progress)
    return report


def _check_detection(dataset_cfg: dict, split: str, full: bool, report: DataCheckReport,
                     progress) -> None:
    from mmdet.registry import DATASETS
    classes = (dataset_cfg.get('metainfo') or {}).get('classes')
    if classes is None:  # the dataset class's own, e.g. COCO's 80
        classes = DATASETS.get(dataset_cfg.get('type', 'CocoDataset')).METAINFO['classes']
    loader = _mask_loader(dataset_cfg.get('pipeline'))
    check_coco(dataset_cfg, split, classes, with_mask=loader is not None,
               box_masks=loader == 'LoadCocoAnnotations', full=full, report=report,
               progress=progress)


def raise_for_problems(report: DataCheckReport, config_path: str) -> None:
    """``DataCheckError`` naming the first problem and the count of the others."""
    if not report.problems:
        return
    more = len(report.problems) - 1
    others = f' (and {more} more problem{"s" * (more > 1)})' if more else ''
    raise DataCheckError(
        f'{report.problems[0].line()}{others}. tools/check_dataset.py {config_path} lists '
        'every problem; --skip-data-check skips this check')


__all__ = ['DataCheckError', 'DataCheckReport', 'Problem', 'check_data', 'raise_for_problems']
