"""Causal SSD in plain PyTorch, chunked: the definition the ablation models use on every device.

Per batch element and head h (group g = h // (H / G), mamba_ssm's convention), tokens t = 1..L in
row-major order, state h_0 = 0 (N x P):

    h_t = exp(dt_t A_h) h_{t-1} + dt_t B_t^T x_t
    y_t = C_t h_t + D_h x_t

Computed chunk by chunk (``chunk_size`` tokens): inside a chunk through the (T x T) matrix of
decays exp(sum_{u<s<=t} dt_s A), across chunks by passing the state on. Memory is O(L) in L (one
T x T block per chunk at a time), the result does not depend on ``chunk_size``. Accumulation is
float32 (float64 for float64 inputs), outside any autocast; the output has x's dtype.
"""
from typing import Optional

import torch

from ..precision import autocast_off


def causal_ssd_reference(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                         C: torch.Tensor, D: Optional[torch.Tensor] = None,
                         chunk_size: int = 64) -> torch.Tensor:
    """Causal SSD scan.

    Args:
        x: (batch, L, heads, P) values.
        dt: (batch, L, heads) step sizes (> 0 in Mamba2: softplus(dt_raw + dt_bias)).
        A: (heads,) decay rates (< 0 in Mamba2: -exp(A_log)).
        B, C: (batch, L, ngroups, N) input and output projections; head h reads group
            h // (heads / ngroups).
        D: (heads,) skip weights, or None.
        chunk_size: tokens per chunk (tiling only).

    Returns:
        y: (batch, L, heads, P) in x's dtype.
    """
    batch, length, heads, headdim = x.shape
    groups = B.shape[2]
    if heads % groups:
        raise ValueError(f'causal_ssd: heads ({heads}) must be a multiple of ngroups ({groups})')
    if chunk_size < 1:
        raise ValueError(f'causal_ssd: chunk_size must be >= 1, got {chunk_size}')
    with autocast_off(x.device):
        return _chunked_scan(x, dt, A, B, C, D, chunk_size)


def _chunked_scan(x, dt, A, B, C, D, chunk_size) -> torch.Tensor:
    batch, length, heads, headdim = x.shape
    groups = B.shape[2]
    acc = torch.promote_types(x.dtype, torch.float32)
    per_group = heads // groups
    Bh = B.to(acc).repeat_interleave(per_group, dim=2)          # (batch, L, heads, N)
    Ch = C.to(acc).repeat_interleave(per_group, dim=2)
    decay_rate = dt.to(acc) * A.to(acc)                          # (batch, L, heads), log-decay
    u = x.to(acc) * dt.to(acc).unsqueeze(-1)                     # dt_t x_t
    state = x.new_zeros(batch, heads, B.shape[3], headdim, dtype=acc)
    outputs = []
    for start in range(0, length, chunk_size):
        stop = min(start + chunk_size, length)
        cum = decay_rate[:, start:stop].cumsum(1)               # (batch, T, heads)
        # decay from token s to token t (s <= t): exp(cum_t - cum_s); masked before exp
        diff = cum.unsqueeze(2) - cum.unsqueeze(1)               # (batch, t, s, heads)
        causal = torch.ones(stop - start, stop - start, dtype=torch.bool,
                            device=x.device).tril()
        decay = torch.exp(diff.masked_fill(~causal[None, :, :, None], float('-inf')))
        scores = torch.einsum('bthn,bshn->btsh', Ch[:, start:stop], Bh[:, start:stop]) * decay
        y = torch.einsum('btsh,bshp->bthp', scores, u[:, start:stop])
        y = y + torch.einsum('bthn,bhnp->bthp', Ch[:, start:stop], state) \
            * torch.exp(cum).unsqueeze(-1)
        to_end = torch.exp(cum[:, -1:] - cum)                    # (batch, T, heads)
        state = state * torch.exp(cum[:, -1]).unsqueeze(-1).unsqueeze(-1) + torch.einsum(
            'bshn,bshp->bhnp', Bh[:, start:stop] * to_end.unsqueeze(-1), u[:, start:stop])
        outputs.append(y)
    y = torch.cat(outputs, dim=1)
    if D is not None:
        y = y + D.to(acc).view(heads, 1) * x.to(acc)
    return y.to(x.dtype)


def bidirectional_ssd_reference(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor,
                                B: torch.Tensor, C: torch.Tensor, D: Optional[torch.Tensor] = None,
                                chunk_size: int = 64) -> torch.Tensor:
    """Bi-SSD (the release's ``bidirection=True``): heads, groups, dt, A and D split in halves;
    the first half scans forward, the second half scans the sequence reversed (its output flipped
    back); the halves are concatenated on the head axis. Needs an even number of heads and of
    groups. Shapes as ``causal_ssd_reference``."""
    heads, groups = x.shape[2], B.shape[2]
    if heads % 2 or groups % 2:
        raise ValueError(f'bi_ssd: heads ({heads}) and ngroups ({groups}) must be even (the '
                         'release ran it with ngroups=2)')
    halves = [t.chunk(2, dim=2) for t in (x, dt, B, C)]
    (x1, x2), (dt1, dt2), (B1, B2), (C1, C2) = halves
    A1, A2 = A.chunk(2)
    D1, D2 = D.chunk(2) if D is not None else (None, None)
    forward = causal_ssd_reference(x1, dt1, A1, B1, C1, D1, chunk_size)
    backward = causal_ssd_reference(x2.flip(1), dt2.flip(1), A2, B2.flip(1), C2.flip(1), D2,
                                    chunk_size).flip(1)
    return torch.cat([forward, backward], dim=2)
