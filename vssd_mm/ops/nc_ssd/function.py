"""``torch.autograd.Function`` over the Triton NC-SSD kernels (kernels.py, launched as launch.py
specifies)."""
from typing import Optional, Tuple

import torch

from . import dispatch
from .launch import apply_launch, backward_launches, kv_reduce_launch
from .reference import nc_ssd_reference_backward


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


def kernel_backward(x, w, B, C, D, kv, dy) -> Tuple[Optional[torch.Tensor], ...]:
    """(dx, dw, dB, dC, dD) by the kernels."""
    dkv = kv_reduce(C, dy, None, heads=x.shape[2])
    launches, grads = backward_launches(x, w, B, C, D, dy, kv, dkv)
    for launch in launches:
        launch()
    dD = grads['dd_part'].sum((0, 2)) if D is not None else None
    return grads['dx'], grads['dw'], grads['dB'], grads['dC'], dD


class NCSSDFunction(torch.autograd.Function):
    """Triton NC-SSD with B, C as (batch, L, G, N) and w, D float32; see
    ``vssd_mm.ops.nc_ssd.nc_ssd``. ``strict``: a kernel failure in the backward raises
    NCSSDKernelError instead of falling back to the reference."""

    @staticmethod
    def forward(ctx, x, w, B, C, D, strict: bool):
        kv = kv_reduce(B, x, w, heads=x.shape[2])
        y = apply_state(C, kv, x, D)
        ctx.save_for_backward(x, w, B, C, D, kv)
        ctx.strict = strict
        return y

    @staticmethod
    def backward(ctx, dy) -> Tuple[Optional[torch.Tensor], ...]:
        x, w, B, C, D, kv = ctx.saved_tensors
        grads = dispatch.kernels_or_reference(
            lambda: kernel_backward(x, w, B, C, D, kv, dy),
            lambda: nc_ssd_reference_backward(x, w, B, C, D, dy), x.device, ctx.strict)
        return (*grads, None)
