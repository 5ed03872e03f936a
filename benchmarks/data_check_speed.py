"""Time of the data check that tools/train.py and tools/test.py run at the start (fast mode) and of
``tools/check_dataset.py --full``, on a generated COCO-format dataset with many images (hard links
to one demo image, two polygon instances each). Prints a table.

    python -m benchmarks.data_check_speed [--images 100000]
"""
import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.configs import config_path


def make_large_coco(root: Path, num_images: int) -> None:
    """``root/annotations/instances_train2017.json`` naming ``num_images`` images in
    ``root/train2017`` (hard links to one generated demo image), two instances each."""
    from vssd_mm.demo_data.coco import make_coco_demo
    make_coco_demo(root / 'seed', num_train=1, num_val=1)
    seed = next((root / 'seed' / 'train2017').iterdir())
    (root / 'train2017').mkdir()
    copies = []  # one file per 50,000 links (ext4 allows 65,000 links to a file)
    (root / 'annotations').mkdir()
    images, annotations = [], []
    polygon = [10., 10., 60., 10., 60., 50., 10., 50.]
    for i in range(1, num_images + 1):
        name = f'{i:012d}.jpg'
        if (i - 1) % 50000 == 0:
            copies.append(root / 'seed' / f'copy_{len(copies)}.jpg')
            shutil.copyfile(seed, copies[-1])
        os.link(copies[-1], root / 'train2017' / name)
        images.append(dict(id=i, file_name=name, height=192, width=256))
        for k in range(2):
            annotations.append(dict(id=2 * i + k, image_id=i, category_id=1 + (i + k) % 3,
                                    segmentation=[polygon], bbox=[10., 10., 50., 40.],
                                    area=2000., iscrowd=0))
    categories = [dict(id=1, name='square'), dict(id=2, name='circle'),
                  dict(id=3, name='triangle')]
    with open(root / 'annotations' / 'instances_train2017.json', 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=positive_int, default=100000)
    parser.add_argument('--full', action='store_true', help='also time the --full check')
    args = parser.parse_args(argv)
    filter_known_warnings()
    import vssd_mm  # noqa: F401
    from mmengine.config import Config

    from vssd_mm.engine.data_check import check_data
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        make_large_coco(root, args.images)
        print(f'generated {args.images} images in {time.perf_counter() - start:.1f} s')
        cfg = Config.fromfile(str(config_path('mmdet/demo/mask_rcnn_vssd_t_demo.py')))
        cfg.train_dataloader.dataset.data_root = str(root) + '/'
        rows = []
        for full in ([False, True] if args.full else [False]):
            start = time.perf_counter()
            report = check_data(cfg, ['train'], full=full)
            rows.append(('--full' if full else 'fast (train/test start)',
                         time.perf_counter() - start, len(report.problems)))
        print(report.table())
        print(f'\n{"mode":<26} {"images":>8} {"seconds":>8} {"problems":>8}')
        for mode, seconds, problems in rows:
            print(f'{mode:<26} {args.images:>8} {seconds:>8.2f} {problems:>8}')


if __name__ == '__main__':
    reuse_large_blocks(cuda=False)  # a CPU benchmark; this process only: see vssd_mm.allocator
    main()
