"""NC-SSD: the non-causal state-space-duality token mixer of VSSD.

``nc_ssd(x, w, B, C, D)`` runs the fused Triton kernels for CUDA tensors (sm_80 or newer) when
Triton is importable and the pure-PyTorch reference (the definition) otherwise, in eager mode and
in graphs alike (one custom op, op.py); dispatch.py says how to choose and what happens when the
kernels fail.
"""
from typing import Optional

import torch

from . import op  # noqa: F401  (registers the custom ops vssd_mm::nc_ssd / nc_ssd_backward)
from .dispatch import BACKEND_ENV, BACKENDS, NCSSDKernelError, check_backend, triton_available
from .reference import nc_ssd_reference

__all__ = ['nc_ssd', 'nc_ssd_reference', 'triton_available', 'NCSSDKernelError', 'BACKENDS',
           'BACKEND_ENV', 'check_backend']


def _check_inputs(x, w, B, C, D) -> None:
    tensors = dict(x=x, w=w, B=B, C=C) if D is None else dict(x=x, w=w, B=B, C=C, D=D)
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'nc_ssd: {name} must be a torch.Tensor, got {type(t).__name__}')
        if not t.is_floating_point():
            raise TypeError(f'nc_ssd: {name} must be a floating-point tensor, got {t.dtype}')
    if x.dim() != 4:
        raise ValueError('nc_ssd: x must be (batch, tokens, heads, headdim), '
                         f'got shape {tuple(x.shape)}')
    batch, tokens, heads, _ = x.shape
    if x.numel() == 0:
        raise ValueError(f'nc_ssd: x must not be empty, got shape {tuple(x.shape)}')
    if tuple(w.shape) != (batch, tokens, heads):
        raise ValueError(f'nc_ssd: w must be (batch, tokens, heads) = {(batch, tokens, heads)}, '
                         f'got {tuple(w.shape)}')
    if B.shape != C.shape:
        raise ValueError(f'nc_ssd: B and C must have the same shape, got {tuple(B.shape)} and '
                         f'{tuple(C.shape)}')
    if B.dim() not in (3, 4) or tuple(B.shape[:2]) != (batch, tokens):
        raise ValueError('nc_ssd: B and C must be (batch, tokens, dstate) or (batch, tokens, '
                         f'ngroups, dstate) with batch, tokens = {(batch, tokens)}, got '
                         f'{tuple(B.shape)}')
    groups = 1 if B.dim() == 3 else B.shape[2]
    if groups == 0 or heads % groups:
        raise ValueError(f'nc_ssd: heads ({heads}) must be a multiple of ngroups ({groups})')
    if D is not None and tuple(D.shape) != (heads,):
        raise ValueError(f'nc_ssd: D must be (heads,) = ({heads},), got {tuple(D.shape)}')
    if not (x.dtype == B.dtype == C.dtype):
        raise TypeError(f'nc_ssd: x, B and C must share a dtype, got {x.dtype}, {B.dtype}, '
                        f'{C.dtype}')
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f'nc_ssd: all inputs must be on one device, got {sorted(map(str, devices))}')


def nc_ssd(x: torch.Tensor, w: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
           D: Optional[torch.Tensor] = None, *, backend: str = 'auto') -> torch.Tensor:
    """Non-causal SSD: ``y_{l,h} = C_l (sum_m B_m^T w_{m,h} x_{m,h}) + D_h x_{l,h}``.

    Args:
        x: (batch, tokens, heads, headdim) values (float32, float16 or bfloat16).
        w: (batch, tokens, heads) per-token weights, any float dtype (VSSD:
            softplus(dt + dt_bias) * exp(A_log), positive).
        B: (batch, tokens, dstate) keys shared by all heads, or (batch, tokens, ngroups, dstate)
            where head h reads group h % ngroups. Same dtype as x.
        C: queries, shaped like B.
        D: (heads,) skip weights, or None.
        backend: 'auto' (the environment variable VSSD_MM_NC_SSD_BACKEND if set, else Triton for
            CUDA tensors on sm_80+ when available and the PyTorch reference otherwise; a kernel
            failure warns once and falls back to the reference), 'triton' (a kernel failure
            raises NCSSDKernelError) or 'torch'.

    Returns:
        y: (batch, tokens, heads, headdim), dtype of x. Accumulation is float32 on every backend.
    """
    check_backend(backend)  # a bad name is an error before anything else
    _check_inputs(x, w, B, C, D)
    if B.dim() == 3:
        B, C = B.unsqueeze(2), C.unsqueeze(2)
    return op.nc_ssd_node(x, w, B, C, D, backend)
