"""Multi-head self-attention of the last VSSD stage (official ``StandardAttention``)."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layout import TokenLayout


class GlobalAttention(nn.Module):
    """Softmax attention over all tokens (B, L, dim): no positional bias, no mask, any L.

    qkv is one bias-free Linear (``to_qkv``), the output projection ``to_out`` has a bias;
    the scale is head_dim ** -0.5.
    """

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'attention: dim ({dim}) must be divisible by num_heads ({num_heads})')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Optional[Tuple[int, int]] = None,
                layout: Optional[TokenLayout] = None) -> torch.Tensor:
        """Tokens (B, L, dim) -> tokens; ``hw`` and ``layout`` (the other mixers' arguments) do
        not matter here."""
        batch, tokens, dim = x.shape
        q, k, v = self.to_qkv(x).view(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v,
                                           dropout_p=self.attn_drop if self.training else 0.)
        return self.to_out(y.transpose(1, 2).reshape(batch, tokens, dim))
