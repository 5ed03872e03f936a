"""The heap behaviour of our tools' processes: large blocks are kept and reused, not mapped fresh.

glibc's malloc serves each request above its mmap threshold (adaptive, at most 32 MiB on 64-bit)
with a fresh ``mmap`` and unmaps it on ``free``, so the next step's activation of the same size
page-faults all its pages again on first touch. At detection sizes many of VSSD's activations are
that large (the 8x-expanded downsampling maps, the mixers' projections), and on CPU the faults
cost as much as a third of a training step. ``reuse_large_blocks`` tells glibc to serve them from
the heap and to keep freed memory for the next step.

It is for processes that compute on the CPU: where the model runs on a GPU (``torch.cuda`` is
available, as mmengine's Runner decides its device) its activations live in GPU memory, and a
heap that never shrinks would only keep the host memory of data loading (in every dataloader
worker forked from the process) at its peak. There it changes nothing.

Only the tools call it, first thing (``tools/train.py``, ``tools/test.py``, the benchmarks):
importing ``vssd_mm`` in a user's own process changes nothing global. ``VSSD_MM_MALLOC=system``
keeps glibc's defaults in the tools too. ``decision_line`` is what the tools log.
"""
import ctypes
import ctypes.util
import os
from typing import Optional

ENV_VAR = 'VSSD_MM_MALLOC'
KEEP_SYSTEM = ('system', 'default', 'off', '0')

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2 ** 31 - 1  # bytes: mallopt takes an int


def _glibc_mallopt():
    """glibc's ``mallopt``, or None where the C library is not glibc (musl, macOS, Windows)."""
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
    except (OSError, TypeError, AttributeError):
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


_LINES = {
    'reuse': 'heap: large blocks reused, not mapped fresh each step (a CPU run; '
             f'{ENV_VAR}=system keeps glibc\'s defaults)',
    'cuda': 'heap: glibc\'s defaults (the model runs on CUDA; the reuse of large blocks is for '
            'CPU runs)',
    'system': f'heap: glibc\'s defaults ({ENV_VAR} asks for them)',
    'unsupported': 'heap: the C library\'s defaults (not glibc: no mallopt)',
}
_decision: Optional[str] = None  # this process's, once reuse_large_blocks ran


def reuse_large_blocks(cuda: Optional[bool] = None) -> str:
    """In a process that computes on the CPU: serve every allocation from the heap (no per-block
    ``mmap``) and never give freed heap memory back to the system, for the rest of this process
    and the processes it forks (dataloader workers). ``cuda``: whether the model will run on a
    GPU (default: ``torch.cuda.is_available()``). Returns what was done: ``'reuse'``,
    ``'cuda'`` (nothing: a GPU run), ``'system'`` (turned off by ``VSSD_MM_MALLOC``) or
    ``'unsupported'`` (not glibc)."""
    global _decision
    if os.environ.get(ENV_VAR, '').strip().lower() in KEEP_SYSTEM:
        _decision = 'system'
    elif cuda if cuda is not None else _cuda_available():
        _decision = 'cuda'
    else:
        mallopt = _glibc_mallopt()
        done = mallopt is not None and bool(mallopt(_M_MMAP_MAX, 0)
                                            and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
        _decision = 'reuse' if done else 'unsupported'
    return _decision


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def decision_line() -> Optional[str]:
    """One log line for what ``reuse_large_blocks`` did in this process; None if it did not run
    (a user's own process)."""
    return _LINES.get(_decision)
