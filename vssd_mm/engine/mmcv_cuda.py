"""Whether mmcv's compiled ops serve this machine's GPUs.

One module for three users: ``tools/install.sh`` (which mmcv to keep, which to build),
``tools/check_mmcv_cuda.py`` (the report) and ``tools/train.py`` / ``tools/test.py`` (the check
before a Runner puts a model with mmcv ops on a GPU). mmcv's own build compiles CUDA ops only when
torch sees a GPU or ``FORCE_CUDA=1``, and its CPU-only ops import without complaint: the first sign
of a CPU-only mmcv on a GPU machine is otherwise a traceback from RoIAlign on the first batch.

Standard library only at import time (torch and mmcv are imported where needed) and no relative
imports: ``tools/install.sh`` runs this file by path before vssd_mm is installed.
"""
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, List, Optional, Sequence, Tuple

# TORCH_CUDA_ARCH_LIST's default when neither it nor a visible GPU says otherwise: Ampere to
# Hopper, plus PTX of the newest for GPUs after it.
DEFAULT_ARCHS = ('8.0', '8.6', '8.9', '9.0+PTX')
# the device kernels Mask R-CNN cannot train without: op -> kernel function name
REQUIRED_KERNELS = {'RoIAlign': 'roi_align_forward_cuda_kernel', 'NMS': 'nms_cuda'}
ENV_SWITCH = 'VSSD_MM_CUDA_OPS'


class MmcvCudaOpsError(RuntimeError):
    """mmcv's compiled ops cannot serve the CUDA run or build asked for."""


@dataclass(frozen=True)
class MmcvBuild:
    """What an mmcv's compiled ops were built with.

    Args:
        version: mmcv's version, e.g. ``'2.1.0'``.
        cuda: the CUDA version its ops were compiled with (``'13.0'``), None for CPU-only ops.
        sass: GPU archs with device code (SASS) in the extension, as ``sm`` numbers (80, 90).
        ptx: GPU archs with PTX (JIT-compiled for newer GPUs).
        kernels: which of ``REQUIRED_KERNELS`` have device code.
    """
    version: str
    cuda: Optional[str]
    sass: FrozenSet[int] = frozenset()
    ptx: FrozenSet[int] = frozenset()
    kernels: FrozenSet[str] = frozenset()

    def describe(self) -> str:
        if self.cuda is None:
            return f'mmcv {self.version} (CPU-only ops)'
        archs = ', '.join([f'sm_{sm}' for sm in sorted(self.sass)]
                          + [f'compute_{sm} (PTX)' for sm in sorted(self.ptx)]) or 'archs unknown'
        return f'mmcv {self.version} (CUDA {self.cuda} ops: {archs})'


@dataclass(frozen=True)
class CudaOpsPlan:
    """What the installer wants of mmcv: CUDA ops (for ``archs``, with torch's CUDA ``cuda``),
    CPU-only ops (``cuda_ops`` False and ``forced``), or whatever loads (neither)."""
    cuda_ops: bool
    forced: bool
    cuda: Optional[str] = None
    archs: Tuple[str, ...] = field(default_factory=tuple)

    def line(self) -> str:
        """One shell-readable line: ``cuda 13.0 8.0;9.0``, ``cpu`` or ``any``."""
        if self.cuda_ops:
            return f'cuda {self.cuda} {";".join(self.archs)}'
        return 'cpu' if self.forced else 'any'


def parse_arch_list(text: str) -> Tuple[str, ...]:
    """``TORCH_CUDA_ARCH_LIST`` (``'8.0;9.0+PTX'``, spaces also separate) as ``('8.0', '9.0+PTX')``.
    Raises ValueError naming an entry that is not ``MAJOR.MINOR[+PTX]``."""
    archs = tuple(part for part in re.split(r'[;\s]+', text.strip()) if part)
    for arch in archs:
        if not re.fullmatch(r'\d+\.\d+(\+PTX)?', arch):
            raise ValueError(f'TORCH_CUDA_ARCH_LIST entry {arch!r} is not MAJOR.MINOR or '
                             'MAJOR.MINOR+PTX (e.g. "8.0;9.0+PTX")')
    if not archs:
        raise ValueError('TORCH_CUDA_ARCH_LIST is set but empty; unset it or name the archs, '
                         'e.g. "8.0;9.0"')
    return archs


def sm_number(arch: str) -> int:
    """``'8.6'`` or ``'8.6+PTX'`` -> 86."""
    major, minor = arch.split('+')[0].split('.')
    return int(major) * 10 + int(minor)


