"""Check a config's datasets before training: images exist and decode, category names against
the config's classes, annotations the pipeline can read, label maps (segmentation), class folders
(classification). Prints a table of counts and one line per problem; exit status 1 on any.

Usage: python tools/check_dataset.py CONFIG [--split train|val|test|all] [--full]
"""
import argparse
import sys

from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cli import add_common_arguments
from vssd_mm.engine.data_check import check_data


def progress(items, what):
    """The items, with mmengine's progress bar on stderr (on a terminal; else one line) while
    they are consumed."""
    from mmengine.utils import ProgressBar
    items = list(items)
    print(f'{what}: {len(items)}', file=sys.stderr)
    if not sys.stderr.isatty():
        yield from items
        return
    bar = ProgressBar(len(items), file=sys.stderr)
    for item in items:
        yield item
        bar.update()
    print(file=sys.stderr)


def main(argv=None) -> int:
    filter_known_warnings()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--split', choices=['train', 'val', 'test', 'all'], default='all')
    parser.add_argument('--full', action='store_true',
                        help='decode every image and label map (default: a sample of 16)')
    add_common_arguments(parser)
    with exit_on_error():
        args = parser.parse_args(argv)
        cfg = load_config(args.config, args.cfg_options)
        splits = ('train', 'val', 'test') if args.split == 'all' else (args.split,)
        report = check_data(cfg, splits, full=args.full, progress=progress)
    print(report.table())
    for note in report.notes:
        print(f'note: {note}')
    for problem in report.problems:
        print(f'problem: {problem.line()}')
    print(f'{len(report.problems)} problem(s)' if report.problems else 'no problems found')
    return 1 if report.problems else 0


if __name__ == '__main__':
    raise SystemExit(main())
