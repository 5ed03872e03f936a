"""``torch.autograd.Function`` over the Triton NC-SSD kernels (kernels.py)."""
from typing import Optional, Tuple

import torch
import triton

from .kernels import apply_kernel, bwd_tile_kernel, kv_reduce_kernel

BLOCK_L_REDUCE = 64
BLOCK_L_APPLY = 64
BLOCK_L_BWD = 32


def _block(size: int) -> int:
    # tl.dot needs every tile dimension >= 16 and a power of two
    return max(16, triton.next_power_of_2(size))


def _dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs follow torch's TF32 switch (as torch.matmul would); half inputs use TF32."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return 'ieee'
    return 'tf32'


def _num_splits(batch_heads: int, tiles: int, device: torch.device) -> int:
    """How many programs share one (batch, head) reduction over L: enough to fill the GPU."""
    if device.type == 'cuda':
        target = 4 * torch.cuda.get_device_properties(device).multi_processor_count
    else:  # the interpreter: two splits where possible, so tests cover the sum of partials
        target = 2 * batch_heads
    return max(1, min(tiles, triton.cdiv(target, batch_heads)))


def kv_reduce(keys: torch.Tensor, values: torch.Tensor, weights: Optional[torch.Tensor],
              heads: int) -> torch.Tensor:
    """sum_l keys_l^T (weights_{l,h} values_{l,h}).

    Args:
        keys: (batch, L, G, N); values: (batch, L, heads, P); weights: (batch, L, heads) or None.
    Returns:
        (batch, heads, N, P) float32, contiguous.
    """
    batch, length, groups, dstate = keys.shape
    headdim = values.shape[-1]
    tiles = triton.cdiv(length, BLOCK_L_REDUCE)
    splits = _num_splits(batch * heads, tiles, keys.device)
    tiles_per_split = triton.cdiv(tiles, splits)
    splits = triton.cdiv(tiles, tiles_per_split)
    partial = torch.empty(batch, heads, splits, dstate, headdim, device=keys.device,
                          dtype=torch.float32)
    w_arg, w_strides = (weights, weights.stride()) if weights is not None else (values, (0, 0, 0))
    kv_reduce_kernel[(batch * heads, splits)](
        keys, values, w_arg, partial,
        length, heads, groups, dstate, headdim, tiles_per_split,
        *keys.stride(), *values.stride(), *w_strides, *partial.stride(),
        HAS_W=weights is not None, BLOCK_L=BLOCK_L_REDUCE, BLOCK_N=_block(dstate),
        BLOCK_P=_block(headdim), PRECISION=_dot_precision(keys.dtype))
    return partial[:, :, 0] if splits == 1 else partial.sum(2)


def apply_state(C: torch.Tensor, kv: torch.Tensor, x: torch.Tensor,
                D: Optional[torch.Tensor]) -> torch.Tensor:
    """y = C KV_h + D_h x, shaped and typed like x (batch, L, heads, P)."""
    batch, length, heads, headdim = x.shape
    groups, dstate = C.shape[2], C.shape[3]
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    apply_kernel[(batch * heads, triton.cdiv(length, BLOCK_L_APPLY))](
        C, kv, x, D if D is not None else x, y,
        length, heads, groups, dstate, headdim,
        *C.stride(), *kv.stride(), *x.stride(), *y.stride(),
        HAS_D=D is not None, BLOCK_L=BLOCK_L_APPLY, BLOCK_N=_block(dstate),
        BLOCK_P=_block(headdim), PRECISION=_dot_precision(x.dtype))
    return y


class NCSSDFunction(torch.autograd.Function):
    """Triton NC-SSD with B, C as (batch, L, G, N); see ``vssd_mm.ops.nc_ssd.nc_ssd``."""

    @staticmethod
    def forward(ctx, x, w, B, C, D):
        kv = kv_reduce(B, x, w, heads=x.shape[2])
        y = apply_state(C, kv, x, D)
        ctx.save_for_backward(x, w, B, C, D, kv)
        ctx.has_d = D is not None
        return y

    @staticmethod
    def backward(ctx, dy) -> Tuple[Optional[torch.Tensor], ...]:
        x, w, B, C, D, kv = ctx.saved_tensors
        batch, length, heads, headdim = x.shape
        groups, dstate = B.shape[2], B.shape[3]
        dkv = kv_reduce(C, dy, None, heads=heads)
        assert dkv.stride() == kv.stride()  # bwd_tile_kernel indexes both with KV's strides
        dx = torch.empty_like(x, memory_format=torch.contiguous_format)
        dw = torch.empty_like(w, memory_format=torch.contiguous_format)
        dB = torch.empty_like(B, memory_format=torch.contiguous_format)
        dC = torch.empty_like(C, memory_format=torch.contiguous_format)
        tiles = triton.cdiv(length, BLOCK_L_BWD)
        dd_part = torch.empty(batch, heads, tiles, device=x.device, dtype=torch.float32)
        bwd_tile_kernel[(batch * groups, tiles)](
            x, w, B, C, D if ctx.has_d else x, dy, kv, dkv,
            dx, dw, dB, dC, dd_part,
            length, heads, groups, dstate, headdim,
            *x.stride(), *w.stride(), *B.stride(), *C.stride(), *dy.stride(), *kv.stride(),
            *dx.stride(), *dw.stride(), *dB.stride(), *dC.stride(), *dd_part.stride(),
            HAS_D=ctx.has_d, BLOCK_L=BLOCK_L_BWD, BLOCK_N=_block(dstate),
            BLOCK_P=_block(headdim), PRECISION=_dot_precision(x.dtype))
        dD = dd_part.sum((0, 2)).to(D.dtype) if ctx.has_d else None
        return dx, dw, dB, dC, dD
