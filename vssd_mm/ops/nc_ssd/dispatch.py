"""Which NC-SSD implementation runs, and what happens when the Triton kernels cannot.

- ``backend='torch'`` runs the PyTorch reference; ``'triton'`` the kernels, and any failure of
  theirs is one ``NCSSDKernelError`` line naming the switch to the reference; ``'auto'`` (the
  default) asks the environment variable ``VSSD_MM_NC_SSD_BACKEND`` (auto | triton | torch) and
  otherwise runs the kernels for CUDA tensors of float16, bfloat16 or float32 on sm_80 or newer
  (float64, e.g. a gradient check, runs the reference). In auto mode a kernel that fails
  to compile or launch (or an older card) costs one warning, then the reference serves for the
  rest of the process: training goes on, with the same numbers. In a multi-rank job (an
  initialised default process group) the first such call is decided by all ranks together
  (agreement.py): a failure on any rank makes every rank use the reference.
- Inputs the kernels cannot serve (``launch.unserved``: offsets past int32, grids past CUDA's
  limits, d_state / headdim past the measured tiles) are found before any launch: auto mode runs
  that call on the reference (one warning per kind of reason; the kernels stay on for the next
  call), 'triton' stops with NCSSDKernelError. ``fallbacks()`` reports both kinds of fallback.
"""
import os
import warnings
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

import torch

from . import agreement

BACKENDS = ('auto', 'triton', 'torch')
BACKEND_ENV = 'VSSD_MM_NC_SSD_BACKEND'
MIN_CAPABILITY = (8, 0)  # the kernels' TF32 dots need Ampere tensor cores
KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)  # of x, B and C
SWITCH = (f'{BACKEND_ENV}=torch in the environment, or nc_ssd_backend="torch" in the VSSD '
          'backbone config')


class NCSSDKernelError(RuntimeError):
    """The Triton kernels failed, or cannot serve the inputs, where the caller asked for them
    explicitly."""


