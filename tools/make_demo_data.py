"""Generate a small deterministic dataset in a real format (nothing is downloaded).

    python tools/make_demo_data.py coco [--out data/coco_demo] [--num-train 64] [--num-val 16]

An existing directory is reused when it holds the same demo dataset and never written into
otherwise.
"""
import argparse

from vssd_mm.demo_data import make_coco_demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='format', required=True)
    coco = sub.add_parser('coco', help='COCO instances json + images (mmdet CocoDataset)')
    coco.add_argument('--out', default='data/coco_demo', help='dataset root')
    coco.add_argument('--num-train', type=int, default=64)
    coco.add_argument('--num-val', type=int, default=16)
    coco.add_argument('--size', type=int, nargs=2, default=(192, 256), metavar=('H', 'W'))
    coco.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        out = make_coco_demo(args.out, num_train=args.num_train, num_val=args.num_val,
                             image_size=tuple(args.size), seed=args.seed)
    except FileExistsError as err:
        raise SystemExit(f'error: {err}')
    print(f'{args.format} demo data: {out} '
          f'({args.num_train} train / {args.num_val} val images)')


if __name__ == '__main__':
    main()
