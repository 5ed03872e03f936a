"""The NC-SSD steps by the Triton kernels (kernels.py, launched as launch.py specifies): the state
``KV`` (kv_reduce), its application (apply_state) and the backward from a saved state."""
from typing import Optional, Tuple

import torch

from .launch import apply_launch, backward_launches, kv_reduce_launch


def kv_reduce(keys: torch.Tensor, values: torch.Tensor, weights: Optional[torch.Tensor],
              heads: int) -> torch.Tensor:
    """sum_l keys_l^T (weights_{l,h} values_{l,h}).

    Args:
        keys: (batch, L, G, N); values: (batch, L, heads, P); weights: (batch, L, heads) float32
            or None.
    Returns:
        (batch, heads, N, P) float32, contiguous.
    """
    launch, partial = kv_reduce_launch(keys, values, weights, heads)
    launch()
    return partial[:, :, 0] if partial.shape[2] == 1 else partial.sum(2)


def apply_state(C: torch.Tensor, kv: torch.Tensor, x: torch.Tensor,
                D: Optional[torch.Tensor]) -> torch.Tensor:
    """y = C KV_h + D_h x, shaped and typed like x (batch, L, heads, P)."""
    launch, y = apply_launch(C, kv, x, D)
    launch()
    return y


def kernel_forward(x, w, B, C, D) -> Tuple[torch.Tensor, torch.Tensor]:
    """(y, KV) by the kernels; w and D float32 (batch, L, heads) and (heads,)."""
    kv = kv_reduce(B, x, w, heads=x.shape[2])
    return apply_state(C, kv, x, D), kv


def kernel_backward(x, w, B, C, D, kv, dy) -> Tuple[Optional[torch.Tensor], ...]:
    """(dx, dw, dB, dC, dD) by the kernels, from the forward's state ``kv``; dD None without D."""
    dkv = kv_reduce(C, dy, None, heads=x.shape[2])
    launches, grads = backward_launches(x, w, B, C, D, dy, kv, dkv)
    for launch in launches:
        launch()
    dD = grads['dd_part'].sum((0, 2)) if D is not None else None
    return grads['dx'], grads['dw'], grads['dB'], grads['dC'], dD
