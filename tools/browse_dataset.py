"""Draw a config's samples as the training (or validation) pipeline delivers them, with their
ground truth: boxes, masks and class names (mmdet), label maps in the dataset's palette (mmseg),
the class name (mmpretrain). No model and no checkpoint needed.

Usage: python tools/browse_dataset.py CONFIG [--split train|val] [--num N] [--out-dir DIR]
"""
import argparse
import os.path as osp
import sys

from vssd_mm.arguments import positive_float, positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cli import add_common_arguments
from vssd_mm.engine.paths import check_folder_to_write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', choices=['train', 'val'], default='train',
                        help='the dataset and pipeline to browse (default train: with its '
                        'augmentation)')
    parser.add_argument('--num', type=positive_int, default=8,
                        help='how many samples, from the first (default 8)')
    parser.add_argument('--out-dir', help='folder for the PNGs (default '
                        'work_dirs/<config name>/browse_<split>)')
    parser.add_argument('--rescale-factor', type=positive_float,
                        help='classification only: enlarge the pictures so that the class name '
                        'is readable (default: the config\'s visualization hook\'s)')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def progress(items):
    """mmengine's progress bar over the samples, on stderr."""
    from mmengine.utils import track_iter_progress
    return track_iter_progress(list(items), file=sys.stderr)


def main(argv=None):
    filter_known_warnings()
    with exit_on_error():
        args = parse_args(argv)
        cfg = load_config(args.config, args.cfg_options)
        out_dir = args.out_dir or osp.join(
            'work_dirs', osp.splitext(osp.basename(args.config))[0], f'browse_{args.split}')
        check_folder_to_write(out_dir, '--out-dir')
        from vssd_mm.visualization.browse import browse
        written = browse(cfg, args.split, args.num, out_dir,
                         rescale_factor=args.rescale_factor, progress=progress)
    print(f'{len(written)} {args.split} sample(s) drawn into {out_dir}')


if __name__ == '__main__':
    main()
