"""The VSSD block: CPE -> LN -> token mixer -> CPE -> LN -> MLP, with residuals."""
from typing import Tuple

import torch
from mmcv.cnn.bricks import DropPath
from torch import nn

from .layout import depthwise_conv_on_tokens, overwrite_in_place


class Mlp(nn.Module):
    """fc1 -> GELU (exact) -> Dropout -> fc2 -> Dropout on (..., dim)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(x)
        hidden = torch.ops.aten.gelu_(hidden) if overwrite_in_place(x) else self.act(hidden)
        return self.drop(self.fc2(self.drop(hidden)))


class DepthwisePositionEncoding(nn.Conv2d):
    """Conditional position encoding: x + DWConv3x3(x) on tokens (B, H*W, dim)."""

    def __init__(self, dim: int):
        super().__init__(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        encoding = depthwise_conv_on_tokens(super().forward, x, hw)
        return encoding.add_(x) if overwrite_in_place(x) else x + encoding


class VSSDBlock(nn.Module):
    """One block on tokens (B, H*W, dim); the CPEs sit outside drop-path (as released).

    Args:
        dim: channels.
        mixer: the token mixer, called as ``mixer(x, (H, W))``.
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

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = self.cpe1(x, hw)
        x = self._add_residual(x, self.drop_path(self.attn(self.norm1(x), hw)))
        x = self.cpe2(x, hw)
        return self._add_residual(x, self.drop_path(self.mlp(self.norm2(x))))

    @staticmethod
    def _add_residual(x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        # the branch (the mixer's or the MLP's output) is a fresh tensor that nothing else reads
        return branch.add_(x) if overwrite_in_place(x) else x + branch
