"""A CUDA toolkit to compile mmcv's ops with: the system's ``nvcc`` when its release matches torch's
CUDA, else CUDA's compiler from the package registry (``nvidia-cuda-nvcc`` and friends, pinned in
``requirements/cuda-toolkit-<major.minor>.txt``) joined with the CUDA headers and libraries torch's
own packages installed (cuBLAS, cuSPARSE, the runtime: pinned by torch, so CCCL's check that the
compiler and the toolkit headers belong together holds).

Standard library only and no relative imports: ``tools/install.sh`` runs this file by path.
"""
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

TOOLKIT_SWITCH = 'VSSD_MM_CUDA_TOOLKIT'   # '' (auto) | 'system' | 'packages'


class ToolkitError(RuntimeError):
    """No CUDA toolkit that matches torch's CUDA can be found or assembled."""


def nvcc_release(cuda_home: Path) -> Optional[str]:
    """``'13.0'`` from ``cuda_home/bin/nvcc --version``; None when there is no working nvcc."""
    nvcc = cuda_home / 'bin' / 'nvcc'
    try:
        out = subprocess.run([str(nvcc), '--version'], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def system_cuda_homes() -> List[Path]:
    """Where torch.utils.cpp_extension would look for CUDA, in its order: ``CUDA_HOME``,
    ``CUDA_PATH``, the ``nvcc`` on PATH, ``/usr/local/cuda``."""
    homes = [os.environ.get('CUDA_HOME'), os.environ.get('CUDA_PATH')]
    nvcc = shutil.which('nvcc')
    homes.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None)
    homes.append('/usr/local/cuda')
    return [Path(home) for home in homes if home]


def matching_system_toolkit(torch_cuda: str) -> Optional[Path]:
    """The first system CUDA home whose nvcc release is ``torch_cuda`` (major.minor) and that has
    the runtime's headers (a wrapper script on PATH is no CUDA home)."""
    for home in system_cuda_homes():
        if (home / 'include' / 'cuda_runtime.h').is_file() and nvcc_release(home) == torch_cuda:
            return home
    return None


def pins_file(requirements_dir: Path, torch_cuda: str) -> Path:
    """``requirements/cuda-toolkit-<torch_cuda>.txt``; ToolkitError (one line: torch's CUDA
    version and what to install) when the registry route has no pins for it."""
    path = requirements_dir / f'cuda-toolkit-{torch_cuda}.txt'
    if not path.is_file():
        known = sorted(p.stem.split('-')[-1] for p in requirements_dir.glob('cuda-toolkit-*.txt'))
        raise ToolkitError(
            f'torch is built for CUDA {torch_cuda} and no nvcc {torch_cuda} was found '
            f'(CUDA_HOME, PATH, /usr/local/cuda); the package-registry toolkit is pinned for CUDA '
            f'{", ".join(known) or "(none)"} only. Install the CUDA {torch_cuda} toolkit and set '
            f'CUDA_HOME to it, or install a torch built for CUDA {" or ".join(known)}.')
    return path


def target_dir_name() -> str:
    """nvcc's per-platform folder under ``targets/``."""
    return {'x86_64': 'x86_64-linux', 'aarch64': 'sbsa-linux'}.get(platform.machine(),
                                                                  f'{platform.machine()}-linux')


def _link_missing(source_dir: Path, dest_dir: Path) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    for entry in source_dir.iterdir():
        target = dest_dir / entry.name
        if not (target.exists() or target.is_symlink()):
            target.symlink_to(entry)


def assemble_toolkit(home: Path, torch_cuda_root: Path) -> Path:
    """Turn ``home`` (the ``nvidia/cu<major>`` folder the compiler packages were installed into)
    into a CUDA home in the layout torch.utils.cpp_extension and nvcc expect, and return it.

    Args:
        home: holds ``bin/nvcc``, ``nvvm/``, the compiler's ``include/`` and ``lib/``.
        torch_cuda_root: torch's own ``site-packages/nvidia/cu<major>``: its ``include/`` and
            ``lib/`` entries (runtime, cuBLAS, ...) are linked in where the compiler packages have
            none.
    """
    if not (home / 'bin' / 'nvcc').is_file():
        raise ToolkitError(f'{home}/bin/nvcc is missing: the compiler packages did not install')
    for sub in ('include', 'lib'):
        if (torch_cuda_root / sub).is_dir():
            _link_missing(torch_cuda_root / sub, home / sub)
    lib = home / 'lib'
    for versioned in lib.glob('libcudart.so.*'):  # -lcudart needs the unversioned name
        if not (lib / 'libcudart.so').exists():
            (lib / 'libcudart.so').symlink_to(versioned.name)
    if not (home / 'lib64').exists():
        (home / 'lib64').symlink_to('lib')
    targets = home / 'targets' / target_dir_name()
    targets.mkdir(parents=True, exist_ok=True)
    for sub in ('include', 'lib'):
        if not (targets / sub).exists():
            (targets / sub).symlink_to(Path('..', '..', sub))
    if not (home / 'include' / 'cuda_runtime.h').exists():
        raise ToolkitError(f'no cuda_runtime.h under {torch_cuda_root}/include: torch\'s CUDA '
                           'runtime package (nvidia-cuda-runtime) is missing; reinstall torch')
    return home


