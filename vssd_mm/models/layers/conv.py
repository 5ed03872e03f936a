"""Convolutional parts of VSSD: the overlapping stem and the downsampling between stages.

Key names follow the official release (``patch_embed.conv1.conv.weight``,
``layers.0.downsample.conv.2.norm.running_mean``, ...), so its checkpoints load unchanged.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layout import DENSE, TokenLayout, map_to_tokens, tokens_as_channels_last_map, tokens_to_map


class ConvLayer(nn.Module):
    """conv -> optional BatchNorm2d -> optional ReLU, on (batch, channels, height, width)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = True, norm: bool = True,
                 act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              groups=groups, bias=bias)
        self.norm = nn.BatchNorm2d(out_channels) if norm else None
        self.act = nn.ReLU() if act else None

    def forward(self, x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W'); ``in_place``: the ReLU overwrites its input."""
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return self._activate(x, in_place)

    def on_tokens(self, x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """This 1x1 layer on tokens (B, L, C_in) -> (B, L, C_out), dense: the convolution as the
        linear map of its own weight; the BatchNorm over the (B*L, C_out, 1, 1) map, the same
        statistics per channel as over (B, C_out, H, W), on a dense map (layout.py: the CPU
        backward's batch-1 fault on strided layouts)."""
        if self.conv.kernel_size != (1, 1) or self.conv.stride != (1, 1) or self.conv.groups != 1:
            raise ValueError('ConvLayer.on_tokens: only a 1x1, stride-1, ungrouped convolution is '
                             f'a linear map of the tokens; this one is {self.conv}')
        x = F.linear(x, self.conv.weight.flatten(1), self.conv.bias)
        if self.norm is not None:
            x = self.norm(x.reshape(-1, x.shape[-1], 1, 1)).view(x.shape)
        return self._activate(x, in_place)

    def _activate(self, x: torch.Tensor, in_place: bool) -> torch.Tensor:
        return x if self.act is None else F.relu(x, inplace=in_place)


def _in_sequence(layers: nn.Sequential, x: torch.Tensor, in_place: bool) -> torch.Tensor:
    """ConvLayers one after the other, each told whether its ReLU may overwrite its input."""
    for layer in layers:
        x = layer(x, in_place)
    return x


class Stem(nn.Module):
    """Image (B, in_channels, H, W) -> tokens (B, ceil(H/4) * ceil(W/4), C), total stride 4.

    conv1: 3x3/2 to C/2 (BN, ReLU); conv2: two 3x3 convs at C/2 used as a residual;
    conv3: 3x3/2 to 4C (BN, ReLU) then 1x1 to C (BN). The convs have no bias.
    """

    def __init__(self, in_channels: int, embed_dim: int):
        super().__init__()
        half = embed_dim // 2
        self.conv1 = ConvLayer(in_channels, half, 3, stride=2, padding=1, bias=False)
        self.conv2 = nn.Sequential(
            ConvLayer(half, half, 3, padding=1, bias=False),
            ConvLayer(half, half, 3, padding=1, bias=False, act=False))
        self.conv3 = nn.Sequential(
            ConvLayer(half, embed_dim * 4, 3, stride=2, padding=1, bias=False),
            ConvLayer(embed_dim * 4, embed_dim, 1, bias=False, act=False))

    def forward(self, x: torch.Tensor, layout: TokenLayout = DENSE
                ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        if layout.channels_last:  # oneDNN's faster layout; the tokens are then a dense view
            x = x.contiguous(memory_format=torch.channels_last)
        in_place = layout.in_place
        x = self.conv1(x, in_place)
        x = layout.add(x, _in_sequence(self.conv2, x, in_place))
        x = _in_sequence(self.conv3, x, in_place)
        height, width = x.shape[2:]
        return map_to_tokens(x), (height, width)


class Downsample(nn.Module):
    """Overlapping 2x downsampling of tokens (B, H*W, D) -> (B, ceil(H/2)*ceil(W/2), 2D).

    1x1 conv to 8D (ReLU), depthwise 3x3/2 (ReLU), 1x1 conv to 2D with BatchNorm; convs with bias.
    """

    def __init__(self, dim: int, out_dim: Optional[int] = None, ratio: float = 4.0):
        super().__init__()
        out_dim = out_dim or 2 * dim
        hidden = int(out_dim * ratio)
        self.conv = nn.Sequential(
            ConvLayer(dim, hidden, 1, norm=False),
            ConvLayer(hidden, hidden, 3, stride=2, padding=1, groups=hidden, norm=False),
            ConvLayer(hidden, out_dim, 1, act=False))

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], layout: TokenLayout = DENSE
                ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        if not layout.channels_last:
            x = self.conv(tokens_to_map(x, hw))
            return map_to_tokens(x), tuple(x.shape[2:])
        # the same layers on channels-last tokens: the 1x1 convolutions as linears, dense tokens
        # out (ConvLayer.on_tokens)
        expand, depthwise, project = self.conv
        x = expand.on_tokens(x, layout.in_place)
        x = depthwise(tokens_as_channels_last_map(x, hw), layout.in_place)
        batch, _, height, width = x.shape
        x = project.on_tokens(x.permute(0, 2, 3, 1).reshape(batch, height * width, -1))
        return x, (height, width)


class SimpleStem(nn.Module):
    """The ablation's non-overlapping stem (the release's ``simple_patch_embed``): image ->
    tokens (B, floor(H/4) * floor(W/4), C) by a 4x4/4 conv (no bias, BatchNorm, ReLU) and a
    LayerNorm over the tokens."""

    def __init__(self, in_channels: int, embed_dim: int):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, embed_dim, 4, stride=4, bias=False)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor, layout: TokenLayout = DENSE
                ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.conv1(x)  # dense maps in every layout (the ablation's layer, not tuned)
        return self.norm(map_to_tokens(x)), tuple(x.shape[2:])


class SimpleDownsample(nn.Module):
    """The ablation's downsampling (the release's ``simple_downsample``): tokens (B, H*W, D) ->
    (B, ceil(H/2) * ceil(W/2), 2D) by a 3x3/2 conv (bias, ReLU) and a LayerNorm."""

    def __init__(self, dim: int, out_dim: Optional[int] = None):
        super().__init__()
        out_dim = out_dim or 2 * dim
        self.conv = nn.Sequential(ConvLayer(dim, out_dim, 3, stride=2, padding=1, norm=False))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], layout: TokenLayout = DENSE
                ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.conv(tokens_to_map(x, hw))  # dense maps in every layout (as SimpleStem)
        return self.norm(map_to_tokens(x)), tuple(x.shape[2:])
