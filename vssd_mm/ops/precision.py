"""The ops' arithmetic outside autocast: they choose their own precision (float32 accumulation,
outputs in the inputs' dtype), so a surrounding ``torch.autocast`` must not recast their matmuls
to half precision — which would give another state dtype on the reference than on the kernels,
and another result than the op promises."""
import contextlib

import torch


def autocast_off(device: torch.device):
    """A context in which autocast recasts nothing on ``device``'s type (a null context where that
    type has no autocast, e.g. meta)."""
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)
