"""The paper's Table-5 models (VSSD-Micro ablation) side by side: params, FLOPs, training images/s,
and the training-speed ratios NC-SSD : SSD : Bi-SSD, all measured in one run.

    python -m benchmarks.ablation_speed [--configs A.py B.py ...] [--shape 224 224] [--batch-size 8]
                                       [--device cuda] [--amp] [--rounds 3] [--out-dir DIR]
"""
import argparse
import json
import os
import os.path as osp
import time

import torch

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import non_negative_int, positive_int
from vssd_mm.compat import filter_known_warnings

from benchmarks.support.ablation_study import speed_ratios, study, table5_configs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', help='default: the five Table-5 configs')
    parser.add_argument('--shape', type=positive_int, nargs=2, default=(224, 224),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=positive_int, default=8)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true',
                        help='autocast: fp16 on CUDA (the paper\'s setting), bf16 on CPU')
    parser.add_argument('--rounds', type=positive_int, default=3,
                        help='each round times every model once; the median is reported')
    parser.add_argument('--warmup', type=non_negative_int, default=1,
                        help='untimed steps per model and round')
    parser.add_argument('--iters', type=positive_int, default=3,
                        help='timed steps per model and round')
    parser.add_argument('--out-dir', default='work_dirs/benchmark',
                        help='where ablation_<time>.json goes')
    args = parser.parse_args(argv)
    filter_known_warnings()
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('error: --device cuda but no CUDA GPU is visible; use --device cpu')
    for path in args.configs or []:
        if not osp.isfile(path):
            raise SystemExit(f'error: config {path} does not exist')
    configs = args.configs or table5_configs()
    rows = study(configs, tuple(args.shape), args.batch_size, args.device, args.amp,
                 args.rounds, args.warmup, args.iters)
    device, precision = rows[0].device, rows[0].precision
    print(f'{device}, training step, {precision}, batch {args.batch_size} x 3 x {args.shape[0]} x '
          f'{args.shape[1]}, median of {args.rounds} rounds')
    print(f'{"row":44s} {"paper top-1":>11s} {"params M":>9s} {"FLOPs G":>8s} {"train img/s":>11s}')
    for r in rows:
        print(f'{r.label[:44]:44s} {r.paper_top1:>11s} {r.params / 1e6:9.2f} {r.flops / 1e9:8.3f} '
              f'{r.train_median:11.2f}')
    ratios = speed_ratios(rows)
    if ratios:
        print('training images/s, NC-SSD : SSD : Bi-SSD = ' +
              ' : '.join(f'{ratios[m]:.2f}' for m in ('NC-SSD', 'SSD', 'Bi-SSD')) +
              f'  (NC-SSD trains {1 / ratios["SSD"]:.2f}x as fast as SSD, '
              f'{1 / ratios["Bi-SSD"]:.2f}x as fast as Bi-SSD)')
    os.makedirs(args.out_dir, exist_ok=True)
    path = osp.join(args.out_dir, f'ablation_{time.strftime("%Y%m%d_%H%M%S")}.json')
    record = dict(device=device, precision=precision, shape=list(args.shape),
                  batch_size=args.batch_size, ratios=ratios,
                  rows=[dict(vars(r), train_median=r.train_median) for r in rows])
    with open(path, 'w') as f:
        json.dump(record, f, indent=1)
    print(f'written: {path}')


if __name__ == '__main__':
    reuse_large_blocks()  # this process only: see vssd_mm.allocator
    main()
