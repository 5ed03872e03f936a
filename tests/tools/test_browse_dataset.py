"""tools/browse_dataset.py draws what the config's pipeline delivers: each picture is checked
against the sample that the library's own dataset (built from the config by its registry, same seed) gives
for that index: its size, its image where nothing is drawn, and at the ground truth's pixels the
colour drawn there (boxes and masks in the class's palette colour, label maps blended with the
dataset palette), the class names asked to be drawn."""
import os

import cv2
import numpy as np
import pytest

from conftest import REPO, tool_main

DEMO_CONFIGS = {'mmdet': 'configs/mmdet/demo/mask_rcnn_vssd_t_demo.py',
                'mmseg': 'configs/mmseg/demo/upernet_vssd_t_demo.py',
                'mmpretrain': 'configs/mmpretrain/demo/vssd_t_demo.py'}
DET_CLASSES = ('square', 'circle', 'triangle')
DET_PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # given, so the box colour is known
ALPHA = 0.8  # the visualisers' default opacity of boxes, masks and label maps


@pytest.fixture(scope='module')
def configs(tmp_path_factory):
    """The demo configs on the smallest generated demo data (a few images each)."""
    from vssd_mm.demo_data import make_ade_demo, make_coco_demo, make_imagefolder_demo
    root = tmp_path_factory.mktemp('browse')
    coco = make_coco_demo(root / 'coco', num_train=3, num_val=1)
    ade = make_ade_demo(root / 'ade' / 'ADEChallengeData2016', num_train=2, num_val=1)
    imagenet = make_imagefolder_demo(root / 'imagenet', num_train=1, num_val=1)
    overrides = {
        'mmdet': f"metainfo = dict(classes={DET_CLASSES}, palette={DET_PALETTE})\n"
                 f"_data = dict(data_root='{coco}/', metainfo=metainfo)\n",
        'mmseg': f"_data = dict(data_root='{ade}')\n",
        'mmpretrain': f"_data = dict(data_root='{imagenet}')\n",
    }
    paths = {}
    for scope, body in overrides.items():
        path = root / f'{scope}.py'
        path.write_text(f"_base_ = '{REPO / DEMO_CONFIGS[scope]}'\n{body}"
                        'train_dataloader = dict(dataset=_data)\n'
                        'val_dataloader = dict(dataset=_data)\n')
        paths[scope] = path
    paths['imagenet'] = imagenet
    return paths


def _browse(config, out_dir, *args):
    """The tool's pictures (RGB, float) by the dataset index their names start with."""
    tool_main('browse_dataset.py')([str(config), '--out-dir', str(out_dir), *args])
    return {int(name.split('_')[0]): cv2.imread(str(out_dir / name))[..., ::-1].astype(float)
            for name in sorted(os.listdir(out_dir))}


def _reference(config, split: str, index: int):
    """Sample ``index`` of ``split`` from the dataset the library builds from the config, after
    mmengine's seeding with the config's seed + index (what the tool documents)."""
    from mmengine.config import Config
    from mmengine.registry import DATASETS, DefaultScope
    from mmengine.runner import set_random_seed
    cfg = Config.fromfile(str(config))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    set_random_seed(cfg.randomness.seed + index)
    sample = dataset[index]
    image = sample['inputs'].permute(1, 2, 0).numpy()[..., ::-1].astype(float)  # BGR -> RGB
    return image, sample['data_samples'], dataset.metainfo


def _distance(a, b):
    return np.linalg.norm(np.asarray(a, float) - np.asarray(b, float), axis=-1)


