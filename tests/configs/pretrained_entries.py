"""Which entry of a checkpoint file a config's backbone ``init_cfg`` reads: the loader's own
``state_dict_of`` on the two layouts users give it."""
import torch

# an official classification file (the release's save_checkpoint_ema: live 'model', EMA
# 'model_ema'), and a mmengine file (tools/train.py's: meta, state_dict, message_hub, optimizer)
FILES = {'official': {'model': {'w': torch.zeros(1)}, 'model_ema': {'w': torch.ones(1)},
                      'epoch': 300},
         'mmengine': {'meta': {'epoch': 1}, 'state_dict': {'w': torch.full((1, ), 2.)},
                      'message_hub': {}, 'optimizer': {'state': {}}}}
NAMES = {0.: 'model', 1.: 'model_ema', 2.: 'state_dict'}


def entry_read(init_cfg) -> dict:
    """{'official': entry, 'mmengine': entry} that ``init_cfg`` makes the loader take."""
    from vssd_mm.models.checkpoints import state_dict_of
    return {kind: NAMES[state_dict_of(ckpt, init_cfg.get('state_key'))['w'].item()]
            for kind, ckpt in FILES.items()}
