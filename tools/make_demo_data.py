"""Generate a small deterministic dataset in a real format (nothing is downloaded).

    python tools/make_demo_data.py coco [--out data/coco_demo] [--num-train 64] [--num-val 16]
    python tools/make_demo_data.py ade  [--out data/ade_demo/ADEChallengeData2016] ...
    python tools/make_demo_data.py imagenet [--out data/imagenet_demo] [--size 64 64] ...

An existing directory is reused when it holds the same demo dataset and never written into
otherwise.
"""
import argparse

from vssd_mm.arguments import positive_int
from vssd_mm.demo_data import make_ade_demo, make_coco_demo, make_imagefolder_demo
from vssd_mm.engine import exit_on_error
from vssd_mm.engine.paths import check_folder_to_write

FORMATS = {  # name: (writer, default root, default (H, W), help)
    'coco': (make_coco_demo, 'data/coco_demo', (192, 256),
             'COCO instances json + images (mmdet CocoDataset)'),
    'ade': (make_ade_demo, 'data/ade_demo/ADEChallengeData2016', (192, 256),
            'ADE20K layout: images + label PNGs (mmseg ADE20KDataset)'),
    'imagenet': (make_imagefolder_demo, 'data/imagenet_demo', (64, 64),
                 'ImageFolder train/ and val/ class folders (mmpretrain); counts are per class'),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='format', required=True)
    for name, (_, root, size, text) in FORMATS.items():
        p = sub.add_parser(name, help=text)
        p.add_argument('--out', default=root, help=f'dataset root (default {root})')
        p.add_argument('--num-train', type=positive_int, default=64)
        p.add_argument('--num-val', type=positive_int, default=16)
        p.add_argument('--size', type=positive_int, nargs=2, default=size, metavar=('H', 'W'))
        p.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    writer = FORMATS[args.format][0]
    with exit_on_error():
        check_folder_to_write(args.out, '--out')
    try:
        out = writer(args.out, num_train=args.num_train, num_val=args.num_val,
                     image_size=tuple(args.size), seed=args.seed)
    except FileExistsError as err:
        raise SystemExit(f'error: {err}')
    print(f'{args.format} demo data: {out} ({args.num_train} train / {args.num_val} val images)')


if __name__ == '__main__':
    main()
