"""The NC-SSD steps by the Triton kernels (kernels.py, launched as launch.py specifies): the
forward (state ``KV`` by kv_reduce, then its application) and the backward from a saved state.

Each step builds all of its launches first and asks ``launch.unserved`` about them: inputs the
kernels cannot serve raise ``dispatch.KernelsCannotServe`` before anything runs. The launches then
run under ``device_guard`` of the tensors' device, on its current stream.
"""
from typing import Optional, Sequence, Tuple

import torch

from .dispatch import KernelsCannotServe
from .launch import (Launch, apply_launch, backward_launches, device_guard, kv_reduce_launch,
                     unserved)


def _check(launches: Sequence[Launch]) -> None:
    why_not = unserved(launches)
    if why_not is not None:
        raise KernelsCannotServe(*why_not)


def _split_sum(partial: torch.Tensor) -> torch.Tensor:
    """Where kv_reduce's split partials (batch, heads, splits, N, P) are summed to: (batch, heads,
    N, P) float32, contiguous, allocated before the launches that read it are built."""
    return partial.new_empty(partial.shape[:2] + partial.shape[3:])


def kernel_forward(x, w, B, C, D) -> Tuple[torch.Tensor, torch.Tensor]:
    """(y, KV) by the kernels; w and D float32 (batch, L, heads) and (heads,)."""
    reduce, partial = kv_reduce_launch(B, x, w, heads=x.shape[2])
    kv = _split_sum(partial)
    apply, y = apply_launch(C, kv, x, D)
    _check([reduce, apply])
    with device_guard(x.device):
        reduce()
        torch.sum(partial, 2, out=kv)
        apply()
    return y, kv


def kernel_backward(x, w, B, C, D, kv, dy) -> Tuple[Optional[torch.Tensor], ...]:
    """(dx, dw, dB, dC, dD) by the kernels, from the forward's state ``kv``; dD None without D."""
    reduce, partial = kv_reduce_launch(C, dy, None, heads=x.shape[2])
    dkv = _split_sum(partial)
    launches, grads = backward_launches(x, w, B, C, D, dy, kv, dkv)
    _check([reduce, *launches])
    with device_guard(x.device):
        reduce()
        torch.sum(partial, 2, out=dkv)
        for launch in launches:
            launch()
    dD = grads['dd_part'].sum((0, 2)) if D is not None else None
    return grads['dx'], grads['dw'], grads['dB'], grads['dC'], dD