def plan_cuda_ops(torch_cuda: Optional[str], capabilities: Sequence[Tuple[int, int]],
                  env_switch: Optional[str], env_arch_list: Optional[str]) -> CudaOpsPlan:
    """Decide what the installer wants of mmcv's ops.

    Args:
        torch_cuda: ``torch.version.cuda`` (None for a CPU-only torch).
        capabilities: compute capabilities of the visible GPUs, e.g. ``[(9, 0)]``; empty if none.
        env_switch: ``VSSD_MM_CUDA_OPS``: ``'1'`` wants CUDA ops, ``'0'`` CPU-only ops; unset or
            empty: CUDA ops when torch is a CUDA build and a GPU is visible.
        env_arch_list: ``TORCH_CUDA_ARCH_LIST``; else the visible GPUs' archs; else
            ``DEFAULT_ARCHS``.

    Raises ValueError for a switch value other than 0/1, for CUDA ops asked of a CPU-only torch and
    for a malformed arch list.
    """
    switch = (env_switch or '').strip()
    if switch not in ('', '0', '1'):
        raise ValueError(f'{ENV_SWITCH}={env_switch!r}: use 1 (build CUDA ops), 0 (CPU-only ops) '
                         'or leave it unset (CUDA ops when a GPU is visible)')
    if switch == '0':
        return CudaOpsPlan(cuda_ops=False, forced=True)
    if switch == '1' and not torch_cuda:
        raise ValueError(f'{ENV_SWITCH}=1 but the installed torch is a CPU-only build '
                         '(torch.version.cuda is None); install a CUDA build of torch first')
    if switch == '' and not (torch_cuda and capabilities):
        return CudaOpsPlan(cuda_ops=False, forced=False)
    if env_arch_list and env_arch_list.strip():
        archs = parse_arch_list(env_arch_list)
    elif capabilities:
        archs = tuple(sorted({f'{major}.{minor}' for major, minor in capabilities}))
    else:
        archs = DEFAULT_ARCHS
    return CudaOpsPlan(cuda_ops=True, forced=switch == '1', cuda=torch_cuda, archs=archs)


def build_misfit(build: MmcvBuild, plan: CudaOpsPlan) -> Optional[str]:
    """Why ``build`` does not serve ``plan`` (one phrase), or None when it does."""
    if not plan.cuda_ops:
        if plan.forced and build.cuda is not None:
            return f'it has CUDA ops and {ENV_SWITCH}=0 asks for CPU-only ops'
        return None
    if build.cuda is None:
        return 'its ops are CPU-only (compiled without CUDA)'
    if build.cuda.split('.')[0] != (plan.cuda or '').split('.')[0]:
        return f'its ops were compiled with CUDA {build.cuda}, torch uses CUDA {plan.cuda}'
    if not (build.sass or build.ptx):  # device code not read (no cuobjdump)
        return 'its device code could not be read (no cuobjdump)' if plan.archs else None
    missing = [arch for arch in plan.archs if sm_number(arch) not in build.sass
               or (arch.endswith('+PTX') and sm_number(arch) not in build.ptx)]
    if missing:
        return f'it has no device code for {", ".join(missing)}'
    absent = sorted(set(REQUIRED_KERNELS) - build.kernels)
    if absent:
        return f'its extension lacks the CUDA kernels of {", ".join(absent)}'
    return None


# ------------------------------------------------------------------ reading a compiled extension
def find_cuobjdump(extra_dirs: Sequence[str] = ()) -> Optional[str]:
    """``cuobjdump`` from ``extra_dirs``, ``$CUDA_HOME/bin`` or PATH; None if there is none."""
    dirs = list(extra_dirs) + [os.path.join(os.environ[var], 'bin')
                               for var in ('CUDA_HOME', 'CUDA_PATH') if os.environ.get(var)]
    for folder in dirs:
        candidate = os.path.join(folder, 'cuobjdump')
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which('cuobjdump')


def device_code(library: str, cuobjdump: str) -> Tuple[FrozenSet[int], FrozenSet[int], str]:
    """(SASS archs, PTX archs, kernel symbols as text) of the device code inside a shared
    library, read with ``cuobjdump``. A library without device code gives empty sets."""
    def run(*args: str) -> str:
        proc = subprocess.run([cuobjdump, *args, library], capture_output=True, text=True)
        # cuobjdump exits 255 with 'does not contain device code' for a host-only library
        return proc.stdout if proc.returncode == 0 else ''
    sass = frozenset(int(sm) for sm in re.findall(r'\.sm_(\d+)\.cubin', run('--list-elf')))
    ptx = frozenset(int(sm) for sm in re.findall(r'\.sm_(\d+)\.ptx', run('--list-ptx')))
    return sass, ptx, run('--dump-elf-symbols') if sass else ''


