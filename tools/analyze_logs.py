"""Plot training curves (losses, learning rate, validation metrics) from mmengine's JSON logs.

Also prints a summary: per run, the last loss and the best value of each validation metric, where.

Usage: python tools/analyze_logs.py WORK_DIR|JSON [WORK_DIR|JSON ...] [--keys KEY ...] [--out FILE]

A WORK_DIR stands for its newest run's vis_data/<run>.json; several inputs are several runs, one
line each in every subplot.
"""
import argparse

from vssd_mm.arguments import positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error
from vssd_mm.engine.paths import check_file_to_write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('logs', nargs='+', metavar='WORK_DIR|JSON',
                        help='a work dir (its newest run is read), a run folder, or a '
                        'vis_data/*.json file; several: one line per run')
    parser.add_argument('--keys', nargs='+', metavar='KEY',
                        help='the logged keys to plot, one subplot each (default: every loss '
                        'term, lr and every validation metric)')
    parser.add_argument('--out', default='curves.png', help='the PNG to write (default curves.png)')
    parser.add_argument('--size', type=positive_int, nargs=2, metavar=('W', 'H'),
                        help='picture size in pixels (default: 1200 wide, 300 per row of plots)')
    parser.add_argument('--columns', type=positive_int, default=3,
                        help='subplots per row (default 3)')
    return parser.parse_args(argv)


def main(argv=None):
    filter_known_warnings()
    with exit_on_error():
        args = parse_args(argv)
        check_file_to_write(args.out, '--out', ('.png',))
        from vssd_mm.visualization import training_curves as curves
        runs = [curves.read_log(path) for path in args.logs]
        keys = args.keys or curves.default_keys(runs)
        fig = curves.plot_curves(runs, keys, size=tuple(args.size or (1200, 0)),
                                 columns=args.columns)
        curves.save_figure(fig, args.out)
    print(curves.summary_table(runs, keys))
    print(f'curves of {len(keys)} key(s) from {len(runs)} run(s): {args.out}')


if __name__ == '__main__':
    main()
