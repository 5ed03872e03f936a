"""NC-SSD (non-causal state space duality) in plain PyTorch: the definition every kernel is
tested against, and the implementation used on CPU.

Per batch element and head h, with tokens l = 1..L:

    KV_h    = sum_l  B_l^T (w_{l,h} x_{l,h})      # (N, P): one global state per head
    y_{l,h} = C_l KV_h + D_h x_{l,h}

No causal mask, no normalisation by L, cost linear in L. With ngroups G > 1, B and C carry one
N-vector per group and head h reads group ``h % G`` (the official VSSD layout: heads viewed as
(H / G, G)).
"""
from typing import Optional, Tuple

import torch


def _accumulation(x: torch.Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)  # float32, or float64 for float64 inputs


def _with_groups(B: torch.Tensor, C: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    return (B.unsqueeze(2), C.unsqueeze(2)) if B.dim() == 3 else (B, C)


def nc_ssd_reference_state(x: torch.Tensor, w: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """The global state ``KV_h = sum_l B_l^T (w_{l,h} x_{l,h})``: (batch, heads, N, P), float32
    (float64 for float64 inputs). Shapes as in ``nc_ssd_reference``; B may be 3-D."""
    batch, tokens, heads, headdim = x.shape
    B = B.unsqueeze(2) if B.dim() == 3 else B
    groups = B.shape[2]
    acc = _accumulation(x)
    # heads h = i * groups + g  ->  (i, g)
    u = (x.to(acc) * w.to(acc).unsqueeze(-1)).view(batch, tokens, heads // groups, groups, headdim)
    kv = torch.einsum('blgn,bligp->bignp', B.to(acc), u)                  # (batch, H/G, G, N, P)
    return kv.reshape(batch, heads, B.shape[3], headdim)


def nc_ssd_reference_apply(C: torch.Tensor, kv: torch.Tensor, x: torch.Tensor,
                           D: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``y_{l,h} = C_l KV_h + D_h x_{l,h}`` in x's dtype, for a state ``kv`` (batch, heads, N, P)."""
    batch, tokens, heads, headdim = x.shape
    C = C.unsqueeze(2) if C.dim() == 3 else C
    groups = C.shape[2]
    acc = kv.dtype
    kv = kv.view(batch, heads // groups, groups, C.shape[3], headdim)
    y = torch.einsum('blgn,bignp->bligp', C.to(acc), kv).reshape(batch, tokens, heads, headdim)
    if D is not None:
        y = torch.addcmul(y, D.to(acc).view(heads, 1), x.to(acc))  # one pass over y
    return y.to(x.dtype)


def nc_ssd_reference(x: torch.Tensor, w: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                     D: Optional[torch.Tensor] = None) -> torch.Tensor:
    """NC-SSD token mixing, accumulated in float32 (float64 for float64 inputs).

    Args:
        x: (batch, tokens, heads, headdim) values.
        w: (batch, tokens, heads) per-token weights (positive in VSSD: softplus(dt) * exp(A_log)).
        B: (batch, tokens, ngroups, dstate) keys; (batch, tokens, dstate) means ngroups = 1.
        C: queries, same shape as B.
        D: (heads,) skip weights, or None for no skip.

    Returns:
        y: (batch, tokens, heads, headdim) in x's dtype.
    """
    return nc_ssd_reference_apply(C, nc_ssd_reference_state(x, w, B), x, D)


def nc_ssd_reference_backward(x: torch.Tensor, w: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                              D: Optional[torch.Tensor], dy: torch.Tensor,
                              kv: Optional[torch.Tensor] = None
                              ) -> Tuple[Optional[torch.Tensor], ...]:
    """(dx, dw, dB, dC, dD) of ``nc_ssd_reference`` for the upstream gradient dy, written out
    (no autograd: it also runs where autograd does not record, inside a custom op). ``kv``: the
    forward's state (``nc_ssd_reference_state``), recomputed when not given. Shapes and dtypes of
    the inputs; dD is None without D. Accumulated like the forward."""
    batch, tokens, heads, headdim = x.shape
    squeeze = B.dim() == 3
    B, C = _with_groups(B, C)
    groups, dstate = B.shape[2], B.shape[3]
    acc = _accumulation(x)
    split = (batch, tokens, heads // groups, groups, headdim)
    xa, wa, Ba, Ca = x.to(acc), w.to(acc), B.to(acc), C.to(acc)
    dya = dy.to(acc)
    u = (xa * wa.unsqueeze(-1)).view(split)
    if kv is None:
        kv = nc_ssd_reference_state(x, w, B)
    kv = kv.to(acc).view(batch, heads // groups, groups, dstate, headdim)
    dkv = torch.einsum('blgn,bligp->bignp', Ca, dya.view(split))
    dC = torch.einsum('bligp,bignp->blgn', dya.view(split), kv)
    dB = torch.einsum('bligp,bignp->blgn', u, dkv)
    du = torch.einsum('blgn,bignp->bligp', Ba, dkv).reshape(x.shape)
    dx = du * wa.unsqueeze(-1)
    dw = (du * xa).sum(-1)
    dD = None
    if D is not None:
        dx = dx + D.to(acc).view(heads, 1) * dya
        dD = (dya * xa).sum((0, 1, 3)).to(D.dtype)
    if squeeze:
        dB, dC = dB.squeeze(2), dC.squeeze(2)
    return dx.to(x.dtype), dw.to(w.dtype), dB.to(B.dtype), dC.to(C.dtype), dD
