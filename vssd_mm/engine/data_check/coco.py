"""Checks of a COCO-format instances dataset as mmdet's ``CocoDataset`` reads it."""
import difflib
import json
import os.path as osp
from collections import Counter
from typing import List, Sequence

from .images import check_images
from .report import DataCheckReport

FIX_MISSING = 'restore the file, or remove the image and its annotations from the file'
FIX_FORMAT = 'fix the annotation: COCO format, cocodataset.org/#format-data'


def _is_polygon(poly) -> bool:
    return (isinstance(poly, list) and all(isinstance(v, (int, float)) for v in poly))


def _segmentation_problem(seg, image: dict) -> str:
    """What is wrong with an annotation's non-empty ``segmentation`` for mmdet's pipeline, or ''.
    Polygons with fewer than 3 points are legitimate: mmdet ignores such an instance."""
    if isinstance(seg, list):
        if not all(_is_polygon(p) and len(p) % 2 == 0 for p in seg):
            return 'segmentation is not a list of polygons [x1, y1, x2, y2, ...]'
        return ''
    if isinstance(seg, dict):
        if not isinstance(seg.get('counts'), (list, str)) or 'size' not in seg:
            return 'RLE segmentation needs "counts" (a list or string) and "size" [height, width]'
        if list(seg['size']) != [image.get('height'), image.get('width')]:
            return (f'RLE size {list(seg["size"])} differs from the image\'s '
                    f'[{image.get("height")}, {image.get("width")}]')
        return ''
    return f'segmentation of type {type(seg).__name__} is neither polygons nor RLE'


def check_coco(dataset: dict, split: str, classes: Sequence[str], with_mask: bool,
               box_masks: bool, full: bool, report: DataCheckReport, progress) -> None:
    """Check one ``CocoDataset`` config (``data_root``, ``ann_file``, ``data_prefix``) against
    the config's ``classes``: categories, annotations, images. ``with_mask``: the pipeline loads
    masks; ``box_masks``: its loader gives an instance without segmentation its box as mask
    (``LoadCocoAnnotations``), mmdet's fails on such instances. ``progress(iterable, what)``
    wraps the long loops in a progress bar."""
    root = dataset.get('data_root') or ''
    ann_file = osp.join(root, dataset['ann_file'])
    prefix = dataset.get('data_prefix') or {}
    img_dir = osp.join(root, prefix.get('img', '') if isinstance(prefix, dict) else prefix)
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        report.count(f'{split}: annotation file', 1, 1)
        report.add(ann_file, f'is not valid JSON (line {err.lineno}: {err.msg})', FIX_FORMAT)
        return
    # a test set's file (COCO's image_info_test-dev2017.json) has no annotations list
    missing_keys = [k for k in ('images', 'categories') if k not in data]
    data.setdefault('annotations', [])
    report.count(f'{split}: annotation file', 1, int(bool(missing_keys)))
    if missing_keys:
        report.add(ann_file, f'has no {", ".join(missing_keys)} list', FIX_FORMAT)
        return
    cat_ids = _check_categories(data, ann_file, split, classes, report)
    images = {img['id']: img for img in data['images']}
    _check_annotations(data['annotations'], images, cat_ids, ann_file, split, with_mask,
                       box_masks, report, progress)
    paths = [osp.join(img_dir, img['file_name']) for img in data['images']]
    check_images(paths, split, full, report, progress, osp.basename(ann_file), FIX_MISSING)


def _check_categories(data: dict, ann_file: str, split: str, classes: Sequence[str],
                      report: DataCheckReport) -> set:
    """The config's classes against the file's category names (mmdet keeps the categories whose
    names are classes and numbers them in the classes' order). Returns the used category ids."""
    names = {c['id']: c['name'] for c in data['categories']}
    instances = Counter(a.get('category_id') for a in data['annotations'])
    by_name = {name: cid for cid, name in names.items()}
    unknown = [c for c in classes if c not in by_name]
    report.count(f'{split}: classes in categories', len(classes), len(unknown))
    for cls in unknown:
        close = difflib.get_close_matches(cls, list(by_name), n=1, cutoff=0.6)
        hint = f'; the file has {close[0]!r}' if close else ''
        report.add(ann_file, f'class {cls!r} of the config is not a category of the file{hint}',
                   f'make metainfo=dict(classes=...) and the file\'s category names agree; the '
                   f'file\'s categories: {", ".join(sorted(by_name))}')
    used = {by_name[c] for c in classes if c in by_name}
    empty = [c for c in classes if c in by_name and not instances[by_name[c]]]
    if split == 'train':
        report.count(f'{split}: classes with instances', len(classes) - len(unknown), len(empty))
        for cls in empty:
            report.add(ann_file, f'class {cls!r} has no instances',
                       'add its annotations, or drop it from metainfo.classes')
    extra = sorted(n for cid, n in names.items() if cid not in used and instances[cid])
    if extra:
        report.notes.append(f'{split}: categories not in the config\'s classes, their instances '
                            f'not used: {", ".join(extra)}')
    return used


def _check_annotations(annotations: List[dict], images: dict, cat_ids: set, ann_file: str,
                       split: str, with_mask: bool, box_masks: bool, report: DataCheckReport,
                       progress) -> None:
    """Each annotation as mmdet's ``CocoDataset.parse_data_info`` and ``LoadAnnotations`` read
    it: a known image, a 4-number box, a known category, a segmentation they can load."""
    bad = 0
    unusable = Counter()
    for ann in progress(annotations, f'{split}: annotations'):
        image = images.get(ann.get('image_id'))
        what = ''
        box = ann.get('bbox')
        if image is None:
            what = f'image_id {ann.get("image_id")!r} is not in the images list'
        elif not (isinstance(box, list) and len(box) == 4
                  and all(isinstance(v, (int, float)) for v in box)):
            what = f'bbox {box!r} is not [x, y, width, height]'
        elif ann.get('category_id') not in cat_ids:
            unusable['of categories not in the classes'] += 1
            continue
        elif box[2] < 1 or box[3] < 1 or ann.get('area', 1) <= 0:
            unusable['zero-size (skipped by mmdet)'] += 1
            continue
        elif with_mask and ann.get('segmentation'):
            what = _segmentation_problem(ann['segmentation'], image)
        elif with_mask and box_masks:
            unusable['without segmentation (their box as mask)'] += 1
        elif with_mask:
            what = ('has no segmentation, which mmdet\'s LoadAnnotations cannot load: use '
                    'type=\'LoadCocoAnnotations\' (vssd_mm) in the pipeline, it gives such an '
                    'instance its box as mask')
        if what:
            bad += 1
            report.add(ann_file, f'annotation id {ann.get("id")!r}: {what}', FIX_FORMAT)
        elif ann.get('iscrowd'):
            unusable['crowd (ignored regions)'] += 1
    report.count(f'{split}: annotations well-formed', len(annotations), bad)
    for kind, n in unusable.items():
        report.notes.append(f'{split}: {n} annotations {kind}')
