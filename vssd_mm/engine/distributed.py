"""Multi-process training and testing without GPUs (torchrun or slurm's srun + gloo).

mmengine's ``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device(LOCAL_RANK)`` and wrap
the model with ``device_ids=[LOCAL_RANK]``: both fail on a machine without CUDA. Initialising the
gloo process group first makes mmengine skip its own initialisation, and a DDP wrapper without
device ids runs on CPU. Under slurm the rank, world size and master come from srun's variables
(``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, the first host of ``SLURM_NODELIST``), as
mmengine reads them. SyncBN has no CPU implementation: it becomes BN (per-process statistics).

One process, one decision: ``start_processes`` creates the process group first (CPU: gloo as
above; GPU: mmengine's ``init_dist`` with the config's ``env_cfg.dist_cfg``, as the Runner would a
moment later), so that the preparation of a run (the data check, the extra model build, the
checkpoint checks, the config the flags make) runs in rank 0 alone (``decided_by_rank_zero``):
the other ranks wait for its outcome and take its config. A failure there stops every rank, rank
0 with its one error line, the others quietly (``StoppedByRankZero``).
"""
import os
import pickle
import re
import subprocess
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable, TypeVar

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

from .errors import ToolError

T = TypeVar('T')
RANK_ZERO_PREPARATION_TIMEOUT = timedelta(hours=2)


class StoppedByRankZero(Exception):
    """In a rank other than 0 of a multi-process run: rank 0's preparation failed (rank 0 says
    why, in its error line)."""


def start_processes(cfg: Config, launcher: str) -> None:
    """The process group of a multi-process run (``launcher`` other than 'none'), before anything
    heavy: on CPU by ``prepare_cpu_distributed``, on GPUs as mmengine's Runner creates it (which
    then finds it made)."""
    if launcher == 'none':
        return
    if not torch.cuda.is_available():
        prepare_cpu_distributed(cfg, launcher)
    elif not dist.is_initialized():
        import torch.multiprocessing as mp
        from mmengine.dist import init_dist
        env_cfg = cfg.get('env_cfg') or {}
        # init_dist picks 'spawn' when no start method is set; the Runner would then switch it
        # to the config's (mmengine's default 'fork') with a warning
        if mp.get_start_method(allow_none=True) is None:
            mp.set_start_method((env_cfg.get('mp_cfg') or {}).get('mp_start_method', 'fork'))
        init_dist(launcher, **dict(dict(backend='nccl'), **(env_cfg.get('dist_cfg') or {})))


def decided_by_rank_zero(prepare: Callable[[], T]) -> T:
    """``prepare()`` in rank 0 only of a multi-process run (in the one process otherwise); every
    rank returns rank 0's result (picklable: e.g. the prepared ``Config``). When it raises, rank 0
    raises its exception and the others ``StoppedByRankZero``, after the process group is
    closed."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return prepare()
    # the others wait on a CPU group of its own: no NCCL watchdog, and a timeout that lets rank 0
    # check a large dataset or download weights first
    group = dist.new_group(backend='gloo', timeout=RANK_ZERO_PREPARATION_TIMEOUT)
    outcome, failure = [None], None
    if dist.get_rank() == 0:
        try:
            result = prepare()
            pickle.dumps(result)  # what cannot be sent fails here, before the others wait
            outcome = [('done', result)]
        except BaseException as err:  # whatever stops rank 0 must release the others
            outcome, failure = [('failed', None)], err
    dist.broadcast_object_list(outcome, src=0, group=group)
    dist.destroy_process_group(group)
    state, result = outcome[0]
    if state == 'done':
        return result
    dist.destroy_process_group()
    if failure is not None:
        raise failure
    raise StoppedByRankZero('rank 0 could not prepare the run (its error line says why)')


@contextmanager
def quiet_when_rank_zero_stopped():
    """In a tool's ``main``: ``StoppedByRankZero`` ends the process with exit status 1 and no line
    of its own (rank 0 has said why)."""
    try:
        yield
    except StoppedByRankZero:
        raise SystemExit(1) from None


def prepare_cpu_distributed(cfg: Config, launcher: str) -> None:
    """If ``launcher`` asks for several processes and there is no GPU, set them up on CPU."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher == 'slurm':
        _slurm_to_torch_environment()
    elif launcher != 'pytorch':
        raise ToolError(f'--launcher {launcher} needs GPUs; without CUDA use '
                        'tools/dist_train.sh / dist_test.sh (torchrun, --launcher pytorch) or '
                        'tools/slurm_train.sh / slurm_test.sh (--launcher slurm)')
    if 'RANK' not in os.environ:
        raise ToolError('--launcher pytorch expects to be started by torchrun '
                        '(tools/dist_train.sh CONFIG NUM_PROCESSES)')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 forward_sync_buffers=False)
    if cfg.get('sync_bn'):
        raise ToolError('SyncBN does not run on CPU; drop sync_bn from the config')
    if _sync_bn_to_bn(cfg.model):
        print_log('CPU processes: SyncBN layers use BN (statistics per process)',
                  logger='current')


def _sync_bn_to_bn(node) -> int:
    """Replace ``norm_cfg=dict(type='SyncBN', ...)`` by BN in a model config; return the count."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        count += sum(_sync_bn_to_bn(v) for v in node)
    return count


def first_host(node_list: str) -> str:
    """The first host of a slurm node list ('gpu[03-05,7],cpu1' -> 'gpu03'), by ``scontrol`` where
    it is installed, else parsed."""
    try:
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True,
                               text=True, timeout=30).stdout.split()
        if hosts:
            return hosts[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    match = re.match(r'([^,\[]+)(?:\[([^\],-]+))?', node_list)
    return match.group(1) + (match.group(2) or '') if match else node_list


def _slurm_to_torch_environment() -> None:
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT from srun's variables."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if k not in os.environ]
    if missing:
        raise ToolError(f'--launcher slurm expects to be started by srun ({", ".join(missing)} '
                        'not set): tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_ADDR', first_host(os.environ['SLURM_NODELIST']))
    os.environ.setdefault('MASTER_PORT', os.environ.get('PORT', '29500'))
