"""Checks of a semantic-segmentation dataset as mmseg's ``BaseSegDataset`` lists it: every image
has its label map, of the image's size, holding only class indices and the ignore index."""
import numpy as np
from PIL import Image

from .images import decode, missing_files, sample
from .report import DataCheckReport

FIX_LABELS = ('label maps hold 0..N-1 for N classes (with reduce_zero_label: 0 = unlabelled, '
              '1..N) and the ignore index')


def allowed_values(num_classes: int, reduce_zero_label: bool, ignore_index: int) -> np.ndarray:
    """The raw label-map values that are a class or the ignore index."""
    classes = np.arange(1, num_classes + 1) if reduce_zero_label else np.arange(num_classes)
    extra = [0] if reduce_zero_label else []
    return np.unique(np.concatenate([classes, extra, [ignore_index]]))


def check_segmentation(dataset, split: str, full: bool, report: DataCheckReport,
                       progress) -> None:
    """``dataset``: the built mmseg dataset (its ``data_list`` lists image and label-map paths)."""
    items = dataset.data_list
    report.count(f'{split}: images listed', len(items), int(not items))
    if not items:
        report.add(dataset.data_prefix.get('img_path', ''), 'holds no image with suffix '
                   f'{dataset.img_suffix!r}', 'put the images there or set img_suffix')
        return
    maps = [item['seg_map_path'] for item in items]
    missing = set(missing_files(progress(maps, f'{split}: label maps exist')))
    report.count(f'{split}: label maps exist', len(maps), len(missing))
    for path in sorted(missing):
        report.add(path, 'label map of an image does not exist',
                   'add it, or remove the image (every image needs its label map)')
    pairs = [(item['img_path'], item['seg_map_path']) for item in items
             if item['seg_map_path'] not in missing]
    allowed = allowed_values(len(dataset.metainfo['classes']), dataset.reduce_zero_label,
                             dataset.ignore_index)
    sizes_bad = values_bad = decode_bad = 0
    checked = sample(pairs, full)
    for img_path, map_path in progress(checked, f'{split}: label maps'):
        with Image.open(img_path) as img, Image.open(map_path) as label:
            img_size, map_size = img.size, label.size
        if img_size != map_size:
            sizes_bad += 1
            report.add(map_path, f'label map is {map_size[0]}x{map_size[1]}, its image '
                       f'{img_size[0]}x{img_size[1]}', 'label maps have their image\'s size')
            continue
        image, labels = decode(img_path), decode(map_path, flag='unchanged')
        if image is None or labels is None:
            decode_bad += 1
            report.add(img_path if image is None else map_path, 'does not decode',
                       'replace it with a valid image file')
            continue
        outside = np.setdiff1d(np.unique(labels), allowed)
        if outside.size:
            values_bad += 1
            report.add(map_path, f'holds values {outside.tolist()[:8]} outside the classes and '
                       f'the ignore index {dataset.ignore_index}', FIX_LABELS)
    what = '' if full else ' (sample)'
    report.count(f'{split}: label map sizes{what}', len(checked), sizes_bad)
    report.count(f'{split}: images and maps decode{what}', len(checked) - sizes_bad, decode_bad)
    report.count(f'{split}: label values{what}', len(checked) - sizes_bad - decode_bad, values_bad)
