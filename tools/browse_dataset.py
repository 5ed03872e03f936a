"""Draw a config's samples, as its train (or val) pipeline delivers them, with their ground truth.

Boxes, masks and class names (mmdet), label maps in the dataset's palette (mmseg), the class name
(mmpretrain), drawn by the library's own visualiser. No model and no checkpoint needed.

Usage: python tools/browse_dataset.py CONFIG [--split train|val] [--num N] [--shuffle]
           [--out-dir DIR] [--montage FILE.png [--columns C]] [--cfg-options ...]
"""
import argparse
import os.path as osp
import sys

from vssd_mm.arguments import positive_float, positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cfg_options import CfgOptionsAction
from vssd_mm.engine.errors import undecodable_images_named
from vssd_mm.engine.paths import check_file_to_write, check_folder_to_write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', choices=['train', 'val'], default='train',
                        help='the dataset and pipeline to browse (default train: with its '
                        'augmentation)')
    parser.add_argument('--num', type=positive_int, default=8,
                        help='how many samples (default 8)')
    parser.add_argument('--shuffle', action='store_true',
                        help='a random choice of samples (seeded by the config\'s randomness.seed) '
                        'instead of the first')
    parser.add_argument('--out-dir', help='folder for the PNGs (default '
                        'work_dirs/<config name>/browse_<split>)')
    parser.add_argument('--rescale-factor', type=positive_float,
                        help='classification only: enlarge the pictures so that the class name '
                        'is readable (default: the config\'s visualization hook\'s)')
    parser.add_argument('--montage', metavar='FILE.png',
                        help='also write all the pictures tiled into this one PNG')
    parser.add_argument('--columns', type=positive_int, default=4,
                        help='pictures per row of the --montage (default 4)')
    # of the common flags only --cfg-options: this tool launches nothing (no --launcher)
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_dataloader.dataset.data_root=DIR')
    return parser.parse_args(argv)


def progress(items):
    """The items, with mmengine's progress bar on stderr while they are consumed (its line is
    ended by ``main``, also when a sample fails)."""
    from mmengine.utils import ProgressBar
    items = list(items)
    bar = ProgressBar(len(items), file=sys.stderr)
    for item in items:
        yield item
        bar.update()


def main(argv=None):
    filter_known_warnings()
    with exit_on_error():
        args = parse_args(argv)
        cfg = load_config(args.config, args.cfg_options)
        out_dir = args.out_dir or osp.join(
            'work_dirs', osp.splitext(osp.basename(args.config))[0], f'browse_{args.split}')
        check_folder_to_write(out_dir, '--out-dir')
        if args.montage:
            check_file_to_write(args.montage, '--montage', ('.png',))
        from vssd_mm.visualization.browse import browse
        try:
            with undecodable_images_named():
                written = browse(cfg, args.split, args.num, out_dir,
                                 rescale_factor=args.rescale_factor, progress=progress,
                                 montage=args.montage, columns=args.columns,
                                 shuffle=args.shuffle)
        finally:
            print(file=sys.stderr)  # the end of the progress bar's line
    print(f'{len(written)} {args.split} sample(s) drawn into {out_dir}'
          + (f' and tiled into {args.montage}' if args.montage else ''))


if __name__ == '__main__':
    main()
