"""Compile every Triton NC-SSD kernel specialization VSSD launches for NVIDIA GPU targets, without
a GPU, and check the assembler's report: no spills, shared memory within the smallest supported
per-block limit, at least two resident blocks (or eight warps) per SM.

Usage: python -m benchmarks.check_kernels [--arch 80 86 89 90] [--dtype fp16 bf16 fp32]
                                    [--kernel NAME ...] [--json FILE] [--markdown] [--jobs N]
       python -m benchmarks.check_kernels --loaded [--json FILE]    # on a GPU: the driver's report
Exit status: 0 all rows pass, 1 some row fails (the table says why), 2 the check cannot run here.
"""
import argparse
import json
import os
import sys
import time

# the kernels must be compiled, not interpreted: triton.jit reads this when kernels.py is imported
os.environ.pop('TRITON_INTERPRET', None)

from vssd_mm.arguments import positive_int

from benchmarks.support import compile_check, kernel_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', type=int, nargs='+', default=sorted(kernel_report.ARCHES),
                        choices=sorted(kernel_report.ARCHES),
                        help='compute capabilities to compile for (default: all supported)')
    parser.add_argument('--dtype', nargs='+', default=list(compile_check.DTYPES),
                        choices=list(compile_check.DTYPES))
    parser.add_argument('--kernel', nargs='+', choices=compile_check.kernel_names() or None,
                        help='only these kernels (default: all)')
    parser.add_argument('--json', metavar='FILE', help='also write the rows as a JSON list')
    parser.add_argument('--loaded', action='store_true',
                        help='on a CUDA GPU: run the kernels once per operand class and report '
                        'what the driver says of each loaded kernel (any Triton version)')
    parser.add_argument('--markdown', action='store_true',
                        help='print a Markdown table, one column per architecture')
    parser.add_argument('--jobs', type=positive_int,
                        help='compiler processes (default: one per CPU)')
    args = parser.parse_args(argv)

    if args.loaded:
        import torch
        if not torch.cuda.is_available():
            print('check_kernels: --loaded needs a CUDA GPU; without one, compile ahead of time '
                  '(no --loaded)', file=sys.stderr)
            return 2
        print(f'{torch.cuda.get_device_name()}: the kernels as the driver loaded them')
        return report(compile_check.loaded_kernel_reports(), args, 'loaded kernels')
    problem = compile_check.toolchain_problem()
    if problem:
        print(f'check_kernels: cannot run here: {problem}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    reports = compile_check.check_kernels(args.arch, args.dtype, args.kernel, jobs=args.jobs)
    return report(reports, args, f'kernel specializations compiled for '
                  f'{", ".join(f"sm_{a}" for a in args.arch)} in '
                  f'{time.perf_counter() - start:.0f} s')


def report(reports, args, what: str) -> int:
    """Print the table (and write the JSON); 1 if any row fails, else 0."""
    print(kernel_report.format_markdown(reports) if args.markdown
          else kernel_report.format_table(reports))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(kernel_report.report_rows(reports), f, indent=1)
    failed = [r for r in reports if r.problems()]
    print(f'\n{len(reports)} {what}: {len(failed)} failed'
          + (f' (JSON: {args.json})' if args.json else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
