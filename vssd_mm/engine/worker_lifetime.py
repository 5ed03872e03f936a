"""Data-loader workers that end with the process they serve, however it ends (SIGKILL included).

A killed training (``kill -9``, the OOM killer) otherwise leaves its DataLoader workers behind:
PyTorch's worker notices that its parent is gone and leaves its loop, but then blocks at exit
joining its result queue's feeder thread on a pipe nobody reads. A worker the serving process
started itself (the 'fork' and 'spawn' start methods) asks the Linux kernel
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to be killed when its parent dies. A worker started by
another process (a 'forkserver'), or on another system, runs a watchdog thread instead that ends
it within a second of the serving process's death.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the worker ends, so the loader must be
iterated by a thread that lives as long as the run (mmengine's loops run in the main thread).
"""
import ctypes
import os
import signal
import sys
import threading
import time
from functools import partial
from typing import Callable, Optional

from torch.utils.data import DataLoader

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_INTERVAL = 1.0  # seconds between the watchdog's looks at the serving process


def die_with_parent(parent_pid: int) -> None:
    """In a worker of the process ``parent_pid``: end this process when that one dies. Its own
    child on Linux: the kernel SIGKILLs it (and if the parent died before the request took
    effect, it ends at once); otherwise (a forkserver's child, other systems): a daemon thread
    checks every ``WATCH_INTERVAL`` seconds that ``parent_pid`` still runs."""
    if sys.platform.startswith('linux') and os.getppid() == parent_pid:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f'prctl(PR_SET_PDEATHSIG): {os.strerror(err)}')
        if os.getppid() != parent_pid:
            os._exit(1)  # not sys.exit: Python's exit would join the queue threads this avoids
        return
    if not _alive(parent_pid):
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), daemon=True,
                     name='vssd_mm: end with the serving process').start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _watch(parent_pid: int) -> None:
    while _alive(parent_pid):
        time.sleep(WATCH_INTERVAL)
    os._exit(1)


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
