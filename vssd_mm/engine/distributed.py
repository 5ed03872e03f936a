"""Multi-process training and testing without GPUs (torchrun + gloo).

mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device(LOCAL_RANK)`` and wraps the model
with ``device_ids=[LOCAL_RANK]``: both fail on a machine without CUDA. Initialising the gloo
process group first makes mmengine skip its own initialisation, and a DDP wrapper without
device ids runs on CPU. SyncBN has no CPU implementation: it becomes BN (per-process statistics).
"""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

from .errors import ToolError


def prepare_cpu_distributed(cfg: Config, launcher: str) -> None:
    """If ``launcher`` asks for several processes and there is no GPU, set them up on CPU."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ToolError(f'--launcher {launcher} needs GPUs; without CUDA use '
                        'tools/dist_train.sh / dist_test.sh (torchrun, --launcher pytorch)')
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
