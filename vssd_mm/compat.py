"""Fixes that the OpenMMLab stack (mmengine 0.10, mmcv 2.1, mmdet 3.3, mmseg 1.2, mmpretrain 1.2)
needs on torch >= 2.6 and numpy 2. Nothing here edits installed packages. Which installed version
needs which of them is decided in ``vssd_mm.stack`` (the OneDL forks fixed some).

Checkpoint loading
------------------
torch >= 2.6 calls ``torch.load(weights_only=True)`` by default. A plain state dict (official VSSD
weights, most pretrained files) loads that way and needs nothing. A checkpoint written by mmengine
also pickles its training state: the message hub's ``HistoryBuffer`` objects, numpy arrays and
scalars inside them, and ``builtins.getattr`` calls that look up ``HistoryBuffer``'s statistics
methods. ``allow_mmengine_training_state()`` allow-lists exactly those globals, and maps ``getattr``
to ``_history_buffer_getattr``, which serves only those lookups, so the load keeps the
weights-only unpickler's protection against arbitrary code. Use it only where the user's own
training state is read back (``--resume``, ``load_from``, ``tools/test.py CONFIG CHECKPOINT``);
``vssd_mm.engine.checked_runner`` applies it to exactly that step of a Runner.
"""
import contextlib
import pickle
from typing import Callable, Iterator, List, Tuple, Union

import numpy as np
import torch

SafeGlobal = Union[Callable, Tuple[Callable, str]]
# HistoryBuffer registers these on first use; a fresh process has not necessarily made one yet.
_BUILTIN_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_getattr(obj, name: str):
    """``getattr`` as mmengine checkpoints use it: ``HistoryBuffer.<registered statistic>`` only."""
    from mmengine.logging import HistoryBuffer
    allowed = _BUILTIN_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only the statistics '
        f'methods of mmengine.logging.HistoryBuffer ({sorted(allowed)}) are allowed. '
        'Load untrusted files with plain torch.load(weights_only=True).')


def mmengine_training_state_globals() -> List[SafeGlobal]:
    """The globals (besides torch's defaults) that an mmengine checkpoint's training state pickles."""
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    # files written under numpy 1 name the module numpy.core, under numpy 2 numpy._core
    numpy_reconstruction = [(getattr(multiarray, fn), f'{module}.multiarray.{fn}')
                            for module in ('numpy.core', 'numpy._core')
                            for fn in ('_reconstruct', 'scalar')]
    return [
        HistoryBuffer,
        *numpy_reconstruction,
        np.ndarray,
        np.dtype,
        # numpy 2 rebuilds float64/int64 dtypes through their classes; torch's scanner does not
        # report these two but the load needs them (measured on mmdet/mmseg/mmpretrain checkpoints).
        *[cls for cls in (getattr(getattr(np, 'dtypes', None), name, None)
                          for name in ('Float64DType', 'Int64DType')) if cls is not None],
        (_history_buffer_getattr, 'builtins.getattr'),
    ]


_allowing = 0  # nesting depth of allow_mmengine_training_state


@contextlib.contextmanager
def allow_mmengine_training_state() -> Iterator[None]:
    """Context in which ``torch.load(weights_only=True)`` accepts mmengine training state.

    Re-entrant: torch's ``safe_globals`` removes its globals on exit even when an outer context
    added the same ones, so only the outermost use enters it.
    """
    global _allowing
    if _allowing:
        _allowing += 1
        try:
            yield
        finally:
            _allowing -= 1
        return
    with torch.serialization.safe_globals(mmengine_training_state_globals()):
        _allowing = 1
        try:
            yield
        finally:
            _allowing = 0


def filter_known_warnings() -> None:
    """Silence warnings the pinned stack prints on every run that say nothing to a user.

    setuptools 80 warns "pkg_resources is deprecated" each time mmengine resolves a
    ``mmdet::``/``mmseg::``/``mmpretrain::`` config base; the stack pins setuptools < 81 for it.
    torch 2.13's own pytree code warns "`isinstance(treespec, LeafSpec)` is deprecated" while it
    copies the specs of an exported program (ONNX export, onnxruntime benchmarks).
    """
    import warnings

    from .stack import mmengine_imports_pkg_resources
    if mmengine_imports_pkg_resources():
        warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                                category=UserWarning)
    warnings.filterwarnings('ignore', message=r'`isinstance\(treespec, LeafSpec\)` is deprecated',
                            category=FutureWarning)