def read_mmcv_build(cuobjdump: Optional[str] = None) -> MmcvBuild:
    """What the installed mmcv's ops were built with. Device code is read only where a
    ``cuobjdump`` is given; without one, ``sass``, ``ptx`` and ``kernels`` stay empty (and
    ``build_misfit`` then judges the CUDA version alone, unless archs are wanted).
    Raises ImportError when mmcv or its compiled ops do not import."""
    import mmcv
    from mmcv.ops import get_compiling_cuda_version
    compiled = get_compiling_cuda_version()
    cuda = None if compiled in ('', 'not available') else compiled
    if cuda is None or cuobjdump is None:
        return MmcvBuild(mmcv.__version__, cuda)
    import importlib.util
    sass, ptx, symbols = device_code(importlib.util.find_spec('mmcv._ext').origin, cuobjdump)
    return MmcvBuild(mmcv.__version__, cuda, sass, ptx, required_kernels_in(symbols))


def required_kernels_in(symbols: str) -> FrozenSet[str]:
    """Which ops of ``REQUIRED_KERNELS`` have a kernel among ``symbols`` (cuobjdump's dump of
    device symbols). A mangled name holds the function's name behind its length ('8nms_cuda'), so
    a file-name prefix inside another kernel's internal name ('..._nms_cuda_cu_...') does not
    count."""
    return frozenset(name for name, function in REQUIRED_KERNELS.items()
                     if f'{len(function)}{function}' in symbols)


def report_lines(build: MmcvBuild, plan: CudaOpsPlan, cuobjdump: Optional[str]) -> List[str]:
    """tools/check_mmcv_cuda.py's report of ``build`` against what this machine wants."""
    import mmcv
    import torch
    lines = [f'mmcv {build.version} at {os.path.dirname(mmcv.__file__)}',
             f'  ops compiled with CUDA: {build.cuda or "no (CPU-only ops)"} '
             f'(torch {torch.__version__}: CUDA {torch.version.cuda or "none"})']
    if build.cuda is not None:
        if cuobjdump is None:
            lines.append('  device code: not read (no cuobjdump)')
        else:
            lines += [f'  device code (SASS): {", ".join(f"sm_{sm}" for sm in sorted(build.sass))}'
                      f' | PTX: {", ".join(f"compute_{sm}" for sm in sorted(build.ptx)) or "none"}',
                      *(f'  {name} CUDA kernel ({symbol}): '
                        f'{"yes" if name in build.kernels else "MISSING"}'
                        for name, symbol in REQUIRED_KERNELS.items()),
                      f'  (read with {cuobjdump})']
    reason = build_misfit(build, plan)
    wanted = (f'CUDA ops for {", ".join(plan.archs)}' if plan.cuda_ops else
              'CPU-only ops' if plan.forced else 'any ops (no GPU visible)')
    lines.append(f'this machine wants {wanted}: ' + (f'NOT served, {reason}' if reason else 'ok'))
    return lines


