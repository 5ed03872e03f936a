"""The main job's training step on one device: Mask R-CNN (2 x 1344x800) and UperNet (2 x 512^2)
with VSSD-T against mmdet's / mmseg's Swin-T, in fp32, fp16 AMP and bf16 AMP (AmpOptimWrapper, as
tools/train.py --amp), VSSD with each NC-SSD backend. Random init, synthetic batches with boxes,
masks and label maps. Prints a table (images/s from the median of the last iterations, peak memory,
finite losses, and for backend 'auto' whether NC-SSD fell back to the PyTorch reference: the
process gave up the kernels, or calls they cannot serve ran the reference), the VSSD/Swin ratios
and, with --profile-steps, the kernels that take the time. The JSON has the same per run, plus the
process's fallbacks (``dispatch.fallbacks()``).

    python -m benchmarks.main_job_speed [--tasks mask_rcnn upernet] [--precisions fp32 fp16 bf16]
        [--backends triton torch auto] [--iters 30 --timed 20] [--profile-steps 3] [--out-dir DIR]
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import non_negative_int
from vssd_mm.compat import filter_known_warnings

from benchmarks.support.main_job import PRECISIONS, nc_ssd_fallbacks, ratio_table, train_run
SHAPES = {'mask_rcnn': (800, 1344), 'upernet': (512, 512)}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(SHAPES), default=sorted(SHAPES))
    parser.add_argument('--precisions', nargs='+', choices=list(PRECISIONS),
                        default=list(PRECISIONS))
    parser.add_argument('--backends', nargs='+', choices=['triton', 'torch', 'auto'],
                        default=['triton', 'torch'],
                        help='NC-SSD backends of the VSSD rows: auto (what a user runs) falls '
                        'back to the reference where the kernels fail, and says so in the table')
    parser.add_argument('--batch-size', type=positive, default=2)
    parser.add_argument('--iters', type=positive, default=30, help='training iterations per row')
    parser.add_argument('--timed', type=positive, default=20,
                        help='the last iterations whose median is reported')
    parser.add_argument('--det-shape', type=positive, nargs=2, default=SHAPES['mask_rcnn'],
                        metavar=('H', 'W'))
    parser.add_argument('--seg-shape', type=positive, nargs=2, default=SHAPES['upernet'],
                        metavar=('H', 'W'))
    parser.add_argument('--profile-steps', type=non_negative_int, default=0,
                        help='profile this many further steps of each VSSD fp16 row (first '
                        'backend): the kernels that take the time')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out-dir', default='work_dirs/main_job_speed')
    args = parser.parse_args(argv)
    if args.timed > args.iters:
        parser.error(f'--timed {args.timed} is more than --iters {args.iters}')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda but no CUDA GPU is visible; use --device cpu')
    if args.device == 'cpu' and set(args.precisions) - {'fp32'}:
        parser.error('AMP (fp16, bf16) is measured on CUDA only: --precisions fp32 on the CPU')
    if args.device == 'cpu' and 'triton' in args.backends:
        parser.error('the Triton NC-SSD kernels run on CUDA only: --backends torch on the CPU')
    filter_known_warnings()
    shapes = {'mask_rcnn': tuple(args.det_shape), 'upernet': tuple(args.seg_shape)}
    runs, profiles = [], {}
    header = (f'{"task":9s} {"backbone":8s} {"prec":4s} {"NC-SSD":6s} {"img/s":>7s} '
              f'{"ms/iter":>8s} {"peak MiB":>9s} {"finite":>6s} {"last loss":>9s} fallback')
    print(header, flush=True)
    for task in args.tasks:
        for precision in args.precisions:
            rows = [('Swin-T', '-')] + [('VSSD-T', backend) for backend in args.backends]
            for backbone, backend in rows:
                profile_steps = args.profile_steps if (
                    backbone == 'VSSD-T' and precision == 'fp16'
                    and backend == args.backends[0]) else 0
                run, profile = train_run(task, backbone, precision, shapes[task],
                                         args.batch_size, args.iters, args.timed,
                                         backend if backend != '-' else 'auto', args.device,
                                         profile_steps)
                runs.append(run)
                if profile:
                    profiles[f'{task} {backbone} {precision} {backend}'] = profile
                finite = 'yes' if run.losses_finite else f'NO@{run.first_nonfinite}'
                print(f'{task:9s} {backbone:8s} {precision:4s} {run.nc_ssd_backend:6s} '
                      f'{run.images_per_s:7.2f} {run.ms_per_iter:8.1f} '
                      f'{run.peak_memory_mib:9.0f} {finite:>6s} {run.last_loss:9.3f} '
                      f'{run.nc_ssd_fallback}', flush=True)
    print(f'\n{runs[0].device}; torch {torch.__version__}; batch {args.batch_size}; '
          f'median of the last {args.timed} of {args.iters} iterations')
    for line in ratio_table(runs):
        print(line)
    for name, table in profiles.items():
        print(f'\nprofile of {args.profile_steps} training steps, {name}:\n{table}')
    os.makedirs(args.out_dir, exist_ok=True)
    path = Path(args.out_dir) / f'main_job_{time.strftime("%Y%m%d_%H%M%S")}.json'
    path.write_text(json.dumps(dict(runs=[r.as_dict() for r in runs], profiles=profiles,
                                    nc_ssd_fallbacks=nc_ssd_fallbacks()), indent=1))
    print(f'written: {path}')
    return 0 if all(r.losses_finite for r in runs) else 1


if __name__ == '__main__':
    reuse_large_blocks()  # this process only: see vssd_mm.allocator
    raise SystemExit(main())