def test_detection_boxes_masks_and_names_on_the_augmented_image(configs, tmp_path, monkeypatch):
    from mmengine.visualization import Visualizer
    drawn_texts = []
    draw_texts = Visualizer.draw_texts

    def spy(self, texts, positions, *args, **kwargs):
        drawn_texts.append((texts, np.asarray(positions, float).tolist()))
        return draw_texts(self, texts, positions, *args, **kwargs)
    monkeypatch.setattr(Visualizer, 'draw_texts', spy)
    montage = tmp_path / 'montage.png'
    pictures = _browse(configs['mmdet'], tmp_path / 'out', '--num', '3', '--montage', str(montage),
                       '--columns', '2')
    assert sorted(pictures) == [0, 1, 2]
    flips, start = [], 0
    for index, picture in pictures.items():
        image, sample, _ = _reference(configs['mmdet'], 'train', index)
        flips.append(sample.flip)
        assert picture.shape[:2] == image.shape[:2] == tuple(sample.img_shape)
        boxes = sample.gt_instances.bboxes.tensor.numpy()
        labels = sample.gt_instances.labels.tolist()
        masks = sample.gt_instances.masks.to_ndarray().astype(bool)
        height, width = image.shape[:2]
        yy, xx = np.mgrid[:height, :width]
        text_areas, near_boxes = np.zeros((height, width), bool), np.zeros((height, width), bool)
        for x1, y1, x2, y2 in boxes:
            text_areas |= (xx >= x1) & (xx < x1 + 70) & (yy >= y1) & (yy < y1 + 22)
            near_boxes |= (xx >= x1 - 4) & (xx <= x2 + 4) & (yy >= y1 - 4) & (yy <= y2 + 4)
        # nothing drawn: the pipeline's image (after its resize and flip) as it is
        assert (np.abs(picture - image).max(-1) <= 2)[~near_boxes].mean() > 0.99
        grown_masks = cv2.dilate(masks.any(0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        for (x1, y1, x2, y2), label, mask in zip(boxes, labels, masks):
            colour = DET_PALETTE[label]
            # the box outline (outside the masks, drawn over them) in the class colour
            on_sides = ((np.abs(xx - x1) <= 1.5) | (np.abs(xx - x2) <= 1.5)) & (yy > y1) & (yy < y2)
            on_ends = ((np.abs(yy - y1) <= 1.5) | (np.abs(yy - y2) <= 1.5)) & (xx > x1) & (xx < x2)
            outline = (on_sides | on_ends) & ~grown_masks & ~text_areas
            assert outline.sum() > 20
            assert np.median(_distance(picture[outline], colour)) < 40
            assert np.median(_distance(image[outline], colour)) > 100  # not so before drawing
            # the mask: image * (1 - ALPHA) + c * ALPHA with one c per instance, near the class
            # colour (the visualiser jitters it by at most 64 per channel)
            inside = (cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
            inside &= (masks.sum(0) == 1) & ~text_areas
            if inside.sum() < 20:
                continue
            fill = (picture[inside] - (1 - ALPHA) * image[inside]) / ALPHA
            assert fill.std(0).max() < 3
            assert np.abs(fill.mean(0) - colour).max() < 70
        # the class names, at the boxes' top-left corners
        calls = drawn_texts[start:start + len(labels)]
        start += len(labels)
        assert [text for text, _ in calls] == [DET_CLASSES[label] for label in labels]
        np.testing.assert_allclose([pos for _, pos in calls], boxes[:, :2] + 3, atol=0.5)
    assert len(drawn_texts) == start
    assert any(flips)  # the pipeline's RandomFlip took effect in what was checked
    # the montage: the pictures in rows of 2, 4 white pixels apart
    sheet = cv2.imread(str(montage))[..., ::-1].astype(float)
    height, width = pictures[0].shape[:2]
    assert sheet.shape == (2 * height + 4, 2 * width + 4, 3)
    for index, (top, left) in enumerate([(0, 0), (0, width + 4), (height + 4, 0)]):
        np.testing.assert_array_equal(sheet[top:top + height, left:left + width], pictures[index])
    assert (sheet[height + 4:, width + 4:] == 255).all()


def _check_label_map(picture, image, sample, palette):
    seg = sample.gt_sem_seg.data[0].numpy()
    assert picture.shape[:2] == image.shape[:2] == seg.shape == tuple(sample.img_shape)
    classes_there = [c for c in np.unique(seg) if c < len(palette)]
    assert len(classes_there) >= 2
    for c in [*classes_there, 255]:
        region = cv2.erode((seg == c).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if region.sum() < 20:
            continue
        colour = np.asarray(palette[c] if c != 255 else (0, 0, 0), float)  # 255: unlabelled
        expected = np.floor(image * (1 - ALPHA) + colour * ALPHA)
        # the class-name boxes drawn at each region's centre cover a few of its pixels
        assert (np.abs(picture - expected).max(-1) <= 2)[region].mean() > 0.85, c


def test_segmentation_label_maps_in_the_dataset_palette(configs, tmp_path):
    pictures = _browse(configs['mmseg'], tmp_path, '--num', '2')
    assert sorted(pictures) == [0, 1]
    for index, picture in pictures.items():
        image, sample, meta = _reference(configs['mmseg'], 'train', index)
        assert image.shape[:2] == (128, 128)  # the config's crop
        _check_label_map(picture, image, sample, meta['palette'])


def test_val_split_uses_the_val_pipeline(configs, tmp_path):
    (picture,) = _browse(configs['mmseg'], tmp_path, '--split', 'val', '--num', '5').values()
    image, sample, meta = _reference(configs['mmseg'], 'val', 0)
    assert image.shape[:2] == (192, 256)  # resized to short side 192, not cropped
    _check_label_map(picture, image, sample, meta['palette'])


def test_classification_class_name_on_the_augmented_image(configs, tmp_path, monkeypatch):
    import mmcv
    from matplotlib.axes import Axes
    drawn_texts = []
    text = Axes.text

    def spy(self, x, y, s, *args, **kwargs):
        drawn_texts.append(s)
        return text(self, x, y, s, *args, **kwargs)
    monkeypatch.setattr(Axes, 'text', spy)
    pictures = _browse(configs['mmpretrain'], tmp_path, '--num', '2', '--shuffle')
    folders = sorted(os.listdir(configs['imagenet'] / 'train'))  # ImageFolder: the class names
    assert len(pictures) == len(drawn_texts) == 2
    expected_texts = []
    for index, picture in pictures.items():
        image, sample, _ = _reference(configs['mmpretrain'], 'train', index)
        folder = os.path.basename(os.path.dirname(sample.img_path))
        expected_texts.append(f'Ground truth: {folders.index(folder)} ({folder})')
        # enlarged by the config's visualization rescale_factor (4) so that the name is readable
        enlarged = mmcv.imrescale(image.astype(np.uint8), 4.0).astype(float)
        assert picture.shape == enlarged.shape == (256, 256, 3)
        lower_half = slice(128, None)  # the text is drawn at the top-left
        assert (np.abs(picture[lower_half] - enlarged[lower_half]).max(-1) <= 2).mean() > 0.99
    assert sorted(drawn_texts) == sorted(expected_texts)
    assert sorted(pictures) != [0, 1]  # --shuffle: not the first two (the seed's choice of 3)


def test_rescale_factor_for_a_detection_config_is_one_error_line(configs, tmp_path):
    with pytest.raises(SystemExit) as stop:
        tool_main('browse_dataset.py')([str(configs['mmdet']), '--out-dir', str(tmp_path / 'o'),
                                        '--rescale-factor', '2'])
    assert str(stop.value).startswith('error: --rescale-factor is for classification')


def test_missing_image_is_one_error_line_naming_it(configs, tmp_path):
    import shutil
    from mmengine.config import Config
    data_root = Config.fromfile(str(configs['mmdet'])).train_dataloader.dataset.data_root
    broken = tmp_path / 'coco'
    shutil.copytree(data_root, broken)
    missing = sorted((broken / 'train2017').iterdir())[0]
    missing.unlink()
    with pytest.raises(SystemExit) as stop:
        tool_main('browse_dataset.py')([
            str(configs['mmdet']), '--out-dir', str(tmp_path / 'o'),
            '--cfg-options', f'train_dataloader.dataset.data_root={broken}/'])
    assert str(stop.value).startswith('error: sample 0 of the train dataset')
    assert str(missing) in str(stop.value)
