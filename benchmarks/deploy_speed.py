"""VSSD backbone on the CPU along the deployment paths, side by side in one run: the release's
forward (its layout and NC-SSD formulation, same weights), eager vssd_mm, torch.compile (Inductor)
and onnxruntime; ms per batch (median of rounds) and the ratio to the release (lower is faster).

    python -m benchmarks.deploy_speed [--arch tiny] [--shape 512 512] [--threads 2]
                                     [--paths release eager compile onnxruntime] [--iters 3]
                                     [--rounds 3]
"""
import argparse

import torch

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import non_negative_int, positive_int
from vssd_mm.compat import filter_known_warnings

from benchmarks.support.deploy_paths import PATHS, measure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='tiny', choices=['micro', 'tiny', 'small', 'base'])
    parser.add_argument('--shape', type=positive_int, nargs=2, default=(512, 512),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=positive_int, default=1)
    parser.add_argument('--threads', type=positive_int, default=2,
                        help='torch (and onnxruntime) threads')
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--warmup', type=non_negative_int, default=1)
    parser.add_argument('--iters', type=positive_int, default=3,
                        help='timed batches per path and round')
    parser.add_argument('--rounds', type=positive_int, default=3,
                        help='each round times every path once; rows are medians of rounds')
    args = parser.parse_args(argv)
    filter_known_warnings()
    if 'release' not in args.paths:
        parser.error('--paths must include release (the ratios are to it)')
    torch.set_num_threads(args.threads)
    rows = measure(args.arch, args.shape, args.batch_size, args.paths, args.warmup, args.iters,
                   args.rounds)
    print(f'VSSD-{args.arch} backbone, {args.batch_size} x 3 x {args.shape[0]} x {args.shape[1]}, '
          f'CPU, {args.threads} threads, torch {torch.__version__}, median of {args.rounds} rounds')
    print(f'{"path":12s} {"mode":10s} {"ms/batch":>10s} {"x release":>10s}  rounds (ms)')
    for r in sorted(rows, key=lambda r: (r.mode, PATHS.index(r.path))):
        print(f'{r.path:12s} {r.mode:10s} {r.ms:10.0f} {r.ratio:10.2f}  '
              + ' / '.join(f'{ms:.0f}' for ms in r.rounds))


if __name__ == '__main__':
    reuse_large_blocks()  # this process only: see vssd_mm.allocator
    main()