class KernelsCannotServe(Exception):
    """Raised before any launch for inputs the kernels cannot serve (``launch.unserved``):
    ``kind`` names the kind of reason, ``reason`` says it in words."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


_given_up: Optional[str] = None  # why auto mode stopped using the kernels in this process
_routed: Dict[str, List] = {}  # kind -> [calls, first reason]: auto mode's per-call routings


def triton_available() -> bool:
    try:
        from . import kernel_steps  # noqa: F401  (imports triton and compiles nothing)
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    return os.environ.get('TRITON_INTERPRET') == '1'


def check_backend(backend: str, name: str = 'nc_ssd: backend') -> str:
    """``backend`` if it is one of BACKENDS, else a ValueError naming ``name`` (the argument as
    the caller's user spells it, e.g. 'VSSD: nc_ssd_backend')."""
    if backend not in BACKENDS:
        raise ValueError(f'{name} must be one of {BACKENDS}, got {backend!r}')
    return backend


def requested_backend(backend: str) -> Tuple[str, str]:
    """(backend, where it was asked for): the argument (checked by ``check_backend`` where it
    was given), or for 'auto' the environment's choice."""
    if backend != 'auto':
        return backend, f'backend="{backend}"'
    env = os.environ.get(BACKEND_ENV, '').strip() or 'auto'
    if env not in BACKENDS:
        raise ValueError(f'{BACKEND_ENV}={env!r} is not a backend; set it to one of {BACKENDS} '
                         'or unset it')
    return env, f'{BACKEND_ENV}={env}'


def _where(device: torch.device) -> str:
    if device.type != 'cuda':
        return f'{device} (Triton interpreter)'
    major, minor = torch.cuda.get_device_capability(device)
    return f'{torch.cuda.get_device_name(device)} (sm_{major}{minor})'


def unsupported_reason(device: torch.device) -> Optional[str]:
    """Why the kernels cannot run for tensors on ``device``, or None."""
    if device.type != 'cuda' and not interpreting():
        return (f'needs CUDA tensors, got tensors on {device}. Move the inputs to a GPU, use '
                'backend="auto"/"torch", or set TRITON_INTERPRET=1 to run the kernels in '
                'Triton\'s (slow) CPU interpreter')
    if not triton_available():
        return 'needs triton, which is not importable (it ships with the CUDA builds of torch)'
    if device.type == 'cuda' and torch.cuda.get_device_capability(device) < MIN_CAPABILITY:
        return (f'needs a GPU of compute capability 8.0 or newer; this is {_where(device)}')
    return None


def auto_runs_kernels(x: torch.Tensor) -> bool:
    """Whether 'auto' would pick the kernels for ``x`` (CUDA tensors of a kernel dtype)."""
    return x.is_cuda and x.dtype in KERNEL_DTYPES


def choose(x: torch.Tensor, backend: str) -> Tuple[bool, bool]:
    """(run the kernels?, strict?) for ``x``; strict means a kernel failure is an error."""
    backend, source = requested_backend(backend)
    if backend == 'torch':
        return False, False
    if backend == 'triton':
        if x.dtype not in KERNEL_DTYPES:
            raise RuntimeError(f'nc_ssd: {source} runs float16, bfloat16 and float32 inputs, '
                               f'got {x.dtype}; use backend="auto" or "torch" for the reference.')
        reason = unsupported_reason(x.device)
        if reason:
            raise RuntimeError(f'nc_ssd: {source} {reason}.')
        return True, True
    if not auto_runs_kernels(x):
        return False, False
    if agreement.pending():  # a multi-rank job's first kernel call: every rank decides together
        reason = unsupported_reason(x.device)
        local = _given_up or (reason and f'the Triton kernels {reason}')
        if local is None:
            return True, False  # kernels_or_reference agrees once they ran
        agree(local, x.device)  # this rank failed: every rank gives up
        return False, False
    if _given_up is not None:
        return False, False
    reason = unsupported_reason(x.device)
    if reason:
        give_up(f'the Triton kernels {reason}')
        return False, False
    return True, False


def is_kernel_failure(err: BaseException) -> bool:
    """Errors of compiling, loading or launching a kernel. The inputs were checked before, so
    anything but running out of memory counts."""
    return isinstance(err, Exception) and not isinstance(
        err, (torch.OutOfMemoryError, NCSSDKernelError))


def give_up(reason: str) -> None:
    """Auto mode: warn once, then use the reference for the rest of the process."""
    global _given_up
    if _given_up is None:
        _given_up = reason
        warnings.warn(f'nc_ssd: {reason}; using the PyTorch reference (same results, slower) '
                      f'for the rest of this process{agreement.alone_note()}. To skip the '
                      f'kernels from the start: {SWITCH}.', RuntimeWarning, stacklevel=3)


def agree(failure: Optional[str], device: torch.device) -> bool:
    """A multi-rank job's one decision (agreement.py), ``failure`` this rank's reason or None:
    True where every rank keeps the kernels; else every rank gives up, rank 0 warns once naming
    each failed rank and why, and False."""
    global _given_up
    verdict = agreement.agree(failure, device)
    if verdict is None:
        return True
    _given_up = verdict
    if agreement.is_rank_zero():
        warnings.warn(f'nc_ssd: {verdict}; every rank of this job uses the PyTorch reference '
                      f'(same results, slower) from now on. To skip the kernels from the start: '
                      f'{SWITCH}.', RuntimeWarning, stacklevel=3)
    return False


def failure_text(err: Exception, device: torch.device) -> str:
    """A kernel failure in one line: where, the error's type and its first line."""
    first_line = (str(err).strip().splitlines() or [''])[0][:300]
    return f'the Triton kernels failed on {_where(device)} ({type(err).__name__}: {first_line})'


def kernel_failure(err: Exception, device: torch.device, strict: bool) -> None:
    """Handle a kernel failure: strict -> one-line NCSSDKernelError; else warn once, give up."""
    what = failure_text(err, device)
    if strict:
        error = NCSSDKernelError(f'nc_ssd: {what}. Run the PyTorch reference instead: {SWITCH}.')
        error.kernel_error = err
        raise error from None
    give_up(what)


Result = TypeVar('Result')


def kernels_or_reference(kernels: Callable[[], Result], reference: Callable[[], Result],
                         device: torch.device, strict: bool) -> Result:
    """``kernels()``; where they fail to compile or launch (``is_kernel_failure``):
    ``kernel_failure`` (strict: NCSSDKernelError; else one warning), then ``reference()``. The
    first call of a multi-rank job in auto mode runs the kernels, then ``agree``s. Inputs the
    kernels cannot serve run ``reference()`` for this call (``not_served``)."""
    kernels = _served_or_routed(kernels, reference, strict)
    if not strict and agreement.pending():
        try:
            result, failure = kernels(), None
        except Exception as err:
            if not is_kernel_failure(err):
                raise
            result, failure = None, failure_text(err, device)
        return result if agree(failure, device) else reference()
    try:
        return kernels()
    except Exception as err:
        if not is_kernel_failure(err):
            raise
        kernel_failure(err, device, strict)
    return reference()


def _served_or_routed(kernels: Callable[[], Result], reference: Callable[[], Result],
                      strict: bool) -> Callable[[], Result]:
    def run():
        try:
            return kernels()
        except KernelsCannotServe as err:
            not_served(err, strict)
        return reference()
    return run


def not_served(err: KernelsCannotServe, strict: bool) -> None:
    """Inputs the kernels cannot serve: strict -> one-line NCSSDKernelError; else count the call
    (one warning per kind of reason) and let the reference serve it."""
    if strict:
        raise NCSSDKernelError(f'nc_ssd: the Triton kernels cannot serve these inputs: '
                               f'{err.reason}. backend="auto" runs such calls on the PyTorch '
                               f'reference; or {SWITCH}.') from None
    entry = _routed.setdefault(err.kind, [0, err.reason])
    entry[0] += 1
    if entry[0] == 1:
        warnings.warn(f'nc_ssd: {err.reason}; this call runs the PyTorch reference (same results, '
                      f'slower), as will later calls for this kind of reason ({err.kind}), '
                      f'without another warning.', RuntimeWarning, stacklevel=5)


def fallbacks() -> Dict[str, object]:
    """What auto mode ran on the reference instead of the kernels in this process:
    ``given_up`` (why it stopped using them, or None) and ``routed`` (kind of reason ->
    (calls, the first reason)) for the calls they could not serve."""
    return dict(given_up=_given_up,
                routed={kind: (calls, reason) for kind, (calls, reason) in _routed.items()})


def reset() -> None:
    """Forget an earlier give-up and the counted routings (tests; a process that changed its
    environment)."""
    global _given_up
    _given_up = None
    _routed.clear()
    agreement.reset()
