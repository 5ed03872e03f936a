"""The heap behaviour of our tools' processes: large blocks are kept and reused, not mapped fresh.

glibc's malloc serves each request above its mmap threshold (adaptive, at most 32 MiB on 64-bit)
with a fresh ``mmap`` and unmaps it on ``free``, so the next step's activation of the same size
page-faults all its pages again on first touch. At detection sizes many of VSSD's activations are
that large (the 8x-expanded downsampling maps, the mixers' projections), and on CPU the faults
cost as much as a third of a training step. ``reuse_large_blocks`` tells glibc to serve them from
the heap and to keep freed memory for the next step.

Only the tools call it, first thing (``tools/train.py``, ``tools/test.py``, the benchmarks):
importing ``vssd_mm`` in a user's own process changes nothing global. ``VSSD_MM_MALLOC=system``
keeps glibc's defaults in the tools too.
"""
import ctypes
import ctypes.util
import os

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


def reuse_large_blocks() -> str:
    """Serve every allocation from the heap (no per-block ``mmap``) and never give freed heap
    memory back to the system, for the rest of this process and the processes it forks
    (dataloader workers). Returns what was done, for the log: ``'reuse'``, ``'system'`` (turned
    off by ``VSSD_MM_MALLOC``) or ``'unsupported'`` (not glibc)."""
    if os.environ.get(ENV_VAR, '').strip().lower() in KEEP_SYSTEM:
        return 'system'
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return 'unsupported'
    if not (mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)):
        return 'unsupported'
    return 'reuse'
