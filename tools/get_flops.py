"""Parameters and FLOPs (multiply-adds) of the model of a config, NC-SSD counted exactly and as
the paper counted it. Usage: python tools/get_flops.py CONFIG [--shape H W]"""
import argparse

from vssd_mm.arguments import positive_int
from vssd_mm.analysis.complexity import analyze_config
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cli import add_common_arguments

DEFAULT_SHAPES = {'mmpretrain': (224, 224), 'mmdet': (800, 1280), 'mmseg': (512, 2048)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=positive_int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: the one the paper reports for the task: '
                        'classification 224x224, detection 800x1280, segmentation 512x2048)')
    add_common_arguments(parser)
    with exit_on_error():  # a --cfg-options mistake, a missing config
        args = parser.parse_args(argv)
        cfg = load_config(args.config, args.cfg_options)
    filter_known_warnings()
    shape = tuple(args.shape or DEFAULT_SHAPES.get(cfg.get('default_scope'), (224, 224)))
    if min(shape) < 32:
        raise SystemExit(f'error: --shape must be at least 32x32, got {shape}')
    c = analyze_config(cfg, shape)
    g = 1e9
    print(f'config   {args.config}')
    print(f'input    1 x 3 x {shape[0]} x {shape[1]}')
    print(f'params   {c.params / 1e6:.2f} M' + (
        f' ({c.inference_params / 1e6:.2f} M without the auxiliary head)'
        if c.inference_params != c.params else ''))
    print(f'FLOPs    {c.flops / g:.3f} G  (NC-SSD counted over all heads)')
    print(f'FLOPs    {c.flops_published / g:.3f} G  (as published: the release\'s fvcore count '
          'missed the NC-SSD head factor)')
    print(f'\n{"part":28s} {"exact G":>10s} {"published G":>12s}')
    for name, (exact, published) in c.by_part.items():
        print(f'{name:28s} {exact / g:10.3f} {published / g:12.3f}')


if __name__ == '__main__':
    main()