def install_packaged_toolkit(cache: Path, requirements_dir: Path, torch_cuda: str,
                             torch_cuda_root: Path, pip: Sequence[str]) -> Path:
    """Install the pinned compiler packages into ``cache/cuda/<torch_cuda>/site`` (never into the
    venv), assemble the toolkit there and return its CUDA home. Reuses an earlier one.

    Args:
        pip: the command that runs pip, e.g. ``[sys.executable, '-m', 'pip']``.
    """
    pins = pins_file(requirements_dir, torch_cuda)
    root = cache / 'cuda' / torch_cuda
    home = root / 'site' / 'nvidia' / f'cu{torch_cuda.split(".")[0]}'
    stamp = root / 'pins.txt'
    if not (stamp.is_file() and stamp.read_text() == pins.read_text()
            and nvcc_release(home) == torch_cuda):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        proc = subprocess.run([*pip, 'install', '--quiet', '--no-deps', '--target',
                               str(root / 'site'), '-r', str(pins)], stdout=sys.stderr)
        if proc.returncode != 0:
            raise ToolkitError(f'installing the CUDA {torch_cuda} compiler packages ({pins}) '
                               'failed; see pip\'s message above')
        assemble_toolkit(home, torch_cuda_root)
        stamp.write_text(pins.read_text())
    release = nvcc_release(home)
    if release != torch_cuda:
        raise ToolkitError(f'the packaged nvcc in {home} reports release {release}, '
                           f'torch needs {torch_cuda}')
    return home


def torch_cuda_root() -> Path:
    """torch's own ``site-packages/nvidia/cu<major>`` (where its CUDA packages put headers)."""
    import torch
    major = torch.version.cuda.split('.')[0]
    site = Path(torch.__file__).resolve().parent.parent
    return site / 'nvidia' / f'cu{major}'


def choose_cuda_home(cache: Path, requirements_dir: Path) -> Path:
    """The CUDA home to build mmcv's ops with, for this machine's torch (see the module's
    docstring); ``VSSD_MM_CUDA_TOOLKIT=system`` or ``=packages`` forces one route."""
    import torch
    torch_cuda = torch.version.cuda
    if not torch_cuda:
        raise ToolkitError('the installed torch is a CPU-only build: there is no CUDA to build '
                           'mmcv\'s ops for')
    route = os.environ.get(TOOLKIT_SWITCH, '').strip()
    if route not in ('', 'system', 'packages'):
        raise ToolkitError(f'{TOOLKIT_SWITCH}={route!r}: use system, packages or leave it unset')
    if route != 'packages':
        home = matching_system_toolkit(torch_cuda)
        if home is not None:
            return home
        if route == 'system':
            raise ToolkitError(f'{TOOLKIT_SWITCH}=system but no nvcc {torch_cuda} was found '
                               '(CUDA_HOME, CUDA_PATH, PATH, /usr/local/cuda)')
    return install_packaged_toolkit(cache, requirements_dir, torch_cuda, torch_cuda_root(),
                                    [sys.executable, '-m', 'pip'])


def cuobjdump_dir(home: Path, cache: Path, requirements_dir: Path, torch_cuda: str) -> Path:
    """A folder with ``cuobjdump`` (which reads the archs inside a compiled extension): the
    toolkit's own ``bin``, else the pinned package installed into ``cache/cuda/<torch_cuda>/tools``
    (a system toolkit may come without it)."""
    if (home / 'bin' / 'cuobjdump').is_file():
        return home / 'bin'
    pin = [line for line in pins_file(requirements_dir, torch_cuda).read_text().splitlines()
           if line.startswith('nvidia-cuda-cuobjdump')]
    target = cache / 'cuda' / torch_cuda / 'tools'
    found = list(target.glob('nvidia/*/bin/cuobjdump'))
    if not found and pin:
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--target',
                        str(target), pin[0]], stdout=sys.stderr)
        found = list(target.glob('nvidia/*/bin/cuobjdump'))
    if not found:
        raise ToolkitError(f'no cuobjdump in {home}/bin and installing {pin or "it"} failed')
    return found[0].parent


def build_environment(home: Path) -> dict:
    """Environment for building against ``home``: ``CUDA_HOME``, its ``bin`` first on ``PATH``,
    and torch's CUDA headers on ``CPATH`` (a system toolkit may lack cuBLAS' or cuSPARSE's
    headers, which ATen's CUDA headers include)."""
    cpath = [str(torch_cuda_root() / 'include')] + [p for p in [os.environ.get('CPATH')] if p]
    return {'CUDA_HOME': str(home), 'PATH': f'{home / "bin"}{os.pathsep}{os.environ["PATH"]}',
            'CPATH': os.pathsep.join(cpath)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``cuda_toolkit.py CACHE_DIR REQUIREMENTS_DIR``: print the build environment for the CUDA
    home chosen and ``CUOBJDUMP_DIR``, one ``KEY=VALUE`` a line (on stdout; pip's output on stderr), or one ``error:``
    line and exit 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print('usage: cuda_toolkit.py CACHE_DIR REQUIREMENTS_DIR', file=sys.stderr)
        return 2
    cache, requirements_dir = Path(args[0]), Path(args[1])
    try:
        home = choose_cuda_home(cache, requirements_dir)
        tools = cuobjdump_dir(home, cache, requirements_dir, nvcc_release(home))
    except ToolkitError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    for key, value in {**build_environment(home), 'CUOBJDUMP_DIR': str(tools)}.items():
        print(f'{key}={value}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
