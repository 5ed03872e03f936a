"""The VSSD block: CPE -> LN -> token mixer -> CPE -> LN -> MLP, with residuals."""
from typing import Tuple

import torch
from mmcv.cnn.bricks import DropPath
from torch import nn

from .layout import DENSE, TokenLayout


class Mlp(nn.Module):
    """fc1 -> GELU (exact) -> Dropout -> fc2 -> Dropout on (..., dim)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, layout: TokenLayout = DENSE) -> torch.Tensor:
        hidden = self.fc1(x)
        hidden = torch.ops.aten.gelu_(hidden) if layout.in_place else self.act(hidden)
        return self.drop(self.fc2(self.drop(hidden)))


class DepthwisePositionEncoding(nn.Conv2d):
    """Conditional position encoding: x + DWConv3x3(x) on tokens (B, H*W, dim)."""

    def __init__(self, dim: int):
        super().__init__(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], layout: TokenLayout = DENSE
                ) -> torch.Tensor:
        return layout.add(x, layout.depthwise_conv(super().forward, x, hw))


class VSSDBlock(nn.Module):
    """One block on tokens (B, H*W, dim); the CPEs sit outside drop-path (as released).

    Args:
        dim: channels.
        mixer: the token mixer, called as ``mixer(x, (H, W), layout)``.
        mlp_ratio: MLP hidden width / dim.
        drop: dropout after the MLP layers.
        drop_path: stochastic depth rate of this block.
    """

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: float = 0.):
        super().__init__()
        self.cpe1 = DepthwisePositionEncoding(dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = mixer
        self.cpe2 = DepthwisePositionEncoding(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], layout: TokenLayout = DENSE
                ) -> torch.Tensor:
        """Tokens (B, H*W, dim) on an H x W grid -> tokens; ``layout``: see layout.py."""
        x = self.cpe1(x, hw, layout)
        # each branch (the mixer's, the MLP's output) is a fresh tensor that nothing else reads
        x = layout.add(x, self.drop_path(self.attn(self.norm1(x), hw, layout)))
        x = self.cpe2(x, hw, layout)
        return layout.add(x, self.drop_path(self.mlp(self.norm2(x), layout)))
