"""Inference and training throughput (images/s) and peak memory of a config's model, with and
without AMP, on CPU or CUDA; with --compile / --onnxruntime also with the backbone through
torch.compile / in onnxruntime, measured in the same run. Prints a table (ratios to the eager
rows) and writes it as JSON and a PNG bar chart.

    python -m benchmarks.model_speed CONFIG [--shape H W] [--batch-size N] [--device cuda]
                                     [--amp both] [--compile [--compile-backend B]]
                                     [--onnxruntime]
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
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cli import add_common_arguments

from benchmarks.support.throughput import check_backbone_path, measure, plot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=positive_int, nargs=2, default=(224, 224),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=positive_int, default=8)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', choices=['off', 'on', 'both'], default='both',
                        help='autocast: fp16 on CUDA, bf16 on CPU (slow without bf16 hardware)')
    parser.add_argument('--modes', nargs='+', choices=['inference', 'training'],
                        default=['inference', 'training'])
    parser.add_argument('--warmup', type=non_negative_int, default=3, help='untimed batches first')
    parser.add_argument('--iters', type=positive_int, default=10, help='timed batches')
    parser.add_argument('--compile', action='store_true',
                        help='also time the model with its backbone under torch.compile '
                        '(compiled during the warmup)')
    parser.add_argument('--compile-backend', default='inductor', metavar='B',
                        help="torch.compile's backend for --compile, e.g. aot_eager "
                        '(default: %(default)s)')
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also time inference with the backbone exported to ONNX and run by '
                        'onnxruntime (CPU, fp32; needs the [deploy] extra)')
    parser.add_argument('--out-dir', default='work_dirs/benchmark',
                        help='where <config>_<time>.json and .png go')
    add_common_arguments(parser)
    with exit_on_error():  # a --cfg-options mistake
        args = parser.parse_args(argv)
    filter_known_warnings()
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('error: --device cuda but no CUDA GPU is visible; use --device cpu')
    amps = {'off': [False], 'on': [True], 'both': [False, True]}[args.amp]
    runs = [(amp, 'eager', args.modes) for amp in amps]
    if args.compile:
        # listing the backends imports torch._dynamo (~1 s): only when compiling
        known = {*torch.compiler.list_backends(), 'eager', 'aot_eager'}
        if args.compile_backend not in known:
            parser.error(f'--compile-backend {args.compile_backend!r}: choose one of '
                         f'{", ".join(sorted(known))}')
        runs += [(amp, 'compile', args.modes) for amp in amps]
    if args.onnxruntime:
        if 'inference' not in args.modes:
            parser.error('--onnxruntime times inference: include it in --modes')
        runs.append((False, 'onnxruntime', ['inference']))
    try:
        for amp, backbone, modes in runs:
            check_backbone_path(backbone, args.device, amp, modes, args.warmup)
    except ValueError as error:
        parser.error(f'--{backbone}: {error}')
    with exit_on_error():
        cfg = load_config(args.config, args.cfg_options)
    rows = []
    for amp, backbone, modes in runs:
        rows += measure(cfg, tuple(args.shape), args.batch_size, args.device, amp, modes,
                        args.warmup, args.iters, backbone, args.compile_backend)
    eager = {(r.mode, r.precision): r.ms_per_batch for r in rows if r.backbone == 'eager'}
    print(f'{rows[0].device}, input {args.batch_size} x 3 x {args.shape[0]} x {args.shape[1]}')
    print(f'{"mode":10s} {"precision":14s} {"backbone":12s} {"images/s":>10s} {"ms/batch":>10s} '
          f'{"x eager":>8s} {"peak MiB":>10s}')
    for r in rows:
        ratio = r.ms_per_batch / eager[r.mode, r.precision]
        print(f'{r.mode:10s} {r.precision:14s} {r.backbone:12s} {r.images_per_s:10.1f} '
              f'{r.ms_per_batch:10.1f} {ratio:8.2f} {r.peak_memory_mib:10.0f}')
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, f'{osp.splitext(osp.basename(args.config))[0]}_'
                    f'{time.strftime("%Y%m%d_%H%M%S")}')  # a new pair per run, nothing overwritten
    record = dict(config=args.config, shape=list(args.shape), rows=[r.as_dict() for r in rows])
    if args.compile:
        record['compile_backend'] = args.compile_backend
    with open(f'{stem}.json', 'w') as f:
        json.dump(record, f, indent=1)
    plot(rows, f'{stem}.png', f'{osp.basename(args.config)} - {rows[0].device}')
    print(f'written: {stem}.json, {stem}.png')


if __name__ == '__main__':
    reuse_large_blocks()  # this process only: see vssd_mm.allocator
    main()
