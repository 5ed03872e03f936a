"""ADE20K-format and ImageFolder demo datasets: the real layouts, labels that match the pixels."""
import cv2
import numpy as np
import pytest

from vssd_mm.demo_data import CLASS_NAMES, SEG_CLASSES, make_ade_demo, make_imagefolder_demo


def test_ade_layout_and_label_maps(tmp_path):
    root = make_ade_demo(tmp_path / 'ADEChallengeData2016', num_train=3, num_val=2,
                         image_size=(96, 128))
    for split, prefix, n in (('training', 'ADE_train', 3), ('validation', 'ADE_val', 2)):
        images = sorted((root / 'images' / split).glob('*.jpg'))
        labels = sorted((root / 'annotations' / split).glob('*.png'))
        assert [p.stem for p in images] == [p.stem for p in labels]
        assert len(images) == n and images[0].stem == f'{prefix}_00000001'
        for img_path, label_path in zip(images, labels):
            label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
            image = cv2.imread(str(img_path)).astype(int)
            assert label.shape == (96, 128) and label.dtype == np.uint8
            assert set(np.unique(label)) <= set(range(len(SEG_CLASSES) + 1))
            assert (label == 0).any() and (label == 1).any()  # outlines, ground
            # shapes are saturated colours on a grey-ish ground: the label says which is which
            saturation = image.max(-1) - image.min(-1)
            assert saturation[label >= 2].mean() > saturation[label == 1].mean() + 40


def test_mmseg_reads_the_ade_demo(tmp_path):
    import vssd_mm  # noqa: F401
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    root = make_ade_demo(tmp_path / 'ade', num_train=2, num_val=1)
    ds = BaseSegDataset(data_root=str(root), img_suffix='.jpg', seg_map_suffix='.png',
                        data_prefix=dict(img_path='images/training',
                                         seg_map_path='annotations/training'),
                        metainfo=dict(classes=SEG_CLASSES), reduce_zero_label=True,
                        pipeline=[LoadImageFromFile(), LoadAnnotations()])
    sample = ds[0]
    assert len(ds) == 2 and set(np.unique(sample['gt_seg_map'])) <= {0, 1, 2, 3, 255}
    assert (sample['gt_seg_map'] == 255).any()  # label 0 became "ignore"


def test_imagefolder_layout_and_determinism(tmp_path):
    a = make_imagefolder_demo(tmp_path / 'a', num_train=2, num_val=1, image_size=(48, 40))
    b = make_imagefolder_demo(tmp_path / 'b', num_train=2, num_val=1, image_size=(48, 40))
    for split, n in (('train', 2), ('val', 1)):
        assert sorted(p.name for p in (a / split).iterdir()) == sorted(CLASS_NAMES)
        for name in CLASS_NAMES:
            files = sorted((a / split / name).glob('*.JPEG'))
            assert len(files) == n
            assert cv2.imread(str(files[0])).shape == (48, 40, 3)
            assert files[0].read_bytes() == (b / split / name / files[0].name).read_bytes()
    with pytest.raises(FileExistsError):
        make_imagefolder_demo(a, num_train=3, num_val=1, image_size=(48, 40))
