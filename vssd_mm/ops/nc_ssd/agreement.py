"""One NC-SSD backend decision per multi-rank job (DDP: torchrun, slurm; NCCL or gloo).

In auto mode a kernel failure makes the reference serve for the rest of the process
(dispatch.py). Decided per process, one rank of a DDP job could fall back while the others run
the kernels: a straggler, and with activation checkpointing a recompute on another path. So
where a default process group of more than one rank is initialised, the first auto-mode call
that would run the kernels (the first forward's first NC-SSD call, the same call on every rank:
same model, same forward) is a collective: every rank runs its kernels (or knows why it cannot),
then all ranks exchange ``(failed?, why)`` in one ``all_gather`` and either all keep the kernels
or all take the reference. Rank 0 names the failed ranks and their reasons in one warning.

Limits:
- This happens once per process. A later failure (a new shape that fails to compile) falls back
  on that rank alone, with a warning naming the rank and saying the other ranks keep the kernels.
- The first kernel call after the process group exists must be made by every rank (all of
  mmengine's training and validation loops do); a rank-0-only forward on CUDA tensors in auto
  mode at that point would wait for the others until the process group's timeout.
- Fake tensors (``torch.compile``'s tracing, ``torch.export``) run the op's fake, never this;
  'triton' (a failure raises) and 'torch' (no kernels) decide nothing together.
"""
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist

REASON_BYTES = 1024  # of each rank's reason in the exchange (UTF-8, longer ones cut)

_agreed = False  # this process took part in its job's decision


def _group_size() -> int:
    """World size of the initialised default process group, else 1."""
    if not dist.is_available() or not dist.is_initialized():
        return 1
    return dist.get_world_size()


def pending() -> bool:
    """Whether the next auto-mode kernel call must decide with the other ranks: a default process
    group of more than one rank exists and this process has not decided yet."""
    return not _agreed and _group_size() > 1


def _exchange_device(device: torch.device) -> torch.device:
    # gloo exchanges CPU tensors; NCCL (alone or beside gloo) those of the op's CUDA device
    return torch.device('cpu') if dist.get_backend() == 'gloo' else device


def _encode(failure: Optional[str]) -> torch.Tensor:
    row = torch.zeros(1 + REASON_BYTES, dtype=torch.uint8)
    if failure is not None:
        data = failure.encode('utf-8')[:REASON_BYTES]
        row[0] = 1
        row[1:1 + len(data)] = torch.tensor(list(data), dtype=torch.uint8)
    return row


def _decode(rows: torch.Tensor) -> List[Tuple[int, str]]:
    """(rank, reason) of each rank whose row says it failed."""
    return [(rank, bytes(row[1:].tolist()).rstrip(b'\0').decode('utf-8', 'replace'))
            for rank, row in enumerate(rows) if row[0]]


def agree(failure: Optional[str], device: torch.device) -> Optional[str]:
    """The job's decision; every rank calls it once, at the same call (see ``pending``).

    Args:
        failure: why this rank's kernels failed or cannot run, or None where they ran.
        device: the op's tensors' device (the exchange runs there under NCCL).
    Returns:
        None where no rank failed (all keep the kernels); else one line naming each failed rank
        and its reason: ``'rank 1 of 2: the Triton kernels failed on ... (RuntimeError: ...)'``.
    """
    global _agreed
    _agreed = True
    row = _encode(failure).to(_exchange_device(device))
    rows = [torch.empty_like(row) for _ in range(dist.get_world_size())]
    dist.all_gather(rows, row)
    failed = _decode(torch.stack(rows).cpu())  # the one host sync of the job's decision
    if not failed:
        return None
    return '; '.join(f'rank {rank} of {len(rows)}: {reason}' for rank, reason in failed)


def is_rank_zero() -> bool:
    """Rank 0 of the initialised default group, or a process without one."""
    return _group_size() == 1 or dist.get_rank() == 0


def alone_note() -> str:
    """For a rank that falls back after the job's decision: which rank this is and that the
    others keep the kernels ('' outside a multi-rank job)."""
    size = _group_size()
    if size == 1:
        return ''
    return (f' on rank {dist.get_rank()} of {size}; the other ranks keep the kernels (this rank '
            'is slower: set the switch below on every rank to run one path)')


def reset() -> None:
    """Decide again at the next kernel call (with ``dispatch.reset``, on every rank at once)."""
    global _agreed
    _agreed = False
