"""Benchmark the NC-SSD op at VSSD-T's shapes: the release's formulation, our PyTorch reference
and (on CUDA) the Triton kernels, side by side in one run. Prints a table of ratios; absolute
times and bandwidth only on a GPU, with its name.

Usage: python -m benchmarks.op_speed [--dtype float16] [--repeats 10] [--scale-batch 1.0]
"""
import argparse

import torch

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import positive_float, positive_int

from benchmarks.support.nc_ssd_timing import PEAK_GBPS, run


def peak_bandwidth(name: str, override):
    if override:
        return override
    return next((v for k, v in PEAK_GBPS.items() if k in name), None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dtype', default='float16', choices=['float32', 'float16', 'bfloat16'])
    parser.add_argument('--repeats', type=positive_int, default=10)
    parser.add_argument('--scale-batch', type=positive_float, default=1.0,
                        help='multiply the per-GPU batch sizes (e.g. 0.05 for a quick CPU run)')
    parser.add_argument('--peak-gbps', type=positive_float,
                        help='device HBM peak, GB/s (default: by name)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    on_gpu = args.device == 'cuda'
    name = torch.cuda.get_device_name() if on_gpu else 'CPU (relative timings only)'
    peak = peak_bandwidth(name, args.peak_gbps) if on_gpu else None
    rows = run(dtype, args.device, args.repeats, scale_batch=args.scale_batch)

    print(f'NC-SSD, VSSD-T shapes (P = N = 64), {args.dtype}, device: {name}')
    base = 'official'
    header = f'{"task":4s} {"input":9s} {"b":>4s} {"stg":>3s} {"L":>6s} {"H":>2s} {"pass":8s}'
    impls = sorted({r['impl'] for r in rows}, key=['official', 'reference', 'triton'].index)
    for impl in impls:
        header += f' {impl + " x":>13s}'
        if on_gpu:
            header += f' {impl + " ms":>13s} {"MiB":>7s}'
    if on_gpu and peak:
        header += f' {"triton %peak":>12s}'
    print(header + '\n' + '-' * len(header))
    keyed = {(r['task'], r['stage'], r['pass_'], r['impl']): r for r in rows}
    for r in rows:
        if r['impl'] != base:
            continue
        line = (f'{r["task"]:4s} {r["input"]:9s} {r["batch"]:>4d} {r["stage"]:>3d} {r["L"]:>6d} '
                f'{r["heads"]:>2d} {r["pass_"]:8s}')
        for impl in impls:
            cur = keyed[(r['task'], r['stage'], r['pass_'], impl)]
            line += f' {r["seconds"] / cur["seconds"]:>13.2f}'  # speed-up over the release
            if on_gpu:
                line += f' {cur["seconds"] * 1e3:>13.3f} {cur["peak_bytes"] / 2**20:>7.1f}'
        if on_gpu and peak and r['pass_'] == 'fwd':
            gbps = keyed[(r["task"], r["stage"], "fwd", "triton")]["gbps"]
            line += f' {100 * gbps / peak:>11.0f}%'
        print(line)
    print('"x" columns: speed-up over the official formulation measured in this run (higher is '
          'faster).' + (f' %peak: forward bytes moved / time vs {peak:.0f} GB/s.' if peak else ''))


if __name__ == '__main__':
    reuse_large_blocks()  # this process only: see vssd_mm.allocator
    main()
