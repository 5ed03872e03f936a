"""The COCO demo dataset: deterministic, in the real format, masks exactly the polygons."""
import hashlib
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from vssd_mm.demo_data import CLASS_NAMES, make_coco_demo


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = make_coco_demo(tmp_path / 'a', num_train=3, num_val=2, seed=1)
    b = make_coco_demo(tmp_path / 'b', num_train=3, num_val=2, seed=1)
    c = make_coco_demo(tmp_path / 'c', num_train=3, num_val=2, seed=2)
    assert _digest(a) == _digest(b) != _digest(c)


def test_real_coco_layout_and_exact_annotations(tmp_path):
    root = make_coco_demo(tmp_path / 'coco', num_train=6, num_val=3, image_size=(96, 160))
    for split, n in (('train2017', 6), ('val2017', 3)):
        coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
        assert len(coco.getImgIds()) == n and len(list((root / split).glob('*.jpg'))) == n
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASS_NAMES)
        assert len(coco.getAnnIds()) >= 2 * n
        for ann in coco.loadAnns(coco.getAnnIds()):
            mask = coco.annToMask(ann)
            # rasterised polygon == recorded area within the boundary pixels
            assert abs(int(mask.sum()) - ann['area']) <= 0.12 * ann['area'] + 8
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            assert abs(xs.min() - x) <= 1.5 and abs(xs.max() + 1 - (x + w)) <= 1.5
            assert abs(ys.min() - y) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
            assert ann['iscrowd'] == 0 and ann['image_id'] in coco.imgs
        # objects do not overlap: every pixel belongs to at most one instance
        for img_id in coco.getImgIds():
            masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id))]
            assert np.stack(masks).sum(0).max() == 1


def test_mmdet_reads_it_with_the_demo_classes(tmp_path):
    import vssd_mm  # noqa: F401
    from mmdet.datasets import CocoDataset
    root = make_coco_demo(tmp_path / 'coco', num_train=4, num_val=2)
    ds = CocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                     data_prefix=dict(img='train2017/'), metainfo=dict(classes=CLASS_NAMES),
                     pipeline=[])
    assert len(ds) == 4
    info = ds[0]
    assert info['height'] == 192 and info['width'] == 256
    assert {i['bbox_label'] for d in (ds[k] for k in range(4)) for i in d['instances']} \
        <= {0, 1, 2}


def test_existing_directories_are_reused_or_left_alone(tmp_path):
    root = make_coco_demo(tmp_path / 'coco', num_train=2, num_val=1)
    stamp = (root / 'DEMO_DATA.json').stat().st_mtime_ns
    make_coco_demo(root, num_train=2, num_val=1)  # same request: nothing rewritten
    assert (root / 'DEMO_DATA.json').stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match='other parameters'):
        make_coco_demo(root, num_train=3, num_val=1)
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'mine.txt').write_text('keep')
    with pytest.raises(FileExistsError, match='holds other files'):
        make_coco_demo(user)
    assert (user / 'mine.txt').read_text() == 'keep'
    assert json.loads((root / 'DEMO_DATA.json').read_text())['num_train'] == 2
