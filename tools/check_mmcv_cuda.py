"""What the installed mmcv's compiled ops were built with: the CUDA version, the GPU archs of the
device code inside its extension (read with cuobjdump) and whether RoIAlign's and NMS's CUDA
kernels are in it. Exit 1 when this machine wants CUDA ops (a visible GPU with a CUDA torch, or
VSSD_MM_CUDA_OPS=1, or --require-cuda) and the installed mmcv does not serve them.
Usage: python tools/check_mmcv_cuda.py [--require-cuda] [--cuobjdump-dir DIR]"""
import argparse
import os
from pathlib import Path

from vssd_mm.engine.mmcv_cuda import (build_misfit, find_cuobjdump,
                                      plan_for_this_machine, read_mmcv_build, report_lines)

# where tools/install.sh puts cuobjdump when the toolkit it builds with has none
CHECKOUT_CACHE = Path(__file__).resolve().parents[1] / '.cache' / 'cuda'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--require-cuda', action='store_true',
                        help='want CUDA ops even where no GPU is visible (as VSSD_MM_CUDA_OPS=1; '
                        'archs from TORCH_CUDA_ARCH_LIST)')
    parser.add_argument('--cuobjdump-dir', help='folder with cuobjdump (default: CUDA_HOME/bin, '
                        'PATH, or the one tools/install.sh installed)')
    args = parser.parse_args(argv)
    try:
        plan = plan_for_this_machine(require_cuda=args.require_cuda)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    extra = [args.cuobjdump_dir] if args.cuobjdump_dir else sorted(
        str(path.parent) for path in CHECKOUT_CACHE.glob('*/*/nvidia/*/bin/cuobjdump'))
    cuobjdump = find_cuobjdump(extra)
    try:
        build = read_mmcv_build(cuobjdump)
    except ImportError as err:
        raise SystemExit(f'error: mmcv\'s compiled ops do not import ({err}); '
                         'reinstall them: bash tools/install.sh') from None
    for line in report_lines(build, plan, cuobjdump):
        print(line)
    if plan.cuda_ops and build.cuda is not None and cuobjdump is None:
        raise SystemExit('error: no cuobjdump to read the device code with: pass '
                         '--cuobjdump-dir, or put CUDA\'s bin folder on PATH '
                         f'(VSSD_MM_CUDA_OPS=1 bash tools/install.sh installs one under '
                         f'{os.path.relpath(CHECKOUT_CACHE)})')
    return 1 if build_misfit(build, plan) else 0


if __name__ == '__main__':
    raise SystemExit(main())