def plan_for_this_machine(require_cuda: bool = False) -> CudaOpsPlan:
    """``plan_cuda_ops`` with this machine's torch, GPUs and environment (``require_cuda``: as if
    ``VSSD_MM_CUDA_OPS=1``)."""
    import torch
    capabilities = [torch.cuda.get_device_capability(i)
                    for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return plan_cuda_ops(torch.version.cuda, capabilities,
                         '1' if require_cuda else os.environ.get(ENV_SWITCH),
                         os.environ.get('TORCH_CUDA_ARCH_LIST'))


# ------------------------------------------------------------------ the check before a run
REBUILD_COMMAND = f'{ENV_SWITCH}=1 bash tools/install.sh'


def mmcv_op_users(model) -> List[str]:
    """Names of the model's layers that are mmcv ops (RoIAlign, ...) plus ``'nms'`` when a
    test config asks for mmcv's NMS."""
    users = sorted({type(module).__name__ for module in model.modules()
                    if type(module).__module__.startswith('mmcv.ops')})
    test_cfg = getattr(model, 'test_cfg', None) or {}
    if 'nms' in repr(dict(test_cfg)) or any('nms' in repr(getattr(m, 'test_cfg', None) or '')
                                            for m in model.modules()):
        users.append('nms')
    return users


def runs_on_cuda() -> bool:
    """Whether a Runner built now puts the model on a GPU (mmengine's ``get_device``: whenever
    torch sees one)."""
    import torch
    return torch.cuda.is_available()


def check_mmcv_cuda_ops(model) -> None:
    """Before a Runner puts ``model`` on a GPU: raise ``MmcvCudaOpsError`` (one line: which mmcv,
    what its ops lack, the command that rebuilds them) when the model uses mmcv ops and mmcv's
    ops were compiled without CUDA or for another CUDA major than torch's. Nothing to check when
    the run stays on the CPU (``runs_on_cuda``)."""
    import torch
    if not runs_on_cuda():
        return
    users = mmcv_op_users(model)
    if not users:
        return
    import mmcv
    build = read_mmcv_build()
    plan = CudaOpsPlan(cuda_ops=True, forced=False, cuda=torch.version.cuda)
    reason = build_misfit(build, plan)
    if reason:
        where = os.path.dirname(mmcv.__file__)
        raise MmcvCudaOpsError(
            f'mmcv {build.version} at {where}: {reason}, and this run puts a model that uses '
            f'mmcv ops ({", ".join(users)}) on the GPU. Rebuild them: {REBUILD_COMMAND} '
            f"(or run on the CPU: CUDA_VISIBLE_DEVICES='')")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """tools/install.sh's questions, one per call:
    ``plan``: this machine's plan line; ``accepts PLAN [CUOBJDUMP_DIR]``: exit 0 when the installed
    mmcv serves PLAN, else print why and exit 1; ``build-id PLAN``: the folder a wheel built for
    PLAN is kept under; ``cached PLAN WHEELS_DIR``: the kept wheels that may serve PLAN."""
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ('', [])
    try:
        if command == 'plan' and not rest:
            print(plan_for_this_machine().line())
            return 0
        if command == 'build-id' and len(rest) == 1:
            print(build_id(plan_from_line(rest[0])))
            return 0
        if command == 'cached' and len(rest) == 2:
            for wheel in cached_wheels(plan_from_line(rest[0]), Path(rest[1])):
                print(wheel)
            return 0
        if command == 'accepts' and len(rest) in (1, 2):
            plan = plan_from_line(rest[0])
            build = read_mmcv_build(find_cuobjdump(rest[1:]) if plan.cuda_ops else None)
            reason = build_misfit(build, plan)
            print(f'{build.describe()}: {reason}' if reason else build.describe())
            return 1 if reason else 0
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print('usage: mmcv_cuda.py plan | accepts PLAN [CUOBJDUMP_DIR] | build-id PLAN | '
          'cached PLAN WHEELS_DIR', file=sys.stderr)
    return 2


def plan_from_line(line: str) -> CudaOpsPlan:
    """The inverse of ``CudaOpsPlan.line``."""
    words = line.split()
    if words[:1] == ['cuda'] and len(words) == 3:
        return CudaOpsPlan(True, True, words[1], parse_arch_list(words[2]))
    if words in (['cpu'], ['any']):
        return CudaOpsPlan(False, words == ['cpu'])
    raise ValueError(f'not a plan line: {line!r}')


def build_id(plan: CudaOpsPlan) -> str:
    """Folder name under ``.cache/wheels`` for wheels built for ``plan``: ``cpu`` or e.g.
    ``cu13.0-sm80-sm90+ptx``, so a CPU-only and a CUDA build never stand in for each other."""
    if not plan.cuda_ops:
        return 'cpu'
    return f'cu{plan.cuda}-' + '-'.join(
        f'sm{sm_number(arch)}' + ('+ptx' if arch.endswith('+PTX') else '') for arch in plan.archs)


def build_of_id(name: str) -> Optional[MmcvBuild]:
    """The build a ``build_id`` folder name records (kernels assumed present: the installer
    checks the installed wheel for real); None for a name that is not a build id."""
    if name == 'cpu':
        return MmcvBuild('', None)
    match = re.fullmatch(r'cu(\d+\.\d+)((?:-sm\d+(?:\+ptx)?)+)', name)
    if not match:
        return None
    archs = re.findall(r'sm(\d+)(\+ptx)?', match.group(2))
    return MmcvBuild('', match.group(1), frozenset(int(sm) for sm, _ in archs),
                     frozenset(int(sm) for sm, ptx in archs if ptx), frozenset(REQUIRED_KERNELS))


def cached_wheels(plan: CudaOpsPlan, wheels_root: Path) -> List[Path]:
    """mmcv wheels kept under ``wheels_root/<build id>/`` whose recorded build serves ``plan``,
    the folder named for exactly this plan first."""
    own = build_id(plan)
    found = []
    for folder in sorted(wheels_root.iterdir() if wheels_root.is_dir() else [],
                         key=lambda path: path.name != own):
        build = build_of_id(folder.name)
        if build is not None and build_misfit(build, plan) is None:
            found += sorted(folder.glob('*mmcv-*.whl'))  # mmcv-* and onedl_mmcv-*
    return found


if __name__ == '__main__':
    raise SystemExit(main())
