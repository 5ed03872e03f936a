"""Data-loader workers that end with the process they serve, however it ends (SIGKILL included).

A killed training (``kill -9``, the OOM killer) otherwise leaves its DataLoader workers behind:
PyTorch's worker notices that its parent is gone and leaves its loop, but then blocks at exit
joining its result queue's feeder thread on a pipe nobody reads. On Linux each worker asks the
kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to be killed when its parent dies; elsewhere this is
a no-op and PyTorch's own watchdog is all there is.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the worker ends, so the loader must be
iterated by a thread that lives as long as the run (mmengine's loops run in the main thread).
"""
import ctypes
import os
import signal
import sys
from functools import partial
from typing import Callable, Optional

from torch.utils.data import DataLoader

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """In a freshly started child of ``parent_pid``: have the kernel SIGKILL this process when
    its parent dies; if the parent already died (before the request took effect: the child now
    has another parent), end this process at once. No-op on non-Linux systems."""
    if not sys.platform.startswith('linux'):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f'prctl(PR_SET_PDEATHSIG): {os.strerror(err)}')
    if os.getppid() != parent_pid:
        os._exit(1)  # not sys.exit: Python's exit would join the queue threads this avoids


def _init_worker(worker_id: int, parent_pid: int, chained: Optional[Callable]) -> None:
    die_with_parent(parent_pid)
    if chained is not None:
        chained(worker_id)


def end_workers_with_this_process(loader: DataLoader) -> DataLoader:
    """Make ``loader``'s workers end when this process (the one that builds and iterates the
    loader) dies: its ``worker_init_fn`` becomes ``die_with_parent`` followed by the previous
    ``worker_init_fn`` (kept as it was, e.g. mmengine's seeding). Returns ``loader``; a loader
    without workers, or already set up, is left as it is."""
    init = loader.worker_init_fn
    if loader.num_workers == 0 or (isinstance(init, partial) and init.func is _init_worker):
        return loader
    loader.worker_init_fn = partial(_init_worker, parent_pid=os.getpid(), chained=init)
    return loader
