"""Compile every Triton NC-SSD kernel specialization VSSD launches for NVIDIA GPU targets, without
a GPU, and check the assembler's report: no spills, shared memory within the smallest supported
per-block limit, at least two resident blocks (or eight warps) per SM.

Usage: python tools/check_kernels.py [--arch 80 86 89 90] [--dtype fp16 bf16 fp32]
                                    [--kernel NAME ...] [--json FILE] [--jobs N]
Exit status: 0 all rows pass, 1 some row fails (the table says why), 2 the check cannot run here.
"""
import argparse
import json
import os
import sys
import time

# the kernels must be compiled, not interpreted: triton.jit reads this when kernels.py is imported
os.environ.pop('TRITON_INTERPRET', None)

from vssd_mm.ops.nc_ssd import compile_check, launch  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', type=int, nargs='+', default=sorted(compile_check.ARCHES),
                        choices=sorted(compile_check.ARCHES),
                        help='compute capabilities to compile for (default: all supported)')
    parser.add_argument('--dtype', nargs='+', default=list(compile_check.DTYPES),
                        choices=list(compile_check.DTYPES))
    parser.add_argument('--kernel', nargs='+', choices=sorted(launch.SETTINGS),
                        help='only these kernels (default: all)')
    parser.add_argument('--json', metavar='FILE', help='also write the rows as a JSON list')
    parser.add_argument('--jobs', type=int, help='compiler processes (default: one per CPU)')
    args = parser.parse_args(argv)

    problem = compile_check.toolchain_problem()
    if problem:
        print(f'check_kernels: cannot run here: {problem}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    reports = compile_check.check_kernels(args.arch, args.dtype, args.kernel, jobs=args.jobs)
    print(compile_check.format_table(reports))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(compile_check.report_rows(reports), f, indent=1)
    failed = [r for r in reports if r.problems()]
    print(f'\n{len(reports)} kernel specializations compiled for '
          f'{", ".join(f"sm_{a}" for a in args.arch)} in {time.perf_counter() - start:.0f} s: '
          f'{len(failed)} failed' + (f' (JSON: {args.json})' if args.json else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
