"""Time every candidate launch setting of the NC-SSD kernels on this GPU (VSSD-T stage 0 at
detection and classification sizes) and print, per kernel and operand class, the measured winner
next to the setting in use (vssd_mm/ops/nc_ssd/launch.py SETTINGS).

    python -m benchmarks.tune_kernels [--kernel apply ...] [--class half ...] [--json FILE]
"""
import argparse
import json
import sys

import torch

from vssd_mm.ops.nc_ssd import launch

from benchmarks.support import tuning


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kernel', nargs='+', choices=tuning.KERNELS, default=tuning.KERNELS)
    parser.add_argument('--class', dest='classes', nargs='+', choices=list(tuning.CLASS_INPUTS),
                        default=list(tuning.CLASS_INPUTS))
    parser.add_argument('--json', help='also write every row here')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print('tune_kernels: needs a CUDA GPU (timings of real launches)', file=sys.stderr)
        return 2
    print(f'device: {torch.cuda.get_device_name()}')
    print(f'{"kernel":9s} {"class":6s} {"shape":10s} {"block_l":>7s} {"warps":>5s} {"stages":>6s} '
          f'{"ms":>8s} {"GB/s":>7s} {"regs":>4s} {"spill":>5s}')
    rows = []
    for cls in args.classes:
        for kernel in args.kernel:
            for r in tuning.measure(kernel, cls):
                s = r['settings']
                head = (f'{kernel:9s} {cls:6s} {r["shape"]:10s} {s.block_l:>7d} {s.num_warps:>5d} '
                        f'{s.num_stages:>6d}')
                print(head + (f' error: {r["error"]}' if 'error' in r else
                              f' {r["ms"]:8.3f} {r["gbps"]:7.0f} {r["regs"]:>4d} '
                              f'{r["spills"]:>5d}'), flush=True)
                rows.append(r)
    print('\nwinner (least total ms over the shapes, no spills) vs the setting in use:')
    for (kernel, cls), s in sorted(tuning.best(rows).items()):
        used = launch.SETTINGS[kernel][cls]
        print(f'{kernel:9s} {cls:6s} best {s} | in use {used}'
              + ('' if s == used else '  <- differs'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([dict(r, settings=r['settings'].__dict__) for r in rows], f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
